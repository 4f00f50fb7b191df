//! `plantd-web-api`: parse flags, load config, serve HTTP until SIGINT/SIGTERM.
#![forbid(unsafe_code)]

use clap::Parser;
use plantd_shared::process::{ServiceArgs, service_main};

/// The plantd HTTP API bridge and web UI.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    args: ServiceArgs,
}

#[tokio::main]
async fn main() {
    service_main(
        plantd_web_api::SERVICE,
        Cli::parse().args,
        plantd_web_api::run,
    )
    .await;
}
