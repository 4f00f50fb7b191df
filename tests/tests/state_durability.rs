//! Durability of the state service under load: a `set` that was acknowledged survives a
//! SIGKILL of `plantd-state` and a restart of nats-server, no version goes backwards, and the
//! KV mirror converges to exactly what SQLite holds (DESIGN.md, "Durability and consistency
//! of state").
//!
//! Each test runs many concurrent writers for a few seconds, disrupts the system in the middle,
//! records every acknowledged write and every write whose outcome is unknown (error or
//! timeout), and then checks the store and the bucket against that record.

mod common_state;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common_state::{DEADLINE, State, StateEnv, replace_with_empty_server, wait_ready};
use plantd_shared::ErrorCode;
use plantd_shared::call::CallError;
use plantd_shared::codec::Encoding;
use plantd_tests::eventually;
use tokio::time::Instant;

/// Scopes the writers spread over.
const SCOPES: [&str; 4] = ["crash.a", "crash.b", "crash.c.deep", "crash.d"];
/// Request timeout of the writers: short, so a request lost in an outage does not stall them.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// One write attempt and what the writer learnt about it.
#[derive(Debug, Clone)]
struct Attempt {
    scope: &'static str,
    key: String,
    value: String,
    /// The acknowledged version, or `None` when the outcome is unknown.
    acked: Option<u64>,
}

/// What disrupts the load half-way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disruption {
    /// SIGKILL `plantd-state`, restart it on the same data dir.
    KillService,
    /// Restart nats-server (same port and store); the service must reconnect by itself.
    RestartNats,
    /// SIGKILL nats-server, then start it again on the same port and store.
    KillNats,
}

/// Load parameters.
struct Load {
    writers: usize,
    /// Most acknowledged writes per writer.
    max_acks: usize,
    /// Acknowledged writes to see before the disruption.
    before: u64,
    /// Acknowledged writes to see after the disruption (then the writers stop).
    after: u64,
    /// Upper bound of the whole run; the test fails if the counts are not reached.
    hard_limit: Duration,
}

/// What the writers have done so far.
#[derive(Default)]
struct Counters {
    /// Acknowledged writes.
    acks: AtomicU64,
    /// Failed attempts.
    failures: AtomicU64,
    /// Failed attempts by kind: no responders, timed out, 503.
    no_responders: AtomicU64,
    timed_out: AtomicU64,
    unavailable: AtomicU64,
}

impl Counters {
    fn count(&self, err: &CallError) {
        self.failures.fetch_add(1, Ordering::SeqCst);
        let kind = match err {
            CallError::NoResponders { .. } => &self.no_responders,
            CallError::TimedOut { .. } => &self.timed_out,
            CallError::Service(e) if e.code == ErrorCode::Unavailable => &self.unavailable,
            _ => return,
        };
        kind.fetch_add(1, Ordering::SeqCst);
    }

    fn summary(&self) -> String {
        format!(
            "failures: {} no responders, {} timed out, {} unavailable (503)",
            self.no_responders.load(Ordering::SeqCst),
            self.timed_out.load(Ordering::SeqCst),
            self.unavailable.load(Ordering::SeqCst)
        )
    }
}

/// Errors a writer may see while the system is disrupted: "nobody serves" or "unknown
/// outcome". Anything else is a wrong answer to a plain `set`.
fn is_outage_error(err: &CallError) -> bool {
    match err {
        CallError::NoResponders { .. } | CallError::TimedOut { .. } => true,
        CallError::Service(e) => e.code == ErrorCode::Unavailable,
        _ => false,
    }
}

/// Writer `id`: two of every three acknowledged writes create a new key of its own, the third
/// overwrites its "hot" key; a failed attempt is retried on the same key with a new value.
/// Runs until `stop`, `max_acks` acknowledged writes, or a bound on attempts.
async fn writer(
    id: usize,
    state: State,
    max_acks: usize,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) -> (Vec<Attempt>, Vec<String>) {
    let scope = SCOPES[id % SCOPES.len()];
    let mut attempts = Vec::new();
    let mut bad_errors = Vec::new();
    let mut done = 0;
    for attempt in 0..max_acks * 20 {
        if stop.load(Ordering::SeqCst) || done == max_acks {
            break;
        }
        let key = if done % 3 == 2 {
            format!("w{id:02}-hot")
        } else {
            format!("w{id:02}-k{done:04}")
        };
        let value = format!("w{id:02}-a{attempt:04}");
        let acked = match state.set(scope, &key, &value).await {
            Ok(reply) => {
                counters.acks.fetch_add(1, Ordering::SeqCst);
                done += 1;
                Some(reply.version)
            }
            Err(err) => {
                counters.count(&err);
                if !is_outage_error(&err) {
                    bad_errors.push(format!("{scope}/{key}: {err:?}"));
                }
                // Do not spin while nobody serves.
                tokio::time::sleep(Duration::from_millis(20)).await;
                None
            }
        };
        attempts.push(Attempt {
            scope,
            key,
            value,
            acked,
        });
    }
    (attempts, bad_errors)
}

