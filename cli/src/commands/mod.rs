//! The subcommands of `plant`, one file each; this module only defines the tree and
//! dispatches.

mod admin;
mod bench;
mod bus;
mod docs;
pub mod edge;
mod login;
mod logout;
mod logs;
mod module_new;
mod modules;
mod org;
mod pipe;
mod req;
mod role;
mod scope;
mod services;
mod state;
mod user;
mod value_input;
mod whoami;

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
    /// Publish on a bus, listen to it live, replay what it captured, list the buses.
    Bus(bus::BusArgs),
    /// Push work onto a pipe, see how pipes stand, list and retry dead letters.
    Pipe(pipe::PipeArgs),
    /// Show what every plantd process logged (from the logger); -f follows.
    Logs(logs::LogsArgs),
    /// Edge sites: make a site's data dir from this hub; link state, lag and backlog.
    Edge(edge::EdgeArgs),
    /// Modules: who provides what, what is missing, drain or replace an instance.
    Modules(modules::ModulesArgs),
    /// Scaffold a new module crate in this workspace (`plant module new NAME`).
    Module(module_new::ModuleArgs),
    /// Print shell completions for plant (bash, zsh, fish, …).
    Completions(docs::CompletionsArgs),
    /// Write plant's man pages into a directory.
    Man(docs::ManArgs),
    /// Measure plantd against raw NATS baselines in one run.
    Bench(bench::BenchArgs),
    /// Create a hub's operator, accounts and bootstrap creds; get creds for services.
    Admin(admin::AdminArgs),
    /// Log in: get a short-lived creds file for your user (kept in ~/.config/plantd).
    Login(login::LoginArgs),
    /// Revoke the login session at the server and delete its files.
    Logout(logout::LogoutArgs),
    /// Show who the server thinks you are (user, org, roles, expiry).
    Whoami(whoami::WhoamiArgs),
    /// Create, show, change, delete and list users (admin).
    User(user::UserArgs),
    /// Grant and take back roles (admin).
    Role(role::RoleArgs),
    /// Create, show and list organizations (admin).
    Org(org::OrgArgs),
}

/// Runs the parsed command line; a permission refusal by the server ends it at once
/// ([`crate::refusal`]).
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    tokio::select! {
        done = dispatch(cli) => done,
        refused = crate::refusal::first_fatal() => Err(refused.into()),
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cli.command {
        Command::Up(args) => crate::up::run(args, &cli.global).await,
        Command::Services(args) => args.run(&cli.global, &mut out).await,
        Command::Req(args) => args.run(&cli.global, &mut out).await,
        Command::State(args) => args.run(&cli.global, &mut out).await,
        Command::Scope(args) => args.run(&cli.global, &mut out).await,
        Command::Bus(args) => args.run(&cli.global, &mut out).await,
        Command::Pipe(args) => args.run(&cli.global, &mut out).await,
        Command::Logs(args) => args.run(&cli.global, &mut out).await,
        Command::Edge(args) => args.run(&cli.global, &mut out).await,
        Command::Modules(args) => args.run(&cli.global, &mut out).await,
        Command::Module(args) => args.run(&mut out),
        Command::Completions(args) => args.run(&mut out),
        Command::Man(args) => args.run(&mut out),
        Command::Bench(args) => args.run(&cli.global, &mut out).await,
        Command::Admin(args) => args.run(&cli.global, &mut out).await,
        Command::Login(args) => args.run(&cli.global, &mut out).await,
        Command::Logout(args) => args.run(&cli.global, &mut out).await,
        Command::Whoami(args) => args.run(&cli.global, &mut out).await,
        Command::User(args) => args.run(&cli.global, &mut out).await,
        Command::Role(args) => args.run(&cli.global, &mut out).await,
        Command::Org(args) => args.run(&cli.global, &mut out).await,
    }
}
