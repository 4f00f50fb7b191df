//! The echo module: the smallest real plantd service.
//!
//! It exists to prove the shared runtime end to end — queue-group load sharing, JSON and
//! protobuf, error replies, discovery, bounded concurrency and graceful drain — and to be the
//! template a new module copies: `config.rs`, `handlers.rs`, and this `run`.
#![forbid(unsafe_code)]

pub mod config;
pub mod handlers;

use std::sync::Arc;

use plantd_shared::{
    micro::ServiceBuilder,
    process::{ServeError, ServiceProcess},
    shutdown::Shutdown,
    subjects,
};

pub use config::EchoConfig;
use handlers::Echo;

/// Service name: micro name, queue group and subject token.
pub const SERVICE: &str = "echo";

/// Runs the echo module until `shutdown`, then drains.
pub async fn run(config: EchoConfig, shutdown: Shutdown) -> Result<(), ServeError> {
    let process = ServiceProcess::start(SERVICE, &config.common, shutdown).await?;
    let echo = Arc::new(Echo {
        instance: format!("pid-{}", std::process::id()),
        max_slow_ms: config.max_slow_ms,
        max_message_bytes: config.max_message_bytes,
    });
    let (for_echo, for_slow) = (Arc::clone(&echo), echo);
    let builder = ServiceBuilder::new(SERVICE, env!("CARGO_PKG_VERSION"))
        .description("Echoes messages back; sleeps on request to test timeouts")
        .endpoint(
            "echo",
            subjects::module_op(SERVICE, "echo"),
            move |ctx, req| {
                let echo = Arc::clone(&for_echo);
                async move { echo.echo(ctx, req).await }
            },
        )
        .endpoint(
            "slow",
            subjects::module_op(SERVICE, "slow"),
            move |ctx, req| {
                let echo = Arc::clone(&for_slow);
                async move { echo.slow(ctx, req).await }
            },
        );
    process.serve(builder).await?;
    Ok(())
}
