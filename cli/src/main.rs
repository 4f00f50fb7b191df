//! `plant`: the command-line entry to plantd.
//!
//! `main` only parses, dispatches and renders errors once (`error: …` then each cause under
//! `Caused by:`) with the fixed exit codes of [`exit`]. Data goes to stdout, status to stderr;
//! a closed pipe (`plant … | head`) is success.
#![forbid(unsafe_code)]

mod commands;
mod context;
mod discovery;
mod exit;
mod identity_client;
mod output;
mod refusal;
mod up;

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = commands::Cli::parse();
    let code = match commands::run(cli).await {
        Ok(()) => 0,
        Err(err) => exit::report(&err),
    };
    std::process::exit(code);
}
