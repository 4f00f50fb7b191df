//! The echo module: the smallest real plantd service.
//!
//! It exists to prove the shared runtime end to end — queue-group load sharing, JSON and
//! protobuf, error replies, discovery, bounded concurrency and graceful drain — and to be the
//! smallest module on the SDK ([`plantd_shared::module`]): registry entry, health, drain
//! requests. `plant module new` scaffolds the same shape: `config.rs`, `handlers.rs`, `run`.
#![forbid(unsafe_code)]

pub mod config;
pub mod handlers;

use std::sync::Arc;

use plantd_shared::{
    module::{Module, spec::ModuleSpec},
    process::ServeError,
    shutdown::Shutdown,
    subjects,
};

pub use config::EchoConfig;
use handlers::Echo;

/// Service name: micro name, queue group, subject token and the capability it provides.
pub const SERVICE: &str = "echo";

/// Runs the echo module until `shutdown` or a drain request, then drains.
pub async fn run(config: EchoConfig, shutdown: Shutdown) -> Result<(), ServeError> {
    run_as_version(config, shutdown, env!("CARGO_PKG_VERSION")).await
}

/// [`run`], declaring itself as `version` of echo (module and capability). A replacement
/// under another version is how `tests/tests/modules.rs` stands in for "echo v2" without a
/// second build.
pub async fn run_as_version(
    config: EchoConfig,
    shutdown: Shutdown,
    version: &str,
) -> Result<(), ServeError> {
    let spec = ModuleSpec::new(SERVICE, version)
        .map_err(|err| ServeError::Setup(format!("invalid module declaration: {err}")))?;
    let module = Module::start(spec, &config.module, &config.common, shutdown).await?;
    let echo = Arc::new(Echo {
        instance: format!("pid-{}", std::process::id()),
        max_slow_ms: config.max_slow_ms,
        max_message_bytes: config.max_message_bytes,
    });
    let (for_echo, for_slow) = (Arc::clone(&echo), echo);
    let builder = module
        .service()
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
    module.serve(builder).await?;
    Ok(())
}
