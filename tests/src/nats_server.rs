//! A real nats-server per test, from the same template `plant up` uses.
//!
//! Each [`NatsServer`] renders `nats/hub.conf.template` into its own temp dir with a free
//! loopback port and its own JetStream store, so tests run in parallel without sharing state,
//! and what they test is the configuration plantd ships rather than a test-only one. The
//! process's output goes to a log file that survives restarts, for post-mortems.
//!
//! Readiness is observed, never assumed: the harness asks nats-server for a ports file
//! (`ports_file_dir`), which appears once *this* pid has its listeners up, then connects and
//! reads the server's `INFO` line. The ports file matters because the free port is found by
//! binding port 0 and letting go of it; if another process takes it in between, our server fails
//! to bind and, without the ports file, the probe could be answered by the neighbour. That race is
//! detected ("address already in use" in the log) and retried on a new port.
//!
//! [`restart`](NatsServer::restart) reuses port and store, so tests can check what survives a
//! broker restart and how clients reconnect. `Drop` kills and reaps: a panicking test leaves no
//! nats-server behind (a test binary killed with SIGKILL still can; nothing in-process can
//! prevent that without `PR_SET_PDEATHSIG`, which needs `unsafe` and misfires with thread pools).

use std::fs::OpenOptions;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::time::{Instant, sleep, timeout};

use crate::POLL_INTERVAL;
use crate::process::{pid_of, read_lossy};

mod binary;
mod config;

pub use binary::{NATS_SERVER_ENV, nats_server_binary};
use config::{nats_dir, render};

/// How long a server may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`NatsServer::stop`] waits after SIGTERM before it sends SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How many fresh ports to try when the free port was taken before the server could bind it.
const PORT_ATTEMPTS: usize = 5;

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
    /// Template to render instead of `nats/hub.conf.template`.
    pub template: Option<PathBuf>,
    /// nats-server configuration appended after the rendered template (accounts, auth, …).
    pub extra_config: Option<String>,
}

/// A running nats-server owned by one test. See the module docs.
#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    template: String,
    extra_config: String,
    dir: TempDir,
    data_dir: PathBuf,
    port: u16,
    pid: u32,
    child: Option<Child>,
}

/// Why a start attempt failed; only a lost port race is worth retrying.
enum StartError {
    PortTaken(anyhow::Error),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for StartError {
    fn from(err: anyhow::Error) -> Self {
        StartError::Other(err)
    }
}

impl NatsServer {
    /// Starts a hub on a free loopback port with a fresh store and waits until it is ready.
    pub async fn start() -> anyhow::Result<NatsServer> {
        NatsServer::start_with(NatsServerOptions::default()).await
    }

    /// Starts a hub with the given options and waits until it is ready.
    pub async fn start_with(options: NatsServerOptions) -> anyhow::Result<NatsServer> {
        let binary = nats_server_binary()?;
        let template_path = options
            .template
            .unwrap_or_else(|| nats_dir().join("hub.conf.template"));
        let template = std::fs::read_to_string(&template_path)
            .with_context(|| format!("cannot read template {}", template_path.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("plantd-nats-")
            .tempdir()
            .context("cannot create a temp dir for nats-server")?;
        let data_dir = options.data_dir.unwrap_or_else(|| dir.path().join("data"));
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
        let mut server = NatsServer {
            binary,
            template,
            extra_config: options.extra_config.unwrap_or_default(),
            dir,
            data_dir,
            port: options.port.unwrap_or(0),
            pid: 0,
            child: None,
        };
        if options.port.is_some() {
            server.launch().await.map_err(StartError::into_inner)?;
            return Ok(server);
        }
        for attempt in 1..=PORT_ATTEMPTS {
            server.port = free_port()?;
            match server.launch().await {
                Ok(()) => return Ok(server),
                Err(StartError::PortTaken(err)) if attempt < PORT_ATTEMPTS => {
                    eprintln!("plantd-tests: {err:#}; retrying on another port");
                }
                Err(err) => return Err(err.into_inner()),
            }
        }
        unreachable!("the last attempt returns its error")
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port; the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Pid of the current nats-server process, or of the last one if it is stopped.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `true` while a nats-server process is running (not stopped or killed).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The data directory substituted for `{{data_dir}}`.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The JetStream store directory (`<data_dir>/jetstream`; nats-server appends `jetstream`
    /// to the configured `store_dir`).
    pub fn store_dir(&self) -> PathBuf {
        self.data_dir.join("jetstream")
    }

    /// The rendered configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.conf")
    }

    /// The log file receiving the server's stdout and stderr, appended to across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
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
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child
            .try_wait()
            .context("cannot poll nats-server")?
            .is_some()
        {
            return Ok(());
        }
        kill(pid_of(&child), Signal::SIGTERM).context("cannot send SIGTERM to nats-server")?;
        let start = Instant::now();
        while start.elapsed() < STOP_GRACE {
            if child
                .try_wait()
                .context("cannot poll nats-server")?
                .is_some()
            {
                return Ok(());
            }
            sleep(POLL_INTERVAL).await;
        }
        eprintln!("plantd-tests: nats-server ignored SIGTERM for {STOP_GRACE:?}; killing it");
        kill_and_reap(&mut child)
    }

    /// Kills the server with SIGKILL (a crash: no flush, no goodbye to clients) and reaps it.
    /// A no-op if it is not running.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        match self.child.take() {
            Some(mut child) => kill_and_reap(&mut child),
            None => Ok(()),
        }
    }

