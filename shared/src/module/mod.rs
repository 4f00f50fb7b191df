//! The module SDK: a module author writes handlers; this does registration, dependencies,
//! health, resilient clients and lifecycle.
//!
//! A module is a plantd service with a declaration ([`spec::ModuleSpec`]): the capabilities
//! it provides and those it requires, with SemVer ranges. [`Module`] runs it:
//!
//! 1. **Start**: logging, `/healthz`, the NATS connection ([`crate::process::ServiceProcess`]);
//!    the instance id is fixed here so the module is in the registry ([`registry`]) from the
//!    first second, in phase `waiting`.
//! 2. **Requirements**: every requirement is looked up in `$SRV.INFO` ([`requirements`]).
//!    Until all are met the health check `requires` is *degraded* with the missing ones as the
//!    reason; the module waits for them at most `require_wait_ms`, then serves anyway
//!    (degraded), because a module that refuses to start is harder to diagnose than one that
//!    says what it misses. The check keeps running: a provider that goes away degrades the
//!    module again, one that comes back heals it.
//! 3. **Serve**: the endpoints start with `plantd.provides`/`plantd.requires` in their `$SRV`
//!    metadata, and the client breakers in STATS. A heartbeat rewrites the registry entry
//!    (health, reasons, missing requirements) every third of its TTL, at once on a change.
//! 4. **Stop**, on SIGTERM or on a drain request (`plantd.modules.drain.<module>.<id>`, which
//!    only admins may send): the entry says `draining`, the runtime drains (no new requests,
//!    in-flight ones finish, nothing routed here is lost), and the entry is removed. A
//!    replacement is therefore: start v2, wait until the registry shows it healthy, drain v1
//!    (`plant modules replace`). A `kill -9` leaves the entry to expire with its TTL.
//!
//! Calls to other modules go through [`client::CapabilityClient`] ([`Module::client_of`]):
//! one deadline, retries that never repeat a write, a breaker per capability.

pub mod breaker;
pub mod client;
pub mod registry;
pub mod requirements;
pub mod spec;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::{
    config::CommonConfig,
    health::{Health, Status},
    micro::ServiceBuilder,
    process::{ServeError, ServiceProcess},
    shutdown::Shutdown,
    timestamp,
};
use breaker::{BreakerPolicy, Breakers};
use client::{CapabilityClient, ClientPolicy};
use registry::Declaration;
use spec::{ModuleSpec, PROVIDES_METADATA, REQUIRES_METADATA, join_list};

/// The subject that asks one instance to drain and exit.
pub fn drain_subject(module: &str, instance: &str) -> String {
    format!(
        "{}.modules.drain.{module}.{instance}",
        crate::subjects::ROOT
    )
}

/// The settings every module has (`PLANTD_<MODULE>_<SETTING>`), beside [`CommonConfig`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ModuleConfig {
    /// Requirements added to those in the code, `name@range` comma-separated.
    pub requires: String,
    /// How long the registry keeps an entry after the last heartbeat, in seconds (at least 2);
    /// the heartbeat runs every third of it.
    pub registry_ttl_s: u64,
    /// Longest wait for requirements before serving anyway (degraded), in milliseconds.
    pub require_wait_ms: u64,
    /// How often requirements are checked while met, in milliseconds (every second while not).
    pub require_check_ms: u64,
    /// Deadline of one call to another module, retries included, in milliseconds.
    pub call_deadline_ms: u64,
    /// Most attempts per call to another module.
    pub call_attempts: u32,
    /// Provider failures in a row that open a capability's circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker refuses calls before a trial, in milliseconds.
    pub breaker_open_ms: u64,
}

impl Default for ModuleConfig {
    fn default() -> Self {
        ModuleConfig {
            requires: String::new(),
            registry_ttl_s: 10,
            require_wait_ms: 30_000,
            require_check_ms: 5_000,
            call_deadline_ms: 5_000,
            call_attempts: 4,
            breaker_failures: 5,
            breaker_open_ms: 5_000,
        }
    }
}

impl ModuleConfig {
    /// Every bad setting, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.registry_ttl_s < 2 {
            problems.push(format!(
                "registry_ttl_s: {} is too short, use at least 2",
                self.registry_ttl_s
            ));
        }
        if let Err(err) = spec::parse_list(&self.requires, spec::Requirement::parse) {
            problems.push(err.to_string());
        }
        if self.call_attempts == 0 {
            problems.push("call_attempts: use at least 1".into());
        }
        if self.call_deadline_ms == 0 {
            problems.push("call_deadline_ms: use at least 1".into());
        }
        problems
    }

    /// The client policy these settings describe.
    pub fn client_policy(&self) -> ClientPolicy {
        ClientPolicy {
            deadline: Duration::from_millis(self.call_deadline_ms),
            max_attempts: self.call_attempts.max(1),
            breaker: BreakerPolicy {
                failure_threshold: self.breaker_failures.max(1),
                open_for: Duration::from_millis(self.breaker_open_ms),
            },
            ..ClientPolicy::default()
        }
    }

    fn ttl(&self) -> Duration {
        Duration::from_secs(self.registry_ttl_s.max(2))
    }
}

