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
    install(format, level, None, None);
}

/// Installs the global subscriber of `service`, shipping its events to the logger unless
/// `log_ship` is off. Returns the shipper to start once NATS is connected, or `None` when not
/// shipping or when a subscriber was already installed (in-process tests keep the first one).
pub fn init_service(service: &str, common: &CommonConfig) -> Option<LogShipper> {
    let otlp =
        (!common.otlp_endpoint.is_empty()).then_some((service, common.otlp_endpoint.as_str()));
    if !common.log_ship {
        install(common.log_format, &common.log_level, None, otlp);
        return None;
    }
    let (layer, shipper) = log_ship::channel(service, common.log_ship_buffer);
    install(common.log_format, &common.log_level, Some(layer), otlp).then_some(shipper)
}

/// Logging for a client such as `plant`: warnings to stderr, and spans exported to
/// `otlp_endpoint` if one is given.
pub fn init_client(name: &str, otlp_endpoint: Option<&str>) {
    // The client's own spans (target `name`) are info: enabled so they are exported.
    let level = format!("warn,{name}=info");
    install(
        LogFormat::Text,
        &level,
        None,
        otlp_endpoint.map(|e| (name, e)),
    );
}

/// Installs stderr logging plus `ship`; whether this call installed it.
fn install(
    format: LogFormat,
    level: &str,
    ship: Option<log_ship::ShipLayer>,
    otlp: Option<(&str, &str)>,
) -> bool {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let spans = otlp.and_then(
        |(service, endpoint)| match crate::trace::layer(service, endpoint) {
            Ok(layer) => Some(layer),
            Err(err) => {
                eprintln!("warning: tracing export off: {err}");
                None
            }
        },
    );
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(ship)
        .with(spans);
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
