//! Logging set-up: `tracing` with text or JSON lines on stderr, filtered by config.
//!
//! Services log with structured fields (`scope = %scope`); JSON lines suit log shippers, text
//! suits a terminal. Set-up is idempotent so tests and `plant up` can call it freely.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `level`. A second call is a
/// no-op.
pub fn init(format: LogFormat, level: &str) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Text => registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init(),
    };
    // Already initialised (tests, in-process services): keep the first subscriber.
    let _ = result;
}
