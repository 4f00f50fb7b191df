//! `plant bench`: plantd measured against raw NATS baselines in the same run.
//!
//! Every scenario has a plantd path (a service through the shared runtime, or a bus or pipe
//! through `plantd_shared`) and a raw baseline (a bare async-nats responder, a KV-only one, a
//! naive SQLite-then-KV one, or raw core NATS and JetStream calls) that `plant bench` serves or
//! makes itself; rounds of the two alternate and the report gives medians with min–max and the
//! plantd/baseline ratio per scenario, the services' memory, and whether the goals were met.
//! docs/performance.md explains the scenarios and keeps the latest figures.
//!
//! This module only wires: [`args`] (flags, scenarios), [`local`] (`--local` server and
//! services) or [`remote`] (`--server`), [`baselines`] and [`naive`] (the raw responders),
//! [`scenarios`], [`buses`] and [`http`] (what each path sends), [`measure`] and [`load`] (interleaved
//! closed-loop rounds), [`stats`], [`memory`], [`goals`] and [`report`].

mod args;
mod baselines;
mod buses;
mod edge;
mod goals;
mod http;
mod load;
mod local;
mod measure;
mod memory;
mod mirror_wait;
mod naive;
mod progress;
mod remote;
mod report;
mod scenarios;
mod stats;

use std::{io::Write, path::Path};

use anyhow::Context as _;
use async_nats::jetstream;
use plantd_shared::{
    connection::{self, StartMode},
    shutdown::Shutdown,
};
use plantd_state::store::Durability;

pub use args::BenchArgs;
use args::{Baseline, Scenario, Target};
use local::LocalPlant;
use naive::SetBaseline;
use remote::Remote;
use report::{BenchReport, ScenarioReport};
use scenarios::Env;

use crate::context::GlobalArgs;

impl BenchArgs {
    /// Runs the command. Ctrl-C stops the run and everything it started.
    pub async fn run(self, global: &GlobalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
        let shutdown = Shutdown::new();
        shutdown
            .on_signals()
            .context("cannot install signal handlers")?;
        let dir = tempfile::Builder::new()
            .prefix("plant-bench-")
            .tempdir()
            .context("cannot create a temp dir for the bench")?;
        let report = tokio::select! {
            report = self.bench(global, dir.path()) => report?,
            () = shutdown.wait() => anyhow::bail!("interrupted; everything the bench started was stopped"),
        };
        report::render(out, global.output, &report)?;
        Ok(())
    }

