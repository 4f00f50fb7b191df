//! `plantd-identity`: parse flags, load config, run the identity service until SIGINT/SIGTERM.
#![forbid(unsafe_code)]

use clap::Parser;
use plantd_shared::process::{ServiceArgs, service_main};

/// The plantd identity service.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    args: ServiceArgs,
}

#[tokio::main]
async fn main() {
    service_main(
        plantd_shared::subjects::identity::SERVICE,
        Cli::parse().args,
        plantd_identity::run,
    )
    .await;
}
