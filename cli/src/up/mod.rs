//! `plant up`: a whole local plantd in one command.
//!
//! Starts nats-server (JetStream on, loopback only, data under the data dir) from the
//! embedded hub template, then every service as a **child process** (`plantd-<name>` binaries
//! next to `plant`), waits until each answers `$SRV.PING.<name>`, prints what runs where and
//! `ready`, and on Ctrl-C/SIGTERM stops the services (they drain), then the server. Child
//! processes rather than in-process tasks: each service is the same binary a plant would
//! deploy, crashes stay isolated, and its memory can be measured on its own. If a service
//! exits by itself, `plant up` reports it and stops everything (exit 1).
//!
//! By default the server runs in operator mode ([`auth`]): the set-up in `<data-dir>/auth` is
//! created on first run, each service (identity included) connects with its own creds, and the
//! admin's creds file is printed by absolute path next to the URL. `--no-auth` runs an open
//! server for quick experiments, without identity.
//!
//! Once the services answer, [`web_api`] starts the HTTP bridge and web UI (`--http-port`,
//! `--no-http`), which logs people in with the login-only creds.

pub(crate) mod auth;
pub(crate) mod children;
pub(crate) mod edge;
pub(crate) mod web_api;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use plantd_shared::{data_dir_lock::DataDirLock, nats_server, shutdown::Shutdown};

use crate::context::GlobalArgs;
use auth::UpAuth;
use children::{ServiceChild, ServiceSpec};

/// Arguments of `plant up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Where NATS, services and logs keep their data.
    #[arg(long, env = "PLANTD_DATA_DIR", default_value = ".plantd")]
    pub data_dir: PathBuf,
    /// NATS client port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 4222)]
    pub port: u16,
    /// Services to start (comma separated); default: all.
    #[arg(long, value_delimiter = ',')]
    pub services: Option<Vec<String>>,
    /// Run an open server (no operator mode, no identity): anyone on this machine may do
    /// anything. For quick experiments only.
    #[arg(long)]
    pub no_auth: bool,
    /// Port of the web UI and HTTP API on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub http_port: u16,
    /// Do not start the web-api bridge (no web UI, no HTTP API).
    #[arg(long)]
    pub no_http: bool,
    /// Run edge site SITE from its data dir (made by `plant edge init`): a leaf-node server
    /// with its own JetStream domain and the site's services, working on when the hub is away.
    #[arg(long, value_name = "SITE", conflicts_with_all = ["no_auth", "leaf_listen"])]
    pub edge: Option<String>,
    /// Accept edge sites' leaf-node links on ADDR (`0.0.0.0:7422`) and run the hub's edge
    /// service for the sites `plant edge init` registered.
    #[arg(long, value_name = "ADDR", conflicts_with = "no_auth")]
    pub leaf_listen: Option<String>,
    /// TLS certificate (PEM) of the leaf-node listener; with --leaf-tls-key, sites must link
    /// over TLS (`plant edge init --hub tls://… --hub-ca …`).
    #[arg(long, value_name = "FILE", requires_all = ["leaf_listen", "leaf_tls_key"])]
    pub leaf_tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) of the leaf-node listener.
    #[arg(long, value_name = "FILE", requires = "leaf_tls_cert")]
    pub leaf_tls_key: Option<PathBuf>,
}