/// What the heartbeat writes besides health.
#[derive(Debug, Clone)]
struct Live {
    phase: &'static str,
    missing: Vec<String>,
}

/// A running module process: its NATS client, health, breakers and registry entry.
pub struct Module {
    process: ServiceProcess,
    spec: ModuleSpec,
    config: ModuleConfig,
    instance: String,
    breakers: Breakers,
    live: Arc<Mutex<Live>>,
    changed: Arc<tokio::sync::Notify>,
    started: String,
}

impl Module {
    /// Starts the process around module `spec` (requirements from `config.requires` added).
    pub async fn start(
        spec: ModuleSpec,
        config: &ModuleConfig,
        common: &CommonConfig,
        shutdown: Shutdown,
    ) -> Result<Module, ServeError> {
        ServeError::check_config(&config.problems())?;
        let spec = spec
            .requires(&config.requires)
            .map_err(|err| ServeError::Setup(format!("invalid configuration: {err}")))?;
        let process = ServiceProcess::start(&spec.name, common, shutdown).await?;
        let module = Module {
            process,
            spec,
            config: config.clone(),
            instance: nuid::next().to_string(),
            breakers: Breakers::default(),
            live: Arc::new(Mutex::new(Live {
                phase: "waiting",
                missing: Vec::new(),
            })),
            changed: Arc::new(tokio::sync::Notify::new()),
            started: timestamp::now_rfc3339(),
        };
        if !module.spec.requires.is_empty() {
            let waiting = format!("waiting for {}", join_list(&module.spec.requires));
            module.set_missing(
                module
                    .spec
                    .requires
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            );
            module
                .process
                .health
                .set("requires", Status::Degraded, waiting);
        }
        Ok(module)
    }

    /// The NATS client.
    pub fn client(&self) -> &async_nats::Client {
        &self.process.client
    }

    /// The module's health checks: add the module's own beside `nats` and `requires`.
    pub fn health(&self) -> &Health {
        &self.process.health
    }

    /// What `/metrics` serves; add the module's own series with `collect`.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.process.metrics
    }

    /// The instance id (as in `$SRV` and the registry).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The shutdown signal.
    pub fn shutdown(&self) -> &Shutdown {
        &self.process.shutdown
    }

    /// A client of `capability` with this module's client policy and breakers.
    pub fn client_of(&self, capability: &str) -> CapabilityClient {
        CapabilityClient::new(
            self.process.client.clone(),
            capability,
            self.config.client_policy(),
            &self.breakers,
        )
    }

    /// A service builder for this module: name, version, instance id, declaration metadata
    /// and breakers are set; add the endpoints.
    pub fn service(&self) -> ServiceBuilder {
        ServiceBuilder::new(&self.spec.name, self.spec.version.to_string())
            .instance_id(&self.instance)
            .metadata(PROVIDES_METADATA, join_list(&self.spec.provides))
            .metadata(REQUIRES_METADATA, join_list(&self.spec.requires))
            .breakers(self.breakers.clone())
    }

    fn set_missing(&self, missing: Vec<String>) {
        self.live
            .lock()
            .expect("module lock is never poisoned: no panics while held")
            .missing = missing;
    }

    fn set_phase(&self, phase: &'static str) {
        self.live
            .lock()
            .expect("module lock is never poisoned: no panics while held")
            .phase = phase;
        self.changed.notify_one();
    }

    /// Runs `builder` as this module: register, wait (bounded) for requirements, serve until
    /// shutdown or a drain request, drain, unregister. Returns whether the drain finished in
    /// its grace period.
    pub async fn serve(self, builder: ServiceBuilder) -> Result<bool, ServeError> {
        let this = Arc::new(self);
        let stop_tasks = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat(Arc::clone(&this), stop_tasks.clone()));
        let (met_tx, mut met_rx) = tokio::sync::watch::channel(this.spec.requires.is_empty());
        let watcher = tokio::spawn(watch_requirements(
            Arc::clone(&this),
            met_tx,
            stop_tasks.clone(),
        ));
        let wait = Duration::from_millis(this.config.require_wait_ms);
        let shutdown = this.process.shutdown.clone();
        tokio::select! {
            met = tokio::time::timeout(wait, met_rx.wait_for(|met| *met)) => {
                if met.is_err() {
                    tracing::warn!(
                        waited_ms = this.config.require_wait_ms,
                        "requirements still missing; serving degraded"
                    );
                }
            }
            _ = shutdown.wait() => {}
        }
        let running = match this.process.start_service(builder).await {
            Ok(running) => running,
            Err(err) => {
                stop_tasks.cancel();
                let _ = registry::remove(&this.jetstream(), &this.spec.name, &this.instance).await;
                return Err(err);
            }
        };
        this.set_phase("serving");
        let drain_requests = this
            .process
            .client
            .subscribe(drain_subject(&this.spec.name, &this.instance))
            .await;
        match drain_requests {
            Ok(mut requests) => {
                tokio::select! {
                    request = requests.next() => if let Some(request) = request {
                        tracing::info!(module = %this.spec.name, "drain requested");
                        if let Some(reply) = request.reply {
                            let body = serde_json::json!({"draining": true, "id": this.instance});
                            let _ = this.process.client.publish(reply, body.to_string().into()).await;
                        }
                        this.process.shutdown.trigger();
                    },
                    _ = shutdown.wait() => {}
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for drain requests; only signals stop this module");
                shutdown.wait().await;
            }
        }
        this.set_phase("draining");
        let drained = running.stop().await;
        stop_tasks.cancel();
        let _ = heartbeat.await;
        let _ = watcher.await;
        match registry::remove(&this.jetstream(), &this.spec.name, &this.instance).await {
            Ok(()) => tracing::info!(module = %this.spec.name, "removed from the registry"),
            Err(err) => {
                tracing::warn!(error = %err, "cannot remove the registry entry; it expires with its TTL")
            }
        }
        Ok(drained)
    }

    fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(self.process.client.clone())
    }

    fn declaration(&self) -> Declaration {
        let (status, mut reason) = self.process.health.overall();
        if status == Status::Healthy {
            reason.clear();
        }
        let live = self
            .live
            .lock()
            .expect("module lock is never poisoned: no panics while held")
            .clone();
        Declaration {
            name: self.spec.name.clone(),
            id: self.instance.clone(),
            version: self.spec.version.to_string(),
            provides: self.spec.provides.iter().map(ToString::to_string).collect(),
            requires: self.spec.requires.iter().map(ToString::to_string).collect(),
            missing: live.missing,
            health: status.as_str().to_string(),
            reason,
            health_url: self.process.health_url().unwrap_or_default(),
            host: host_name(),
            pid: std::process::id(),
            started: self.started.clone(),
            updated: timestamp::now_rfc3339(),
            ttl_s: self.config.ttl().as_secs(),
            phase: live.phase.to_string(),
        }
    }
}