    /// Stops the server (if running) and starts it again on the same port, store and
    /// configuration, waiting until it is ready. Works after [`kill`](Self::kill) too.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        self.launch().await.map_err(StartError::into_inner)
    }

    /// Renders the configuration, spawns nats-server and waits until it is ready.
    async fn launch(&mut self) -> Result<(), StartError> {
        let config = render(
            &self.template,
            self.port,
            &self.data_dir,
            self.dir.path(),
            &self.extra_config,
        )?;
        let config_path = self.config_path();
        std::fs::write(&config_path, config)
            .with_context(|| format!("cannot write {}", config_path.display()))?;
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let log_err = log.try_clone().context("cannot duplicate the log file")?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .with_context(|| format!("cannot spawn {}", self.binary.display()))?;
        self.pid = child.id();
        self.child = Some(child);
        let ready = self.wait_ready().await;
        if ready.is_err() {
            // Never leave a half-started server behind.
            let _ = self.kill();
        }
        ready
    }

    /// Polls until this pid's ports file exists and the port answers with `INFO`.
    async fn wait_ready(&mut self) -> Result<(), StartError> {
        let start = Instant::now();
        let mut last = anyhow::anyhow!("not probed yet");
        loop {
            let child = self.child.as_mut().context("nats-server is not running")?;
            if let Some(status) = child.try_wait().context("cannot poll nats-server")? {
                self.child = None;
                let log = self.log();
                let err = anyhow::anyhow!(
                    "nats-server on port {} exited during startup with {status}; log {}:\n{}",
                    self.port,
                    self.log_path().display(),
                    tail(&log, 20)
                );
                return Err(if log.contains("address already in use") {
                    StartError::PortTaken(err)
                } else {
                    StartError::Other(err)
                });
            }
            if self.ports_file_written() {
                match probe(self.port).await {
                    Ok(()) => return Ok(()),
                    Err(err) => last = err,
                }
            } else {
                last = anyhow::anyhow!("nats-server has not written its ports file yet");
            }
            if start.elapsed() >= READY_TIMEOUT {
                return Err(StartError::Other(last.context(format!(
                    "nats-server (pid {}) on port {} not ready after {READY_TIMEOUT:?}; log {}:\n{}",
                    self.pid,
                    self.port,
                    self.log_path().display(),
                    tail(&self.log(), 20)
                ))));
            }
            sleep(POLL_INTERVAL).await;
        }
    }

    /// Whether nats-server wrote `<program>_<pid>.ports` for the current pid (the program part
    /// is the binary's name as invoked, so only the suffix is matched).
    fn ports_file_written(&self) -> bool {
        let suffix = format!("_{}.ports", self.pid);
        std::fs::read_dir(self.dir.path()).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|entry| entry.file_name().to_string_lossy().ends_with(&suffix))
        })
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl StartError {
    fn into_inner(self) -> anyhow::Error {
        match self {
            StartError::PortTaken(err) | StartError::Other(err) => err,
        }
    }
}

/// SIGKILL and wait; the child must not have been reaped yet.
fn kill_and_reap(child: &mut Child) -> anyhow::Result<()> {
    if child
        .try_wait()
        .context("cannot poll nats-server")?
        .is_none()
    {
        kill(pid_of(child), Signal::SIGKILL).context("cannot send SIGKILL to nats-server")?;
        child.wait().context("cannot reap nats-server")?;
    }
    Ok(())
}

/// A loopback port nobody listens on right now.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("cannot bind 127.0.0.1:0 to find a free port")?;
    Ok(listener.local_addr().context("no local address")?.port())
}

/// Connects to the port and reads the `INFO` line nats-server greets every client with.
async fn probe(port: u16) -> anyhow::Result<()> {
    let step = Duration::from_secs(1);
    let stream = timeout(
        step,
        tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)),
    )
    .await
    .context("connect timed out")?
    .with_context(|| format!("cannot connect to 127.0.0.1:{port}"))?;
    let mut line = String::new();
    timeout(step, BufReader::new(stream).read_line(&mut line))
        .await
        .context("no INFO within 1s")?
        .context("cannot read INFO")?;
    let Some(json) = line.strip_prefix("INFO ") else {
        bail!("expected an INFO line from 127.0.0.1:{port}, got {line:?}");
    };
    let info: serde_json::Value = serde_json::from_str(json.trim()).context("INFO is not JSON")?;
    if info["port"] != port {
        bail!("INFO on port {port} announces port {}", info["port"]);
    }
    Ok(())
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
