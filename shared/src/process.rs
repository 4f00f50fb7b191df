//! What every service binary does around its handlers, written once.
//!
//! A service's `main` is thin (CONVENTIONS.md): parse [`ServiceArgs`], [`load_config`] (which
//! exits 64 listing every bad setting), then call its library `run(config, shutdown)`. `run`
//! calls [`ServiceProcess::start`] for logging, health endpoint and NATS connection, builds its
//! endpoints, and hands them to [`ServiceProcess::serve`], which runs until shutdown and
//! drains. `plant up` and tests call the same `run` in-process or as child processes.

use std::{net::SocketAddr, path::PathBuf};

use serde::{Serialize, de::DeserializeOwned};

use crate::{
    config::{self, CommonConfig, Layers},
    connection,
    health::Health,
    micro::{ServiceBuilder, StartError, service::RuntimeOptions},
    shutdown::Shutdown,
};

/// Flags every service binary accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// YAML configuration file (settings as `name: value`).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override one setting (repeatable): `--set max_in_flight=64`.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = config::parse_flag)]
    pub set: Vec<(String, String)>,
}

/// Loads a service's configuration from file, environment and flags; on any bad setting
/// prints them all to stderr and exits with 64.
pub fn load_config<T>(service: &str, args: &ServiceArgs) -> T
where
    T: Serialize + DeserializeOwned + Default,
{
    let layers = Layers::from_process(args.config.clone(), args.set.clone());
    match config::load(service, &layers) {
        Ok(cfg) => cfg,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(config::EXIT_USAGE);
        }
    }
}

/// Errors starting or running a service.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The health listener could not bind.
    #[error("cannot serve /healthz on {listen}: {source}")]
    Health {
        /// The configured address.
        listen: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// NATS connection set-up failed.
    #[error(transparent)]
    Connect(#[from] connection::ConnectError),
    /// The service could not register.
    #[error(transparent)]
    Start(#[from] StartError),
    /// Another process holds the service's data dir.
    #[error(transparent)]
    Locked(#[from] crate::data_dir_lock::LockError),
    /// A service-specific start-up step failed.
    #[error("{0}")]
    Setup(String),
}

impl ServeError {
    /// Refuses to start on a configuration with `problems` (each names its setting), all of
    /// them in one message, so a person fixes them in one go.
    pub fn check_config(problems: &[String]) -> Result<(), ServeError> {
        if problems.is_empty() {
            return Ok(());
        }
        Err(ServeError::Setup(format!(
            "invalid configuration: {}",
            problems.join("; ")
        )))
    }
}

/// The running process around a service: logging, health, NATS client, shutdown.
pub struct ServiceProcess {
    /// The NATS client.
    pub client: async_nats::Client,
    /// The service's health checks.
    pub health: Health,
    /// Where `/healthz` is served, if enabled.
    pub health_addr: Option<SocketAddr>,
    /// The shutdown signal.
    pub shutdown: Shutdown,
    /// What `/metrics` serves; add the service's own series with
    /// [`crate::metrics::Metrics::collect`].
    pub metrics: crate::metrics::Metrics,
    options: RuntimeOptions,
}

impl ServiceProcess {
    /// Initialises logging, serves `/healthz` and `/metrics` and connects to NATS (retrying in
    /// the background, so a service may start before its server).
    pub async fn start(
        service: &str,
        common: &CommonConfig,
        shutdown: Shutdown,
    ) -> Result<ServiceProcess, ServeError> {
        let log_shipper = crate::telemetry::init_service(service, common);
        let health = Health::new();
        let metrics = crate::metrics::Metrics::new(service);
        let health_addr = if common.health_listen.is_empty() {
            None
        } else {
            let addr = crate::health::serve(
                &common.health_listen,
                health.clone(),
                metrics.routes(),
                shutdown.clone(),
            )
            .await
            .map_err(|source| ServeError::Health {
                listen: common.health_listen.clone(),
                source,
            })?;
            tracing::info!(service, health = %format!("http://{addr}/healthz"), "health endpoint listening");
            Some(addr)
        };
        let client_name = format!("plantd-{service}");
        let client = connection::connect_service(common, &client_name, &health).await?;
        metrics.set_client(client.clone());
        if let Some(shipper) = log_shipper {
            shipper.spawn(client.clone(), shutdown.clone());
        }
        Ok(ServiceProcess {
            client,
            health,
            health_addr,
            shutdown,
            metrics,
            options: RuntimeOptions::from_config(common),
        })
    }

    /// Starts the service (adding the health URL to its metadata), runs it until shutdown,
    /// then drains. Returns whether the drain finished within the grace period.
    pub async fn serve(&self, builder: ServiceBuilder) -> Result<bool, ServeError> {
        let running = self.start_service(builder).await?;
        self.shutdown.wait().await;
        Ok(running.stop().await)
    }

    /// Starts the service (adding the health URL to its metadata) and returns it running;
    /// stopping it is the caller's (what [`ServiceProcess::serve`] does, in steps).
    pub async fn start_service(
        &self,
        mut builder: ServiceBuilder,
    ) -> Result<crate::micro::RunningService, ServeError> {
        if let Some(url) = self.health_url() {
            builder = builder.metadata("health_url", url);
        }
        let running = builder.start(&self.client, self.options).await?;
        self.metrics.add_instance(running.shared());
        Ok(running)
    }

    /// `http://<addr>/healthz`, if health is served.
    pub fn health_url(&self) -> Option<String> {
        self.health_addr
            .map(|addr| format!("http://{addr}/healthz"))
    }
}

/// The whole `main` of a service binary: parse [`ServiceArgs`], load the config (exit 64 on
/// bad settings), install SIGINT/SIGTERM handling, run `run(config, shutdown)`; print its
/// error and exit 1 if it fails, or 75 if its data dir is held by another process.
pub async fn service_main<T, F, Fut>(service: &str, args: ServiceArgs, run: F)
where
    T: Serialize + DeserializeOwned + Default,
    F: FnOnce(T, Shutdown) -> Fut,
    Fut: std::future::Future<Output = Result<(), ServeError>>,
{
    let config: T = load_config(service, &args);
    let shutdown = Shutdown::new();
    if let Err(err) = shutdown.on_signals() {
        eprintln!("error: cannot install signal handlers: {err}");
        std::process::exit(1);
    }
    let result = run(config, shutdown).await;
    crate::trace::shutdown();
    if let Err(err) = result {
        eprintln!("error: {err}");
        let code = match err {
            ServeError::Locked(crate::data_dir_lock::LockError::Held { .. }) => {
                crate::data_dir_lock::EXIT_LOCKED
            }
            _ => 1,
        };
        std::process::exit(code);
    }
}