/// How long services may take to answer their first PING.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs a local plantd until Ctrl-C.
pub async fn run(args: UpArgs, _global: &GlobalArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&args.data_dir)?;
    // Before nats-server opens its store or any service its database: one `plant up` per
    // data dir (each service also locks its own dir below it).
    let _lock = DataDirLock::acquire(&data_dir, "plant up")?;
    let shutdown = Shutdown::new();
    shutdown
        .on_signals()
        .context("cannot install signal handlers")?;

    let role = edge::Role::of(&args, &data_dir)?;
    let specs = role.services(children::select_mode(
        args.services.as_deref(),
        !args.no_auth,
    )?);
    let auth = if args.no_auth {
        None
    } else if role.is_site() {
        Some(UpAuth::site(&data_dir)?)
    } else {
        Some(UpAuth::prepare(&data_dir)?)
    };
    // Every creds file is checked before anything starts.
    let admin_creds = auth
        .as_ref()
        .map(|a| a.creds(role.admin_user()))
        .transpose()?;
    let mut settings = Vec::new();
    for spec in &specs {
        settings.push(if spec.name == edge::EDGE.name {
            role.edge_settings(auth.as_ref())?
        } else {
            service_settings(spec, auth.as_ref())?
        });
    }

    let mut options = nats_server::Options::new(data_dir.join("nats"));
    options.port = args.port;
    options.template = role.template();
    if let Some(auth) = &auth {
        options.extra_config = auth.snippet.clone() + &role.server_config();
    }
    let mut server = nats_server::NatsServer::start(options).await?;
    let url = server.url();
    println!(
        "nats     {url}  (pid {}, log {})",
        server.pid(),
        server.log_path().display()
    );
    match (&auth, &admin_creds) {
        (Some(auth), Some(admin)) => {
            if auth.created {
                println!(
                    "auth     created operator, accounts and creds in {} (see `plant admin init`)",
                    auth.auth_dir.display()
                );
            }
            if !auth.refreshed.is_empty() {
                println!(
                    "auth     re-issued the creds of {} with this version's permissions",
                    auth.refreshed.join(", ")
                );
            }
            println!(
                "admin    creds {}  (operator mode: plant --creds <that file> …)",
                admin.display()
            );
        }
        _ => println!("auth     none (--no-auth): any client on this machine may do anything"),
    }

    let client = match prepare_server(&url, admin_creds.clone()).await {
        Ok(client) => client,
        Err(err) => {
            stop_all(Vec::new(), &mut server).await;
            return Err(err);
        }
    };
    let mut services = Vec::new();
    for (spec, sets) in specs.into_iter().zip(&settings) {
        match ServiceChild::spawn(spec, &url, &data_dir, sets) {
            Ok(child) => {
                println!(
                    "{:<8} pid {}  (log {})",
                    spec.name,
                    child.pid(),
                    child.log_path.display()
                );
                services.push(child);
            }
            Err(err) => {
                stop_all(services, &mut server).await;
                return Err(err);
            }
        }
    }
    if let Err(err) = children::wait_ready(&client, &mut services, READY_TIMEOUT, &shutdown).await {
        stop_all(services, &mut server).await;
        return Err(err);
    }
    if let Some(durability) = state_durability(&client, &services).await {
        println!("{:<8} {}", "state", describe_durability(&durability));
    }
    let answering = services.len();
    if !args.no_http && !role.is_site() {
        match web_api::start(
            &url,
            &data_dir,
            auth.as_ref(),
            args.http_port,
            &shutdown,
            &[],
        )
        .await
        {
            Ok((child, http_url)) => {
                println!(
                    "{:<8} {http_url}  (web UI and /api/v1; pid {}, log {})",
                    "http",
                    child.pid(),
                    child.log_path.display()
                );
                services.push(child);
            }
            Err(err) => {
                stop_all(services, &mut server).await;
                return Err(err);
            }
        }
    }
    println!(
        "ready in {:.2}s: {} services answer on {url}; Ctrl-C stops",
        started.elapsed().as_secs_f64(),
        answering
    );

    let exited = children::wait_for_exit_or_shutdown(&mut services, &shutdown).await;
    println!("stopping");
    stop_all(services, &mut server).await;
    println!("stopped");
    match exited {
        Some(name) => anyhow::bail!(
            "service {name} exited unexpectedly; see its log in {}",
            data_dir.join("logs").display()
        ),
        None => Ok(()),
    }
}

/// Connects as the admin and creates what modules need before they start: the module
/// registry bucket (modules may write their entries but not create it).
async fn prepare_server(
    url: &str,
    admin_creds: Option<std::path::PathBuf>,
) -> anyhow::Result<async_nats::Client> {
    let client = plantd_shared::connection::connect(
        url,
        admin_creds,
        "plant-up",
        plantd_shared::connection::StartMode::FailFast,
        None,
    )
    .await?;
    let js = async_nats::jetstream::new(client.clone());
    plantd_shared::module::registry::ensure_bucket(&js)
        .await
        .context("cannot create the module registry")?;
    Ok(client)
}

/// The `--set` settings of a service beyond URL and data dir: its creds in operator mode, and
/// the set-up's dir for the services that manage it (identity).
fn service_settings(spec: &ServiceSpec, auth: Option<&UpAuth>) -> anyhow::Result<Vec<String>> {
    let Some(auth) = auth else {
        return Ok(Vec::new());
    };
    let mut sets = vec![format!("nats_creds={}", auth.creds(spec.name)?.display())];
    if spec.needs_auth {
        sets.push(format!("auth_dir={}", auth.auth_dir.display()));
    }
    Ok(sets)
}

async fn stop_all(services: Vec<ServiceChild>, server: &mut nats_server::NatsServer) {
    let stops = services
        .into_iter()
        .map(|s| s.stop(Duration::from_secs(12)));
    futures::future::join_all(stops).await;
    server.stop(Duration::from_secs(5)).await;
}

/// The durability the running state service reports in its `$SRV.INFO` metadata (what runs,
/// whatever configured it), or `None` when no state service runs or it does not say.
async fn state_durability(
    client: &async_nats::Client,
    services: &[ServiceChild],
) -> Option<String> {
    if !services.iter().any(|s| s.spec.name == "state") {
        return None;
    }
    let info: plantd_shared::micro::protocol::InfoResponse =
        crate::discovery::ask(client, "INFO", "state").await?;
    info.metadata.get("durability").cloned()
}

/// One line saying what an acknowledged state write survives.
fn describe_durability(durability: &str) -> String {
    match durability {
        "full" => "durability full: a set is acknowledged once its commit is on disk \
                   (survives power loss)"
            .to_string(),
        "normal" => "durability normal: a set survives a crash of the service, but a \
                     power loss may lose the last acknowledged writes (opt-in; see docs/state.md)"
            .to_string(),
        other => format!("durability {other}"),
    }
}
