//! `--local`: a private plantd for one bench run, in a temp dir, stopped afterwards.
//!
//! It reuses what `plant up` uses: [`NatsServer`] for a nats-server on a free loopback port,
//! and [`ServiceChild`] to run each service as the same child-process binary a plant deploys
//! (which is also what lets its memory be read from `/proc/<pid>/status` on its own).
//!
//! The bus and pipe scenarios need the bus service (`plantd-bus`, its default config: buses
//! `control`, `data` and `event`, pipe `jobs`), which creates the capture streams, the pipes'
//! work-queue stream and their consumers before it answers PING.
//!
//! **Two durabilities, one at a time.** state-set-full-64 needs a state service with
//! `durability=full`; the others one with `normal`. Two state instances on one server would
//! share the `state` queue group and subjects and split the requests between them, so the
//! bench runs the normal instance for every other scenario, stops it (after reading its peak
//! memory), and then starts a full instance with its own data dir and KV bucket
//! (`plantd-state-full`) for the last scenario. One server, no subject tricks, and each
//! instance measured alone.
//!
//! The `http-*` scenarios also need the web-api bridge, started (as `plant up` starts it) once
//! the state instance they measure runs; it follows that instance's bucket.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use plantd_shared::{
    connection::{self, StartMode},
    data_dir_lock::DataDirLock,
    nats_server::{NatsServer, Options},
    shutdown::Shutdown,
};
use plantd_state::store::Durability;

use super::{
    memory::{self, Reading, ServiceMemory},
    naive::durability_name,
};
use crate::up::children::{self, ServiceChild, ServiceSpec};

/// How long a service may take to answer its first PING.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Pause after readiness before the idle memory reading, so start-up work has settled.
const SETTLE: Duration = Duration::from_millis(300);
/// How long a stopping service may drain.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A service child with its idle memory reading.
struct Running {
    child: ServiceChild,
    label: String,
    idle: Option<Reading>,
}

/// The server and services of one bench run.
pub struct LocalPlant {
    _lock: DataDirLock,
    dir: PathBuf,
    server: NatsServer,
    server_idle: Option<Reading>,
    client: async_nats::Client,
    never: Shutdown,
    echo: Option<Running>,
    buses: Option<Running>,
    state: Option<(Running, Durability)>,
    /// The bridge, its URL and the state bucket it follows.
    web: Option<(Running, String, String)>,
    memory: Vec<ServiceMemory>,
}

