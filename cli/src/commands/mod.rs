//! The subcommands of `plant`, one file each; this module only defines the tree and
//! dispatches.

mod bench;
mod req;
mod scope;
mod services;
mod state;
mod value_input;

use clap::{Parser, Subcommand};

use crate::context::GlobalArgs;

/// plant: run and talk to a plantd control system over NATS.
#[derive(Debug, Parser)]
#[command(name = "plant", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a local plantd: nats-server with JetStream plus every service; Ctrl-C stops all.
    Up(crate::up::UpArgs),
    /// Discover running services ($SRV.PING, INFO, STATS).
    Services(services::ServicesArgs),
    /// Send one request and print the reply (like `nats req`).
    Req(req::ReqArgs),
    /// Read, write, list and watch keys in a scope.
    State(state::StateArgs),
    /// Create, delete and list scopes.
    Scope(scope::ScopeArgs),
    /// Measure plantd against raw NATS baselines in one run.
    Bench(bench::BenchArgs),
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cli.command {
        Command::Up(args) => crate::up::run(args, &cli.global).await,
        Command::Services(args) => args.run(&cli.global, &mut out).await,
        Command::Req(args) => args.run(&cli.global, &mut out).await,
        Command::State(args) => args.run(&cli.global, &mut out).await,
        Command::Scope(args) => args.run(&cli.global, &mut out).await,
        Command::Bench(args) => args.run(&cli.global, &mut out).await,
    }
}
