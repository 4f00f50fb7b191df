//! `plantd-echo`: parse flags, load config, run the echo module until SIGINT/SIGTERM.
#![forbid(unsafe_code)]

use clap::Parser;
use plantd_shared::{process::ServiceArgs, shutdown::Shutdown};

/// The plantd echo module.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    args: ServiceArgs,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let config: plantd_echo::EchoConfig =
        plantd_shared::process::load_config(plantd_echo::SERVICE, &cli.args);
    let shutdown = Shutdown::new();
    if let Err(err) = shutdown.on_signals() {
        eprintln!("error: cannot install signal handlers: {err}");
        std::process::exit(1);
    }
    if let Err(err) = plantd_echo::run(config, shutdown).await {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}
