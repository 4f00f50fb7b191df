//! `plantd-web-api`: parse flags, load config, serve HTTP until SIGINT/SIGTERM.
#![forbid(unsafe_code)]

use clap::Parser;
use plantd_shared::process::{ServiceArgs, service_main};

/// Every request allocates (headers, the JSON body, the NATS message); mimalloc's per-thread
/// heaps make that cheaper than glibc's malloc, whose arenas showed as ~15 % of the bridge's
/// CPU under load (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