    /// Starts what is needed, runs every selected scenario, stops, and builds the report.
    async fn bench(&self, global: &GlobalArgs, dir: &Path) -> anyhow::Result<BenchReport> {
        let selected = self.selected();
        let needs = |f: &dyn Fn(&Scenario) -> bool| selected.iter().any(f);
        let full = Some(Durability::Full);
        let needs_echo = needs(&|s| s.target() == Target::Echo);
        let needs_buses = needs(&|s| s.target() == Target::Bus);
        let needs_normal_state = needs(&|s| s.target() == Target::State && s.durability() != full);
        let mut progress = progress::Progress::new(self.planned_ops(&selected));

        let mut plant = None;
        let (url, creds) = if self.local {
            progress.phase("starting a local nats-server and services".into());
            let first_state = if needs_normal_state {
                Some(Durability::Normal)
            } else {
                needs(&|s| s.durability() == full).then_some(Durability::Full)
            };
            let started =
                LocalPlant::start(dir.join("plant"), needs_echo, needs_buses, first_state).await?;
            let url = started.url();
            plant = Some(started);
            (url, None)
        } else {
            (global.server.clone(), global.creds.clone())
        };
        let client = connection::connect(
            &url,
            creds.clone(),
            "plant-bench",
            StartMode::FailFast,
            None,
        )
        .await
        .context("is the server running? or use `plant bench --local`")?;
        let remote = match plant {
            None => Some(Remote::discover(&client, &url).await),
            Some(_) => None,
        };

        let mut sets: Vec<SetBaseline> = Vec::new();
        for s in &selected {
            if let Baseline::Set(set) = s.baseline()
                && !sets.contains(&set)
            {
                sets.push(set);
            }
        }
        let wanted = baselines::Wanted {
            echo: needs(&|s| s.baseline() == Baseline::RawEcho),
            sets: sets.clone(),
            proxy: needs(&|s| *s == Scenario::HttpProxyGet64).then_some(global.timeout),
        };
        progress.phase("starting the baseline responders".into());
        let mut host =
            baselines::BaselineHost::start(url.clone(), creds.clone(), dir.to_path_buf(), wanted)
                .await?;

        let mut env = Env {
            url: url.clone(),
            creds,
            js: jetstream::new(client.clone()),
            client: client.clone(),
            timeout: global.timeout,
            encoding: self.encoding.encoding(),
            state_bucket: String::new(),
            http_url: None,
            proxy_url: host.proxy_url.clone(),
        };
        let mut scoped_bucket: Option<String> = None;
        let mut created_scopes = Vec::new();
        let mut reports = Vec::new();
        for &scenario in &selected {
            let skip = match (&mut plant, &remote) {
                (Some(plant), _) => {
                    if scenario.target() == Target::State {
                        if let Some(durability) = scenario.durability()
                            && plant.state_durability() != Some(durability)
                        {
                            progress.phase(format!(
                                "{}: starting state with durability {}",
                                scenario.name(),
                                naive::durability_name(durability)
                            ));
                            plant.use_state(durability).await?;
                        }
                        env.state_bucket = plant.state_bucket().unwrap_or_default();
                        if scenario.over_http() {
                            progress
                                .phase(format!("{}: starting the web-api bridge", scenario.name()));
                            env.http_url = Some(plant.start_web().await?);
                        }
                    }
                    None
                }
                (None, Some(remote)) => {
                    if let Some(state) = &remote.state {
                        env.state_bucket = state.bucket.clone();
                    }
                    remote.skip_reason(scenario)
                }
                (None, None) => None,
            };
            if let Some(why) = skip {
                progress.note(&format!("{}: skipped: {why}", scenario.name()));
                progress.block_done(self.scenario_ops(scenario));
                reports.push(ScenarioReport::skipped(
                    scenario.name(),
                    self.count_for(scenario),
                    scenario.concurrency(),
                    why,
                ));
                continue;
            }
            if scenario.target() == Target::State
                && scoped_bucket.as_ref() != Some(&env.state_bucket)
            {
                for scope in [scenarios::SCOPE, scenarios::WATCH_SCOPE] {
                    if scenarios::ensure_scope(&env, scope).await? {
                        created_scopes.push(scope);
                    }
                }
                scoped_bucket = Some(env.state_bucket.clone());
            }
            let pair = scenarios::prepare(scenario, &env, self.key_count(), &mut progress)
                .await
                .with_context(|| format!("cannot prepare {}", scenario.name()))?;
            reports.push(measure::measure(scenario, &pair, self, &mut progress).await);
            for stream in &pair.created {
                let _ = env.js.delete_stream(stream).await;
            }
        }

        progress.phase("stopping".into());
        host.stop().await;
        let memory = match plant {
            Some(plant) => plant.stop().await,
            None => {
                // Leave a shared server as it was: remove what the bench created there.
                for scope in created_scopes {
                    let _ = scenarios::delete_scope(&env, scope).await;
                }
                for set in &sets {
                    let _ = env.js.delete_key_value(set.bucket()).await;
                }
                if needs_buses {
                    buses::purge_bench_topics(&env).await;
                }
                Vec::new()
            }
        };
        progress.finish();
        Ok(BenchReport {
            mode: if self.local { "local" } else { "server" },
            server: url,
            nats_server_version: client.server_info().version,
            build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            encoding: self.encoding.name(),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            rounds: self.round_count(),
            round_limit_s: self.duration.as_secs_f64(),
            goals: goals::evaluate(&reports, &memory),
            scenarios: reports,
            memory,
        })
    }

    /// Operations the progress bar expects for `scenario`, preloading included.
    fn scenario_ops(&self, scenario: Scenario) -> u64 {
        let preload = if scenario == Scenario::StateGet64 {
            self.keys
        } else {
            0
        };
        measure::planned_ops(scenario, self) + preload
    }

    fn planned_ops(&self, selected: &[Scenario]) -> u64 {
        selected.iter().map(|s| self.scenario_ops(*s)).sum()
    }
}
