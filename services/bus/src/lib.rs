//! The bus service: the capture stream of every configured bus, and what needs JetStream
//! rights people do not have — bus info and replays created for the caller.
//!
//! The old plantd's buses were XPUB/XSUB proxies with a capture socket. Here publishing and
//! listening are plain NATS (`plantd.bus.<bus>.<scope…>.<topic…>`, authorized per scope by the
//! server) and capture is a JetStream stream per bus; this service only owns those streams'
//! configuration and answers `plantd.buses.info` and `plantd.buses.replay.<bus>.<scope>`
//! (docs/buses.md). Buses keep working for live traffic when it is down; only replay and info
//! need it.
//!
//! It also owns the pipes (work queues, docs/pipelines.md): the work-queue stream, one consumer
//! per configured pipe, the dead-letter stream and the dead-lettering of items that gave out
//! ([`dead_letters`]), and answers `plantd.buses.pipes` and `plantd.buses.dlq.…` ([`pipes`]).
//! Pushing and working need only NATS; stats, dead-lettering and retries need this service.
#![forbid(unsafe_code)]

pub mod config;
pub mod dead_letters;
pub mod handlers;
pub mod pipes;
pub mod streams;

use std::sync::Arc;

use plantd_shared::{
    app_endpoint,
    micro::ServiceBuilder,
    process::{ServeError, ServiceProcess},
    shutdown::Shutdown,
    subjects::{bus, pipe},
};

pub use config::{BusConfig, BusDef};

/// Service name: micro name, queue group and subject token (`plantd.buses.…`).
pub const SERVICE: &str = bus::SERVICE;

/// How long start-up keeps trying to create the capture streams before giving up.
const STREAMS_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Runs the bus service until `shutdown`, then drains.
pub async fn run(config: BusConfig, shutdown: Shutdown) -> Result<(), ServeError> {
    ServeError::check_config(&config.problems())?;
    let process = ServiceProcess::start(SERVICE, &config.common, shutdown.clone()).await?;
    let js = async_nats::jetstream::new(process.client.clone());
    // Services may start before NATS: retry, bounded, before serving anything.
    let deadline = tokio::time::Instant::now() + STREAMS_WAIT;
    loop {
        let ready = match streams::ensure(&js, &config.buses).await {
            Ok(()) => streams::ensure_pipes(&js, &config).await,
            Err(e) => Err(e),
        };
        match ready {
            Ok(()) => break,
            Err(e) if tokio::time::Instant::now() < deadline && !shutdown.is_triggered() => {
                tracing::warn!(error = %e, "capture streams not ready; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(e) => return Err(ServeError::Setup(e)),
        }
    }
    let names: Vec<&str> = config.buses.iter().map(|d| d.name.as_str()).collect();
    let pipe_names: Vec<&str> = config.pipes.iter().map(|d| d.name.as_str()).collect();
    let builder = ServiceBuilder::new(SERVICE, env!("CARGO_PKG_VERSION"))
        .description("Bus capture streams, bus info and replays; pipes and their dead letters")
        .metadata("buses", names.join(","))
        .metadata("pipes", pipe_names.join(","));
    let dead_lettering = (!config.pipes.is_empty())
        .then(|| tokio::spawn(dead_letters::run(js.clone(), shutdown.clone())));
    let app = Arc::new(handlers::BusApp { js, config });
    let b = app_endpoint!(builder, &app, "info", bus::info(), handlers::info);
    let b = app_endpoint!(b, &app, "replay", bus::replay("*", ">"), handlers::replay);
    let b = app_endpoint!(b, &app, "pipes", pipe::stats(), pipes::stats);
    let b = app_endpoint!(b, &app, "dlq-list", pipe::dlq_list("*"), pipes::dlq_list);
    let b = app_endpoint!(b, &app, "dlq-retry", pipe::dlq_retry("*"), pipes::dlq_retry);
    let served = process.serve(b).await;
    if let Some(task) = dead_lettering {
        shutdown.trigger();
        let _ = task.await;
    }
    served?;
    Ok(())
}
