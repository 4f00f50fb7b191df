//! The service child processes of `plant up`: which exist, how each is started, readiness.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use std::os::unix::process::CommandExt as _;

use anyhow::Context as _;
use plantd_shared::{micro::protocol::PingResponse, shutdown::Shutdown, subjects};

/// A service `plant up` knows how to start.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSpec {
    /// Service name (as in `$SRV.PING.<name>`).
    pub name: &'static str,
    /// Its binary, next to `plant`.
    pub binary: &'static str,
    /// Whether it keeps data (gets `data_dir=<plantd data>/<name>`).
    pub has_data: bool,
    /// Whether it runs only in operator mode (gets `auth_dir=<plantd data>/auth`).
    pub needs_auth: bool,
    /// Whether it is a module (SDK): it may be drained (`plant modules drain`) and then
    /// exits with status 0, which `plant up` accepts without stopping the rest.
    pub module: bool,
}

/// Every service, in start order.
pub const SERVICES: &[ServiceSpec] = &[
    // First: its stream stores the others' start-up records.
    ServiceSpec {
        name: "logger",
        binary: "plantd-logger",
        has_data: false,
        needs_auth: false,
        module: false,
    },
    ServiceSpec {
        name: "echo",
        binary: "plantd-echo",
        has_data: false,
        needs_auth: false,
        module: true,
    },
    ServiceSpec {
        name: "metric",
        binary: "plantd-metric",
        has_data: false,
        needs_auth: false,
        module: true,
    },
    ServiceSpec {
        name: "state",
        binary: "plantd-state",
        has_data: true,
        needs_auth: false,
        module: false,
    },
    ServiceSpec {
        name: "buses",
        binary: "plantd-bus",
        has_data: false,
        needs_auth: false,
        module: false,
    },
    ServiceSpec {
        name: "identity",
        binary: "plantd-identity",
        has_data: true,
        needs_auth: true,
        module: false,
    },
];

/// The services named by `names`, or all.
pub fn select(names: Option<&[String]>) -> anyhow::Result<Vec<&'static ServiceSpec>> {
    select_mode(names, true)
}

/// The services named by `--services`, or all; without `auth` (open mode) the services that
/// need operator mode are left out of "all" and refused by name.
pub fn select_mode(
    names: Option<&[String]>,
    auth: bool,
) -> anyhow::Result<Vec<&'static ServiceSpec>> {
    let Some(names) = names else {
        return Ok(SERVICES.iter().filter(|s| auth || !s.needs_auth).collect());
    };
    names
        .iter()
        .map(|n| {
            let spec = SERVICES.iter().find(|s| s.name == n).with_context(|| {
                let known: Vec<_> = SERVICES.iter().map(|s| s.name).collect();
                format!("unknown service {n:?}; known: {}", known.join(", "))
            })?;
            anyhow::ensure!(
                auth || !spec.needs_auth,
                "service {n} needs operator mode; drop --no-auth to run it"
            );
            Ok(spec)
        })
        .collect()
}

/// Path of a binary next to the running `plant`.
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the plant binary")?;
    let path = exe.with_file_name(name);
    anyhow::ensure!(
        path.is_file(),
        "{name} not found next to plant (looked for {}); build everything with `cargo build --workspace --bins`",
        path.display()
    );
    Ok(path)
}

/// A running service child.
pub struct ServiceChild {
    /// Its spec.
    pub spec: &'static ServiceSpec,
    child: Child,
    /// Its log file.
    pub log_path: PathBuf,
}

impl ServiceChild {
    /// Starts a service connected to `url`, logging to `<data>/logs/<name>.log`. `extra_sets`
    /// are further `name=value` settings passed as `--set` after the defaults (later wins).
    pub fn spawn(
        spec: &'static ServiceSpec,
        url: &str,
        data_dir: &Path,
        extra_sets: &[String],
    ) -> anyhow::Result<ServiceChild> {
        let binary = sibling_binary(spec.binary)?;
        let logs = data_dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        let log_path = logs.join(format!("{}.log", spec.name));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let mut command = Command::new(&binary);
        // Own process group: a terminal's Ctrl-C reaches only `plant up`, which then stops
        // services first (they drain) and the server last.
        command
            .process_group(0)
            .arg("--set")
            .arg(format!("nats_url={url}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if spec.has_data {
            command
                .arg("--set")
                .arg(format!("data_dir={}", data_dir.join(spec.name).display()));
        }
        for setting in extra_sets {
            command.arg("--set").arg(setting);
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        Ok(ServiceChild {
            spec,
            child,
            log_path,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM (the service drains), then SIGKILL after `grace`.
    pub async fn stop(self, grace: Duration) -> bool {
        plantd_shared::process_control::terminate(self.child, grace).await
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        self.exit_status().is_some()
    }

    /// Its exit status, once it has exited.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

/// Waits until every service answers `$SRV.PING.<name>`, failing early if one exits.
pub async fn wait_ready(
    client: &async_nats::Client,
    services: &mut [ServiceChild],
    timeout: Duration,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    for service in services.iter_mut() {
        let subject = subjects::srv("PING", Some(service.spec.name), None);
        loop {
            anyhow::ensure!(!shutdown.is_triggered(), "interrupted while starting");
            anyhow::ensure!(
                !service.exited(),
                "service {} exited during start-up; see {}",
                service.spec.name,
                service.log_path.display()
            );
            let ping = tokio::time::timeout(
                Duration::from_millis(500),
                client.request(subject.clone(), bytes::Bytes::new()),
            )
            .await;
            if let Ok(Ok(msg)) = ping
                && serde_json::from_slice::<PingResponse>(&msg.payload).is_ok()
            {
                break;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "service {} did not answer $SRV.PING within {timeout:?}; see {}",
                service.spec.name,
                service.log_path.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// Waits for shutdown, or for a service to exit by itself (returns its name).
pub async fn wait_for_exit_or_shutdown(
    services: &mut Vec<ServiceChild>,
    shutdown: &Shutdown,
) -> Option<&'static str> {
    loop {
        let mut drained = None;
        for (i, service) in services.iter_mut().enumerate() {
            match service.exit_status() {
                Some(status) if status.success() && service.spec.module => drained = Some(i),
                Some(_) => return Some(service.spec.name),
                None => {}
            }
        }
        if let Some(i) = drained {
            let service = services.remove(i);
            println!(
                "{:<8} exited cleanly after a drain; the others keep running",
                service.spec.name
            );
            continue;
        }
        tokio::select! {
            _ = shutdown.wait() => return None,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}
