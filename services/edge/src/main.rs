//! `plantd-edge`: parse flags, load config, run the edge link service until SIGINT/SIGTERM.
#![forbid(unsafe_code)]

use clap::Parser;
use plantd_shared::process::{ServiceArgs, service_main};

/// The plantd edge link service (at the hub or at a site).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    args: ServiceArgs,
}

#[tokio::main]
async fn main() {
    service_main(plantd_edge::SERVICE, Cli::parse().args, plantd_edge::run).await;
}
