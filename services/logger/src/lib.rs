//! The logger: every plantd process's log records, kept and queryable.
//!
//! Processes ship their `tracing` events themselves ([`plantd_shared::log_ship`]) as records on
//! `plantd.log.<service>.<level>`; nothing passes through this service on the way in. It owns
//! the stream `PLANTD_LOG` that captures them (file storage, discard old, limits from config)
//! and answers `plantd.logger.query` ([`query`]). Records published while it is down are still
//! stored, as long as nats-server is up; the old plantd logger was a skeleton that kept nothing.
#![forbid(unsafe_code)]

pub mod config;
pub mod query;

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{
    self,
    stream::{Config, DiscardPolicy, StorageType},
};
use plantd_shared::{
    app_endpoint,
    micro::ServiceBuilder,
    process::{ServeError, ServiceProcess},
    shutdown::Shutdown,
    subjects::log,
};

pub use config::LoggerConfig;

/// Service name: micro name, queue group and subject token (`plantd.logger.…`).
pub const SERVICE: &str = log::SERVICE;

/// How long start-up keeps trying to create the stream before giving up.
const STREAM_WAIT: Duration = Duration::from_secs(15);

/// The stream configuration.
pub fn stream_config(config: &LoggerConfig) -> Config {
    Config {
        name: log::STREAM.to_string(),
        description: Some("plantd log records of every process".into()),
        subjects: vec![log::all()],
        max_age: Duration::from_secs(config.max_age_secs),
        max_bytes: if config.max_bytes == 0 {
            -1
        } else {
            config.max_bytes
        },
        discard: DiscardPolicy::Old,
        storage: StorageType::File,
        num_replicas: 1,
        allow_direct: true,
        ..Default::default()
    }
}

/// Runs the logger until `shutdown`, then drains.
pub async fn run(config: LoggerConfig, shutdown: Shutdown) -> Result<(), ServeError> {
    ServeError::check_config(&config.problems())?;
    let process = ServiceProcess::start(SERVICE, &config.common, shutdown.clone()).await?;
    let js = jetstream::new(process.client.clone());
    let deadline = tokio::time::Instant::now() + STREAM_WAIT;
    loop {
        match js.create_or_update_stream(stream_config(&config)).await {
            Ok(_) => break,
            Err(e) if tokio::time::Instant::now() < deadline && !shutdown.is_triggered() => {
                tracing::warn!(error = %e, "log stream not ready; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                return Err(ServeError::Setup(format!(
                    "cannot create or update stream {}: {e}",
                    log::STREAM
                )));
            }
        }
    }
    tracing::info!(stream = log::STREAM, "log stream ready");
    let builder = ServiceBuilder::new(SERVICE, env!("CARGO_PKG_VERSION"))
        .description("Keeps every process's log records; answers queries");
    let app = Arc::new(query::LoggerApp {
        js,
        late_arrival: Duration::from_secs(config.late_arrival_secs),
    });
    let b = app_endpoint!(builder, &app, "query", log::query(), query::query);
    process.serve(b).await?;
    Ok(())
}
