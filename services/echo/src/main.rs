//! `plantd-echo`: parse flags, load config, run the echo module until SIGINT/SIGTERM.
#![forbid(unsafe_code)]

use clap::Parser;
use plantd_shared::process::{ServiceArgs, service_main};

/// The plantd echo module.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    args: ServiceArgs,
}

#[tokio::main]
async fn main() {
    service_main(plantd_echo::SERVICE, Cli::parse().args, plantd_echo::run).await;
}
