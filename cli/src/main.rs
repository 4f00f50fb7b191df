//! `plant`: the command-line entry to plantd.
//!
//! `main` only parses, dispatches and renders errors once (`error: …` then each cause under
//! `Caused by:`) with the fixed exit codes of [`exit`]. Data goes to stdout, status to stderr;
//! a closed pipe (`plant … | head`) is success.
#![forbid(unsafe_code)]

mod commands;
mod context;
mod discovery;
mod exit;
mod identity_client;
mod output;
mod refusal;
mod up;

use clap::Parser;
use tracing::Instrument as _;

/// Export the command's spans to this OpenTelemetry collector (OTLP/HTTP base URL); unset, no
/// tracing at all.
const OTLP_ENV: &str = "PLANTD_OTLP_ENDPOINT";

#[tokio::main]
async fn main() {
    let cli = commands::Cli::parse();
    let endpoint = std::env::var(OTLP_ENV).ok().filter(|e| !e.is_empty());
    if let Some(endpoint) = &endpoint {
        plantd_shared::telemetry::init_client("plant", Some(endpoint));
    }
    // The root of the command's trace: every request it sends carries it as `traceparent`.
    let span = tracing::info_span!("plant", command = %std::env::args().skip(1).take(2).collect::<Vec<_>>().join(" "));
    let result = commands::run(cli).instrument(span).await;
    if endpoint.is_some() {
        plantd_shared::trace::shutdown();
    }
    let code = match result {
        Ok(()) => 0,
        Err(err) => exit::report(&err),
    };
    std::process::exit(code);
}
