//! `plantd-logger`: parse flags, load config, run the logger until SIGINT/SIGTERM.
#![forbid(unsafe_code)]

use clap::Parser;
use plantd_shared::process::{ServiceArgs, service_main};

/// The plantd logger.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    args: ServiceArgs,
}

#[tokio::main]
async fn main() {
    service_main(
        plantd_logger::SERVICE,
        Cli::parse().args,
        plantd_logger::run,
    )
    .await;
}