impl LocalPlant {
    /// Starts nats-server under `dir`, then echo if `echo`, the bus service if `buses`, then
    /// state with `state` durability.
    pub async fn start(
        dir: PathBuf,
        echo: bool,
        buses: bool,
        state: Option<Durability>,
    ) -> anyhow::Result<LocalPlant> {
        // The bench's own dir, locked like any `plant up`'s: it shares nothing with a hub.
        let lock = DataDirLock::acquire(&dir, "plant bench")?;
        let server = NatsServer::start(Options::new(dir.join("nats")))
            .await
            .context("cannot start the local nats-server")?;
        let client = connection::connect(
            &server.url(),
            None,
            "plant-bench-local",
            StartMode::FailFast,
            None,
        )
        .await?;
        let server_idle = memory::read(server.pid());
        let mut plant = LocalPlant {
            _lock: lock,
            dir,
            server,
            server_idle,
            client,
            never: Shutdown::new(),
            echo: None,
            buses: None,
            state: None,
            web: None,
            memory: Vec::new(),
        };
        if echo {
            plant.echo = Some(plant.spawn("echo", &[], "echo".into()).await?);
        }
        if buses {
            plant.buses = Some(plant.spawn("buses", &[], "buses".into()).await?);
        }
        if let Some(durability) = state {
            plant.start_state(durability).await?;
        }
        Ok(plant)
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Starts the web-api bridge (no authentication, like the rest of `--local`) following
    /// the state instance running now (restarting it if state was replaced); returns its URL.
    pub async fn start_web(&mut self) -> anyhow::Result<String> {
        let bucket = self
            .state_bucket()
            .context("the web-api bridge is started after state")?;
        match self.web.take() {
            Some((running, url, followed)) if followed == bucket => {
                self.web = Some((running, url.clone(), followed));
                return Ok(url);
            }
            // State was replaced by an instance with another bucket: follow that one.
            Some((running, _, _)) => self.retire(running).await,
            None => {}
        }
        let root = self.dir.join("web-api");
        let (child, url) = crate::up::web_api::start(
            &self.url(),
            &root,
            None,
            0,
            &self.never,
            &[format!("state_bucket={bucket}")],
        )
        .await?;
        tokio::time::sleep(SETTLE).await;
        let idle = memory::read(child.pid());
        let running = Running {
            child,
            label: "web-api".into(),
            idle,
        };
        self.web = Some((running, url.clone(), bucket));
        Ok(url)
    }

    /// The KV bucket of the state instance running now.
    pub fn state_bucket(&self) -> Option<String> {
        self.state.as_ref().map(|(_, d)| bucket(*d))
    }

    /// The durability of the state instance running now.
    pub fn state_durability(&self) -> Option<Durability> {
        self.state.as_ref().map(|(_, d)| *d)
    }

    /// Makes sure the state instance runs with `durability`, replacing one that does not.
    pub async fn use_state(&mut self, durability: Durability) -> anyhow::Result<()> {
        match &self.state {
            Some((_, d)) if *d == durability => Ok(()),
            _ => {
                if let Some((running, _)) = self.state.take() {
                    self.retire(running).await;
                }
                self.start_state(durability).await
            }
        }
    }

    /// Stops every service (reading their peak memory first), then the server; returns the
    /// memory of every process.
    pub async fn stop(mut self) -> Vec<ServiceMemory> {
        if let Some((running, _, _)) = self.web.take() {
            self.retire(running).await;
        }
        if let Some((running, _)) = self.state.take() {
            self.retire(running).await;
        }
        if let Some(running) = self.echo.take() {
            self.retire(running).await;
        }
        if let Some(running) = self.buses.take() {
            self.retire(running).await;
        }
        let pid = self.server.pid();
        self.memory.push(ServiceMemory::new(
            "nats-server",
            pid,
            false,
            self.server_idle,
            memory::read(pid),
        ));
        self.server.stop(Duration::from_secs(5)).await;
        std::mem::take(&mut self.memory)
    }

    async fn start_state(&mut self, durability: Durability) -> anyhow::Result<()> {
        let name = durability_name(durability);
        let extra = [
            format!("durability={name}"),
            format!("kv_bucket={}", bucket(durability)),
        ];
        let running = self
            .spawn("state", &extra, format!("state ({name})"))
            .await?;
        self.state = Some((running, durability));
        Ok(())
    }

    /// Spawns a service and waits until it answers PING; reads its idle memory.
    async fn spawn(
        &mut self,
        name: &str,
        extra: &[String],
        label: String,
    ) -> anyhow::Result<Running> {
        let spec = spec(name)?;
        // Per label, so the full state instance gets its own data dir and log.
        let root = self.dir.join(label.replace([' ', '(', ')'], ""));
        let mut child = ServiceChild::spawn(spec, &self.url(), &root, extra)?;
        let ready = children::wait_ready(
            &self.client,
            std::slice::from_mut(&mut child),
            READY_TIMEOUT,
            &self.never,
        )
        .await;
        if let Err(err) = ready {
            child.stop(STOP_GRACE).await;
            return Err(err);
        }
        tokio::time::sleep(SETTLE).await;
        let idle = memory::read(child.pid());
        Ok(Running { child, label, idle })
    }

    /// Reads a service's peak memory, records it, and stops the service.
    async fn retire(&mut self, running: Running) {
        let pid = running.child.pid();
        self.memory.push(ServiceMemory::new(
            &running.label,
            pid,
            true,
            running.idle,
            memory::read(pid),
        ));
        running.child.stop(STOP_GRACE).await;
    }
}

impl Drop for LocalPlant {
    /// On an early exit (error, Ctrl-C) kill the children that were not stopped; the server
    /// kills itself on drop.
    fn drop(&mut self) {
        let echo = self.echo.as_ref().map(|r| r.child.pid());
        let buses = self.buses.as_ref().map(|r| r.child.pid());
        let state = self.state.as_ref().map(|(r, _)| r.child.pid());
        let web = self.web.as_ref().map(|(r, _, _)| r.child.pid());
        for pid in echo.into_iter().chain(buses).chain(state).chain(web) {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// The KV bucket of the state instance of `durability`.
fn bucket(durability: Durability) -> String {
    match durability {
        Durability::Normal => "plantd-state".into(),
        Durability::Full => "plantd-state-full".into(),
    }
}

/// The spec of service `name`.
fn spec(name: &str) -> anyhow::Result<&'static ServiceSpec> {
    let specs = children::select(Some(&[name.to_string()]))?;
    specs
        .into_iter()
        .next()
        .context("children::select returns one spec per name")
}