/// Writes the registry entry every third of its TTL and on every change; creates the bucket
/// if it is missing and this module may.
async fn heartbeat(module: Arc<Module>, stop: CancellationToken) {
    let js = module.jetstream();
    let ttl = module.config.ttl();
    let every = ttl / 3;
    let mut health = module.process.health.changes();
    loop {
        let declaration = module.declaration();
        let mut written = registry::write(&js, &declaration, ttl).await;
        if let Err(registry::RegistryError::Missing(_)) = &written {
            written = match registry::ensure_bucket(&js).await {
                Ok(_) => registry::write(&js, &declaration, ttl).await,
                Err(err) => Err(err),
            };
        }
        match written {
            Ok(()) => module.process.health.set("registry", Status::Healthy, ""),
            Err(err) => {
                tracing::warn!(error = %err, "cannot write the registry entry");
                module
                    .process
                    .health
                    .set("registry", Status::Degraded, err.to_string());
            }
        }
        // What was just written is seen; the entry is rewritten when health or the phase
        // changes, or when the heartbeat is due.
        health.borrow_and_update();
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = module.changed.notified() => {}
            _ = health.changed() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Checks requirements against `$SRV.INFO` until stopped: every second while some are missing,
/// every `require_check_ms` while all are met. Sets the `requires` check and `met`.
async fn watch_requirements(
    module: Arc<Module>,
    met: tokio::sync::watch::Sender<bool>,
    stop: CancellationToken,
) {
    if module.spec.requires.is_empty() {
        return;
    }
    loop {
        let pause = match requirements::check(&module.process.client, &module.spec.requires).await {
            Ok(missing) if missing.is_empty() => {
                module.set_missing(Vec::new());
                module.process.health.set(
                    "requires",
                    Status::Healthy,
                    format!("met: {}", join_list(&module.spec.requires)),
                );
                met.send_replace(true);
                Duration::from_millis(module.config.require_check_ms.max(250))
            }
            Ok(missing) => {
                module.set_missing(missing.iter().map(ToString::to_string).collect());
                module.process.health.set(
                    "requires",
                    Status::Degraded,
                    format!("waiting for {}", join_list(&missing)),
                );
                met.send_replace(false);
                Duration::from_secs(1)
            }
            Err(err) => {
                module.process.health.set(
                    "requires",
                    Status::Degraded,
                    format!("cannot look up providers: {err}"),
                );
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// This machine's host name (the kernel's, else `HOSTNAME`, else `localhost`).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_settings_are_checked_one_by_one() {
        assert!(ModuleConfig::default().problems().is_empty());
        let bad = ModuleConfig {
            registry_ttl_s: 1,
            requires: "a.b@1".into(),
            call_attempts: 0,
            ..ModuleConfig::default()
        };
        let problems = bad.problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("registry_ttl_s"));
        assert!(problems[1].starts_with("requires"));
        assert!(problems[2].starts_with("call_attempts"));
    }
}
