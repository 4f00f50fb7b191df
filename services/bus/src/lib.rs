//! The bus service: the capture stream of every configured bus, and what needs JetStream
//! rights people do not have — bus info and replays created for the caller.
//!
//! The old plantd's buses were XPUB/XSUB proxies with a capture socket. Here publishing and
//! listening are plain NATS (`plantd.bus.<bus>.<scope…>.<topic…>`, authorized per scope by the
//! server) and capture is a JetStream stream per bus; this service only owns those streams'
//! configuration and answers `plantd.buses.info` and `plantd.buses.replay.<bus>.<scope>`
//! (docs/buses.md). Buses keep working for live traffic when it is down; only replay and info
//! need it.
#![forbid(unsafe_code)]

pub mod config;
pub mod handlers;
pub mod streams;

use std::sync::Arc;

use plantd_shared::{
    app_endpoint,
    micro::ServiceBuilder,
    process::{ServeError, ServiceProcess},
    shutdown::Shutdown,
    subjects::bus,
};

pub use config::{BusConfig, BusDef};

/// Service name: micro name, queue group and subject token (`plantd.buses.…`).
pub const SERVICE: &str = bus::SERVICE;

/// How long start-up keeps trying to create the capture streams before giving up.
const STREAMS_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Runs the bus service until `shutdown`, then drains.
pub async fn run(config: BusConfig, shutdown: Shutdown) -> Result<(), ServeError> {
    let problems = config.problems();
    if !problems.is_empty() {
        return Err(ServeError::Setup(format!(
            "invalid configuration: {}",
            problems.join("; ")
        )));
    }
    let process = ServiceProcess::start(SERVICE, &config.common, shutdown.clone()).await?;
    let js = async_nats::jetstream::new(process.client.clone());
    // Services may start before NATS: retry, bounded, before serving anything.
    let deadline = tokio::time::Instant::now() + STREAMS_WAIT;
    loop {
        match streams::ensure(&js, &config.buses).await {
            Ok(()) => break,
            Err(e) if tokio::time::Instant::now() < deadline && !shutdown.is_triggered() => {
                tracing::warn!(error = %e, "capture streams not ready; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(e) => return Err(ServeError::Setup(e)),
        }
    }
    let names: Vec<&str> = config.buses.iter().map(|d| d.name.as_str()).collect();
    let builder = ServiceBuilder::new(SERVICE, env!("CARGO_PKG_VERSION"))
        .description("Bus capture streams; bus info and replays")
        .metadata("buses", names.join(","));
    let app = Arc::new(handlers::BusApp { js, config });
    let b = app_endpoint!(builder, &app, "info", bus::info(), handlers::info);
    let b = app_endpoint!(b, &app, "replay", bus::replay("*", ">"), handlers::replay);
    process.serve(b).await?;
    Ok(())
}
