//! `plantd-bus`: parse flags, load config, run the bus service until SIGINT/SIGTERM.
#![forbid(unsafe_code)]

use clap::Parser;
use plantd_shared::process::{ServiceArgs, service_main};

/// The plantd bus service.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    args: ServiceArgs,
}

#[tokio::main]
async fn main() {
    service_main(plantd_bus::SERVICE, Cli::parse().args, plantd_bus::run).await;
}
