//! A real nats-server per test, from the same template and launcher `plant up` uses.
//!
//! This is a thin test-facing wrapper over [`plantd_shared::nats_server`] (binary search with
//! the pinned version, ports-file readiness, lost-port-race retry, stop by PID): one launcher
//! for the product and the tests, so what the tests run is what plantd ships. The wrapper adds
//! what only tests need: a temp dir per server (config, log and ports file, and the store unless
//! a data dir is given) removed on drop, `anyhow` errors, and client helpers.
//!
//! [`restart`](NatsServer::restart) reuses port and store, so tests can check what survives a
//! broker restart and how clients reconnect. `Drop` kills and reaps: a panicking test leaves no
//! nats-server behind (a test binary killed with SIGKILL still can; nothing in-process can
//! prevent that without `PR_SET_PDEATHSIG`, which needs `unsafe`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use plantd_shared::nats_server::{self as launcher, Options};
use tempfile::TempDir;

use crate::process::read_lossy;

pub use launcher::NATS_SERVER_ENV;

/// How long [`NatsServer::stop`] waits after SIGTERM before it sends SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Optional settings for [`NatsServer::start_with`]; `Default` gives what
/// [`NatsServer::start`] uses.
#[derive(Debug, Clone, Default)]
pub struct NatsServerOptions {
    /// Client port on 127.0.0.1; `None` picks a free one.
    pub port: Option<u16>,
    /// Data directory (`{{data_dir}}`; the JetStream store is its `jetstream/` subdir); `None`
    /// uses a dir inside the server's temp dir. Give one to start a second server on the store a
    /// first one left behind; a dir given here is not deleted on drop.
    pub data_dir: Option<PathBuf>,
    /// nats-server configuration for the template's `{{extra}}` slot (accounts, auth, …).
    pub extra_config: Option<String>,
}

/// A running nats-server owned by one test. See the module docs.
#[derive(Debug)]
pub struct NatsServer {
    inner: launcher::NatsServer,
    // Dropped after `inner` (fields drop in order): the process dies before its files go.
    _dir: TempDir,
}

/// The nats-server binary the harness runs (see [`plantd_shared::nats_server::find_binary`]).
pub fn nats_server_binary() -> anyhow::Result<PathBuf> {
    launcher::find_binary().map_err(|e| anyhow::anyhow!("{e}"))
}

impl NatsServer {
    /// Starts a hub on a free loopback port with a fresh store and waits until it is ready.
    pub async fn start() -> anyhow::Result<NatsServer> {
        NatsServer::start_with(NatsServerOptions::default()).await
    }

    /// Starts a hub from `template` (text in the form of `nats/hub.conf.template`, e.g. with a
    /// different `max_payload`) on a free port with a fresh store.
    pub async fn start_with_template(template: &str) -> anyhow::Result<NatsServer> {
        NatsServer::launch(NatsServerOptions::default(), Some(template.to_owned())).await
    }

    /// Starts a hub with the given options and waits until it is ready.
    pub async fn start_with(options: NatsServerOptions) -> anyhow::Result<NatsServer> {
        NatsServer::launch(options, None).await
    }

    /// Renders `template` (`None`: `nats/hub.conf.template`) with `options` and starts it.
    async fn launch(
        options: NatsServerOptions,
        template: Option<String>,
    ) -> anyhow::Result<NatsServer> {
        let dir = tempfile::Builder::new()
            .prefix("plantd-nats-")
            .tempdir()
            .context("cannot create a temp dir for nats-server")?;
        let mut launch = Options::new(options.data_dir.unwrap_or_else(|| dir.path().join("data")));
        launch.port = options.port.unwrap_or(0);
        launch.run_dir = Some(dir.path().to_path_buf());
        launch.template = template;
        launch.extra_config = options.extra_config.unwrap_or_default();
        let inner = launcher::NatsServer::start(launch)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(NatsServer { inner, _dir: dir })
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.inner.url()
    }

    /// The client port; the same across restarts.
    pub fn port(&self) -> u16 {
        self.inner.port()
    }

    /// Pid of the current nats-server process, or of the last one if it is stopped.
    pub fn pid(&self) -> u32 {
        self.inner.pid()
    }

    /// `true` while a nats-server process is running (not stopped or killed).
    pub fn is_running(&mut self) -> bool {
        self.inner.is_running()
    }

    /// The data directory substituted for `{{data_dir}}`.
    pub fn data_dir(&self) -> &Path {
        self.inner.data_dir()
    }

    /// The JetStream store directory (`<data_dir>/jetstream`).
    pub fn store_dir(&self) -> PathBuf {
        self.inner.store_dir()
    }

    /// The rendered configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.inner.config_path()
    }

    /// The log file receiving the server's stdout and stderr, appended to across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.inner.log_path()
    }

    /// The log so far (lossy UTF-8), for failure messages.
    pub fn log(&self) -> String {
        read_lossy(&self.log_path())
    }

    /// Connects a client with default options.
    ///
    /// # Panics
    ///
    /// If the connection fails; use [`try_client`](Self::try_client) to handle that.
    pub async fn client(&self) -> async_nats::Client {
        self.try_client()
            .await
            .unwrap_or_else(|err| panic!("{err:#}"))
    }

    /// Connects a client with default options.
    pub async fn try_client(&self) -> anyhow::Result<async_nats::Client> {
        async_nats::connect(self.url())
            .await
            .with_context(|| format!("cannot connect to nats-server at {}", self.url()))
    }

    /// Stops the server gracefully: SIGTERM, then SIGKILL if it has not exited within 10 s.
    /// A no-op if it is not running.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.inner.stop(STOP_GRACE).await;
        Ok(())
    }

    /// Kills the server with SIGKILL (a crash: no flush, no goodbye to clients) and reaps it.
    /// A no-op if it is not running.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.inner.kill();
        Ok(())
    }

    /// Stops the server (if running) and starts it again on the same port, store and
    /// configuration, waiting until it is ready. Works after [`kill`](Self::kill) too.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.inner
            .restart()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}
