//! Logging set-up: `tracing` with text or JSON lines on stderr, filtered by config, and the
//! same events shipped to the logger over NATS ([`crate::log_ship`]).
//!
//! Services log with structured fields (`scope = %scope`); JSON lines suit log shippers, text
//! suits a terminal. Set-up is idempotent so tests and `plant up` can call it freely.

use std::io::IsTerminal as _;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::{
    config::{CommonConfig, LogFormat},
    log_ship::{self, LogShipper},
};

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `level`. A second call is a
/// no-op.
pub fn init(format: LogFormat, level: &str) {
    install(format, level, None);
}

/// Installs the global subscriber of `service`, shipping its events to the logger unless
/// `log_ship` is off. Returns the shipper to start once NATS is connected, or `None` when not
/// shipping or when a subscriber was already installed (in-process tests keep the first one).
pub fn init_service(service: &str, common: &CommonConfig) -> Option<LogShipper> {
    if !common.log_ship {
        install(common.log_format, &common.log_level, None);
        return None;
    }
    let (layer, shipper) = log_ship::channel(service, common.log_ship_buffer);
    install(common.log_format, &common.log_level, Some(layer)).then_some(shipper)
}

/// Installs stderr logging plus `ship`; whether this call installed it.
fn install(format: LogFormat, level: &str, ship: Option<log_ship::ShipLayer>) -> bool {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter).with(ship);
    let result = match format {
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
        // Colours only on a terminal: a service's stderr is usually a log file (`plant up`),
        // where escape codes are noise for people, for grep and for log shippers.
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    result.is_ok()
}