/// `get`, retried while the service is unreachable; a service answer (even 404) is final.
async fn get_settled(
    state: &State,
    scope: &str,
    key: &str,
) -> anyhow::Result<Result<plantd_schemas::state::v1::GetResponse, CallError>> {
    eventually(DEADLINE, || async {
        match state.get(scope, key).await {
            Err(err) if is_outage_error(&err) => Err(anyhow::anyhow!("{err}")),
            other => Ok(other),
        }
    })
    .await
}

/// Runs the load with a disruption in the middle and checks everything afterwards.
async fn crash_under_load(
    settings: &[(&str, &str)],
    disruption: Disruption,
    load: Load,
) -> anyhow::Result<()> {
    let mut env = StateEnv::start(settings).await?;
    let state = env.state(Encoding::Json);
    for scope in SCOPES {
        state.scope_create(scope).await?;
    }
    let started = Instant::now();
    let writer_state = state.with_timeout(WRITE_TIMEOUT);
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let tasks: Vec<_> = (0..load.writers)
        .map(|id| {
            tokio::spawn(writer(
                id,
                writer_state.clone(),
                load.max_acks,
                Arc::clone(&stop),
                Arc::clone(&counters),
            ))
        })
        .collect();

    let wait_acks = |target: u64, what: &'static str| {
        let counters = Arc::clone(&counters);
        let limit = load.hard_limit.saturating_sub(started.elapsed());
        async move {
            eventually(limit, || async {
                let n = counters.acks.load(Ordering::SeqCst);
                (n >= target).then_some(n).ok_or_else(|| {
                    anyhow::anyhow!("{n} acknowledged writes, waiting for {target} {what}")
                })
            })
            .await
        }
    };
    wait_acks(load.before, "before the disruption").await?;
    let acks_at_disruption = counters.acks.load(Ordering::SeqCst);
    let failures_before = counters.failures.load(Ordering::SeqCst);
    let disrupted = Instant::now();
    match disruption {
        Disruption::KillService => {
            env.service.kill()?;
            env.service.restart()?;
        }
        Disruption::RestartNats | Disruption::KillNats => {
            // Keep the server down until writers have seen the outage (each of them waits
            // for its request timeout), so writes really are attempted while it is down.
            if disruption == Disruption::KillNats {
                env.nats.kill()?;
            } else {
                env.nats.stop().await?;
            }
            let failing = load.writers as u64 / 2;
            eventually(DEADLINE, || async {
                let n = counters.failures.load(Ordering::SeqCst) - failures_before;
                (n >= failing)
                    .then_some(())
                    .ok_or_else(|| anyhow::anyhow!("{n} writes failed during the outage"))
            })
            .await?;
            env.nats.restart().await?;
        }
    }
    let outage = disrupted.elapsed();
    let acks_after_restart = counters.acks.load(Ordering::SeqCst);
    wait_acks(acks_after_restart + load.after, "after the disruption")
        .await
        .map_err(|e| e.context(format!("plantd-state stderr:\n{}", env.service.stderr())))?;
    stop.store(true, Ordering::SeqCst);
    let mut attempts = Vec::new();
    let mut bad_errors = Vec::new();
    for task in tasks {
        let (a, b) = task.await?;
        attempts.extend(a);
        bad_errors.extend(b);
    }
    let load_time = started.elapsed();
    assert!(
        bad_errors.is_empty(),
        "writers got wrong answers (not no-responders / timeout / 503): {bad_errors:#?}"
    );
    let unknown = attempts.iter().filter(|a| a.acked.is_none()).count();
    eprintln!(
        "{disruption:?}: {} attempts ({} acked, {unknown} unknown) in {load_time:?}; \
         {acks_at_disruption} acked before the disruption, outage {outage:?}; {}",
        attempts.len(),
        attempts.len() - unknown,
        counters.summary()
    );
    if disruption != Disruption::KillService {
        assert!(unknown > 0, "no write was attempted during the outage");
    }

    wait_ready(&state, &env.js).await?;
    check_acknowledged(&state, &attempts).await?;
    let converged = common_state::wait_kv_converged(&state, &env.js, DEADLINE)
        .await
        .map_err(|e| e.context(format!("plantd-state stderr:\n{}", env.service.stderr())))?;
    // Nothing but what the writers wrote is there.
    let attempted: std::collections::BTreeSet<(&str, &str)> =
        attempts.iter().map(|a| (a.scope, a.key.as_str())).collect();
    for (scope, key) in converged.keys() {
        assert!(
            attempted.contains(&(scope.as_str(), key.as_str())),
            "{scope}/{key} was never written"
        );
    }
    eprintln!(
        "{disruption:?}: KV converged to {} keys {:?} after the load",
        converged.len(),
        started.elapsed() - load_time
    );
    Ok(())
}

