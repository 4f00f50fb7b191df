//! `plantd-state`: parse flags, load config, run the state service until SIGINT/SIGTERM.
#![forbid(unsafe_code)]

use clap::Parser;
use plantd_shared::{process::ServiceArgs, shutdown::Shutdown};

/// The plantd state service.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    args: ServiceArgs,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let config: plantd_state::StateConfig =
        plantd_shared::process::load_config(plantd_shared::subjects::state::SERVICE, &cli.args);
    let shutdown = Shutdown::new();
    if let Err(err) = shutdown.on_signals() {
        eprintln!("error: cannot install signal handlers: {err}");
        std::process::exit(1);
    }
    if let Err(err) = plantd_state::run(config, shutdown).await {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}
