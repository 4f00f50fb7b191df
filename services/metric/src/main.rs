//! `plantd-metric`: parse flags, load config, run the metric module until SIGINT/SIGTERM.
#![forbid(unsafe_code)]

use clap::Parser;
use plantd_shared::process::{ServiceArgs, service_main};

/// The plantd metric module.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    args: ServiceArgs,
}

#[tokio::main]
async fn main() {
    service_main(
        plantd_metric::SERVICE,
        Cli::parse().args,
        plantd_metric::run,
    )
    .await;
}