/// Every acknowledged write is there (or overwritten by a later attempt of the same writer),
/// and acknowledged versions of a key only grow, by at most one per attempt.
async fn check_acknowledged(state: &State, attempts: &[Attempt]) -> anyhow::Result<()> {
    let mut per_key: BTreeMap<(&str, &str), Vec<&Attempt>> = BTreeMap::new();
    for a in attempts {
        per_key
            .entry((a.scope, a.key.as_str()))
            .or_default()
            .push(a);
    }
    let mut lost = Vec::new();
    for ((scope, key), tries) in &per_key {
        // Versions acknowledged in order never go back, and between two acknowledged
        // versions there are at most as many changes as unknown-outcome attempts.
        let mut last_acked: Option<(usize, u64)> = None;
        for (i, t) in tries.iter().enumerate() {
            let Some(version) = t.acked else { continue };
            match last_acked {
                None => assert!(
                    version <= i as u64 + 1,
                    "{scope}/{key}: first ack is version {version} after {i} earlier attempts"
                ),
                Some((j, prev)) => {
                    let unknown_between =
                        tries[j + 1..i].iter().filter(|t| t.acked.is_none()).count();
                    assert!(
                        version > prev && version - prev <= 1 + unknown_between as u64,
                        "{scope}/{key}: acked version {version} after acked {prev} with \
                         {unknown_between} unknown attempts between"
                    );
                }
            }
            last_acked = Some((i, version));
        }
        let current = get_settled(state, scope, key).await?;
        let later: Vec<&str> = tries[last_acked.map_or(0, |(i, _)| i + 1)..]
            .iter()
            .map(|t| t.value.as_str())
            .collect();
        match (last_acked, current) {
            (Some((i, version)), Ok(got)) => {
                if got.version == version {
                    if got.value != tries[i].value {
                        lost.push(format!(
                            "{scope}/{key}: version {version} holds {:?}, acknowledged {:?}",
                            got.value, tries[i].value
                        ));
                    }
                } else if got.version < version {
                    lost.push(format!(
                        "{scope}/{key}: version {} < acknowledged {version}",
                        got.version
                    ));
                } else if !later.contains(&got.value.as_str())
                    || got.version - version > later.len() as u64
                {
                    lost.push(format!(
                        "{scope}/{key}: version {} value {:?} is not explained by the \
                         unacknowledged attempts after version {version}: {later:?}",
                        got.version, got.value
                    ));
                }
            }
            (Some((_, version)), Err(err)) => {
                lost.push(format!(
                    "{scope}/{key}: acknowledged v{version} but get fails: {err}"
                ));
            }
            (None, Ok(got)) => assert!(
                later.contains(&got.value.as_str()),
                "{scope}/{key}: never acknowledged, holds {:?}",
                got.value
            ),
            (None, Err(err)) => assert!(
                matches!(&err, CallError::Service(e) if e.code == ErrorCode::NotFound),
                "{scope}/{key}: never acknowledged; get fails with {err:?}"
            ),
        }
    }
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost or changed: {:#?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    Ok(())
}

#[tokio::test]
async fn sigkill_under_load_loses_no_acknowledged_write_and_kv_converges() -> anyhow::Result<()> {
    crash_under_load(
        &[],
        Disruption::KillService,
        Load {
            writers: 64,
            max_acks: 150,
            before: 1500,
            after: 1500,
            hard_limit: Duration::from_secs(40),
        },
    )
    .await
}

#[tokio::test]
async fn nats_restart_under_load_loses_nothing_and_service_reconnects() -> anyhow::Result<()> {
    crash_under_load(
        &[],
        Disruption::RestartNats,
        Load {
            writers: 64,
            max_acks: 150,
            before: 1500,
            after: 1500,
            hard_limit: Duration::from_secs(45),
        },
    )
    .await
}

#[tokio::test]
async fn durability_full_survives_sigkill() -> anyhow::Result<()> {
    crash_under_load(
        &[("durability", "full")],
        Disruption::KillService,
        Load {
            writers: 16,
            max_acks: 120,
            before: 300,
            after: 300,
            hard_limit: Duration::from_secs(40),
        },
    )
    .await
}

#[tokio::test]
async fn nats_crash_under_load_loses_nothing_and_kv_converges() -> anyhow::Result<()> {
    crash_under_load(
        &[],
        Disruption::KillNats,
        Load {
            writers: 64,
            max_acks: 150,
            before: 1500,
            after: 1500,
            hard_limit: Duration::from_secs(45),
        },
    )
    .await
}

/// When nats-server comes back with an empty store (a new or wiped server), the service
/// republishes every current entry: at start, and while running once it notices (on its next
/// mirrored change).
#[tokio::test]
async fn kv_is_rebuilt_when_nats_loses_its_store() -> anyhow::Result<()> {
    let mut env = StateEnv::start(&[]).await?;
    let state = env.state(Encoding::Json);
    for scope in SCOPES {
        state.scope_create(scope).await?;
        for i in 0..50 {
            state
                .set(scope, &format!("k{i}"), &format!("{scope}-{i}"))
                .await?;
        }
        state.delete(scope, "k0", None).await?;
    }
    let before = common_state::wait_kv_converged(&state, &env.js, DEADLINE).await?;
    assert_eq!(before.len(), SCOPES.len() * 49);

    // At start: service stopped, server replaced by one with an empty store, service started.
    let status = env.service.terminate(DEADLINE).await?;
    assert!(status.success(), "{status}");
    replace_with_empty_server(&mut env).await?;
    env.service.restart()?;
    wait_ready(&state, &env.js).await?;
    let after = common_state::wait_kv_converged(&state, &env.js, DEADLINE).await?;
    assert_eq!(after, before, "resync on start");

    // While running: the next change makes the mirror find the bucket gone and resync.
    replace_with_empty_server(&mut env).await?;
    // The service reconnects by itself; until then the write fails fast (no responders).
    eventually(DEADLINE, || state.set("crash.a", "trigger", "1")).await?;
    let rebuilt = common_state::wait_kv_converged(&state, &env.js, DEADLINE).await?;
    assert_eq!(rebuilt.len(), before.len() + 1);
    Ok(())
}

/// PRODUCT GAP (reported): a running service whose nats-server lost its store does not
/// notice until its next change: meanwhile the bucket does not exist (watchers fail with
/// "cannot open bucket") although SQLite holds data.
#[tokio::test]
async fn kv_is_rebuilt_without_a_write_when_nats_loses_its_store() -> anyhow::Result<()> {
    let mut env = StateEnv::start(&[]).await?;
    let state = env.state(Encoding::Json);
    state.scope_create("crash.a").await?;
    for i in 0..20 {
        state.set("crash.a", &format!("k{i}"), "v").await?;
    }
    common_state::wait_kv_converged(&state, &env.js, DEADLINE).await?;
    replace_with_empty_server(&mut env).await?;
    let rebuilt = common_state::wait_kv_converged(&state, &env.js, Duration::from_secs(10)).await?;
    assert_eq!(rebuilt.len(), 20);
    Ok(())
}

/// PRODUCT BUG (reported): the bucket's `max_value_size` is fixed when the bucket is created;
/// a service restarted with a larger `max_value_bytes` accepts values the bucket refuses, and
/// the mirror is stuck on the first of them (every later change stays unmirrored).
#[tokio::test]
async fn raising_max_value_bytes_keeps_the_mirror_working() -> anyhow::Result<()> {
    let mut env = StateEnv::start(&[("max_value_bytes", "1000")]).await?;
    let state = env.state(Encoding::Json);
    state.scope_create("crash.a").await?;
    state.set("crash.a", "small", "x").await?;
    common_state::wait_kv_converged(&state, &env.js, DEADLINE).await?;
    env.service.terminate(DEADLINE).await?;
    let mut service = common_state::StateProcess::spawn(
        &env.nats.url(),
        env.data.path(),
        &[("max_value_bytes", "5000")],
    )?;
    wait_ready(&state, &env.js).await?;
    state.set("crash.a", "big", &"v".repeat(3000)).await?;
    state.set("crash.a", "after", "y").await?;
    common_state::wait_kv_converged(&state, &env.js, Duration::from_secs(10))
        .await
        .map_err(|e| e.context(format!("plantd-state stderr:\n{}", service.stderr())))?;
    service.kill()?;
    Ok(())
}
