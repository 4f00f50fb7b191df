//! `plantd-state`: parse flags, load config, run the state service until SIGINT/SIGTERM.
#![forbid(unsafe_code)]

use clap::Parser;
use plantd_shared::process::{ServiceArgs, service_main};

/// The plantd state service.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    args: ServiceArgs,
}

#[tokio::main]
async fn main() {
    service_main(
        plantd_shared::subjects::state::SERVICE,
        Cli::parse().args,
        plantd_state::run,
    )
    .await;
}
