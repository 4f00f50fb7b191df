//! Watching state through the KV mirror with `plantd_state::watch`: every change of a scope in
//! order, across restarts of the state service, from the current values, scoped (no sibling
//! scopes) and filtered by key prefix.

mod common_state;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common_state::{DEADLINE, State, StateEnv, Watcher, wait_ready};
use plantd_shared::ErrorCode;
use plantd_shared::call::CallError;
use plantd_shared::codec::Encoding;
use plantd_state::watch::{Change, ChangeOp, WatchFrom, WatchSpec};
use plantd_tests::{Signal, eventually};

/// A change as the tests compare it: key, op, value.
type Seen = (String, ChangeOp, String);

fn spec(scope: &str, from: WatchFrom) -> WatchSpec {
    WatchSpec {
        scope: scope.into(),
        subtree: false,
        prefix: String::new(),
        from,
    }
}

fn seen(changes: &[Change]) -> Vec<Seen> {
    changes
        .iter()
        .map(|c| (c.key.clone(), c.op, c.value.clone()))
        .collect()
}

fn put(key: &str, value: &str) -> Seen {
    (key.into(), ChangeOp::Put, value.into())
}

fn del(key: &str) -> Seen {
    (key.into(), ChangeOp::Delete, String::new())
}

/// Revisions grow strictly, so no entry is delivered twice or out of order.
fn assert_revisions_increase(changes: &[Change]) {
    for pair in changes.windows(2) {
        assert!(
            pair[0].revision < pair[1].revision,
            "revisions not strictly increasing: {:?} then {:?}",
            pair[0],
            pair[1]
        );
    }
}

/// Waits until the watch has seen a put of `value` to `key` and returns everything up to it.
async fn until_put(watcher: &Watcher, key: &str, value: &str) -> anyhow::Result<Vec<Change>> {
    let changes = watcher
        .wait_until(DEADLINE, &format!("{key}={value}"), |cs| {
            cs.iter()
                .any(|c| c.key == key && c.value == value && c.op == ChangeOp::Put)
        })
        .await?;
    let end = changes
        .iter()
        .position(|c| c.key == key && c.value == value)
        .expect("just seen");
    Ok(changes[..=end].to_vec())
}

#[tokio::test]
async fn watch_sees_every_change_in_order() -> anyhow::Result<()> {
    let env = StateEnv::start(&[]).await?;
    let state = env.state(Encoding::Json);
    state.scope_create("line1").await?;
    let watcher = Watcher::start(&env.js, spec("line1", WatchFrom::Now)).await?;

    let mut expected = Vec::new();
    for i in 0..30 {
        let key = ["temp", "pressure", "Ofen ü.1"][i % 3];
        let value = format!("v{i}");
        state.set("line1", key, &value).await?;
        expected.push(put(key, &value));
        if i % 7 == 6 {
            assert!(state.delete("line1", key, None).await?.existed);
            expected.push(del(key));
            // A delete of a missing key is no change.
            assert!(!state.delete("line1", key, None).await?.existed);
        }
    }
    state.set("line1", "end", "1").await?;
    expected.push(put("end", "1"));
    let changes = until_put(&watcher, "end", "1").await?;
    assert_eq!(seen(&changes), expected);
    assert_revisions_increase(&changes);
    assert!(changes.iter().all(|c| c.scope == "line1"));
    Ok(())
}

/// One writer's operations on its own keys, with the outcome settled.
#[derive(Debug, Clone)]
struct Op {
    key: String,
    /// `Some(value)` for a put, `None` for a delete.
    value: Option<String>,
    /// Whether the op changed the key (settled by reading back after an error).
    applied: bool,
}

/// Reads `key` until the service answers (it may be restarting): `Some(value)` or `None`.
async fn settled_value(state: &State, scope: &str, key: &str) -> anyhow::Result<Option<String>> {
    eventually(DEADLINE, || async {
        match state.get(scope, key).await {
            Ok(got) => Ok(Some(got.value)),
            Err(CallError::Service(e)) if e.code == ErrorCode::NotFound => Ok(None),
            Err(err) => Err(anyhow::anyhow!("{err}")),
        }
    })
    .await
}

/// Writer `id` puts and now and then deletes its two keys until `stop`. Only this writer
/// touches its keys, so an op that failed (the service died under it) is settled exactly by
/// reading the key back once the service answers again.
async fn watch_writer(
    id: usize,
    state: State,
    scope: &'static str,
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicU64>,
) -> anyhow::Result<Vec<Op>> {
    let keys = [format!("w{id}-a"), format!("w{id}-b")];
    let mut present = [false, false];
    let mut ops = Vec::new();
    for i in 0..2_000 {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let k = i % 2;
        let key = keys[k].clone();
        let op = if present[k] && i % 5 == 4 {
            let result = state.delete(scope, &key, None).await;
            let applied = match result {
                Ok(reply) => {
                    assert!(reply.existed, "{key} should exist");
                    true
                }
                Err(_) => settled_value(&state, scope, &key).await?.is_none(),
            };
            if applied {
                present[k] = false;
            }
            Op {
                key,
                value: None,
                applied,
            }
        } else {
            let value = format!("w{id}-{i}");
            let applied = match state.set(scope, &key, &value).await {
                Ok(_) => true,
                Err(_) => settled_value(&state, scope, &key).await?.as_deref() == Some(&*value),
            };
            if applied {
                present[k] = true;
            }
            Op {
                key,
                value: Some(value),
                applied,
            }
        };
        if op.applied {
            acks.fetch_add(1, Ordering::SeqCst);
        }
        ops.push(op);
    }
    Ok(ops)
}

/// Writers keep changing a scope while `plantd-state` is stopped with `signal` and restarted;
/// the watch (connected to NATS the whole time) sees every applied change exactly once, each
/// key's changes in the order they were made, revisions strictly increasing.
async fn watch_across_service_restart(signal: Signal) -> anyhow::Result<()> {
    let mut env = StateEnv::start(&[]).await?;
    let state = env
        .state(Encoding::Json)
        .with_timeout(Duration::from_secs(2));
    let scope = "restart";
    state.scope_create(scope).await?;
    let watcher = Watcher::start(&env.js, spec(scope, WatchFrom::Now)).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..8)
        .map(|id| {
            tokio::spawn(watch_writer(
                id,
                state.clone(),
                scope,
                Arc::clone(&stop),
                Arc::clone(&acks),
            ))
        })
        .collect();
    let wait_acks = |target: u64| {
        let acks = Arc::clone(&acks);
        async move {
            eventually(DEADLINE, || async {
                let n = acks.load(Ordering::SeqCst);
                (n >= target)
                    .then_some(())
                    .ok_or_else(|| anyhow::anyhow!("{n} applied changes, waiting for {target}"))
            })
            .await
        }
    };
    wait_acks(100).await?;
    // Changes applied but not yet watched when the service stops: the mirror is that far
    // behind (its outbox, or acks in flight), and must catch up after the restart.
    let lag_at_stop = acks
        .load(Ordering::SeqCst)
        .saturating_sub(watcher.changes().len() as u64);
    if signal == Signal::SIGKILL {
        env.service.kill()?;
    } else {
        let status = env.service.terminate(DEADLINE).await?;
        assert!(
            status.success(),
            "plantd-state exits cleanly on {signal}: {status}"
        );
    }
    let at_restart = acks.load(Ordering::SeqCst);
    env.service.restart()?;
    wait_ready(&state, &env.js).await?;
    wait_acks(at_restart + 100).await?;
    stop.store(true, Ordering::SeqCst);
    let mut ops = Vec::new();
    for writer in writers {
        ops.extend(writer.await??);
    }
    state.set(scope, "sentinel", "end").await?;
    let changes = until_put(&watcher, "sentinel", "end").await?;
    let changes = &changes[..changes.len() - 1];

    assert_revisions_increase(changes);
    // Per key: exactly the applied ops, in order.
    let mut expected: BTreeMap<&str, Vec<Seen>> = BTreeMap::new();
    for op in ops.iter().filter(|op| op.applied) {
        let item = match &op.value {
            Some(v) => put(&op.key, v),
            None => del(&op.key),
        };
        expected.entry(&op.key).or_default().push(item);
    }
    let mut actual: BTreeMap<&str, Vec<Seen>> = BTreeMap::new();
    for c in changes {
        actual
            .entry(c.key.as_str())
            .or_default()
            .push((c.key.clone(), c.op, c.value.clone()));
    }
    for (key, want) in &expected {
        let got = actual.get(key).cloned().unwrap_or_default();
        if &got != want {
            let first = got.iter().zip(want).position(|(g, w)| g != w);
            panic!(
                "{signal}: key {key}: watch saw {} changes, {} were made; first difference at \
                 {first:?}; seen tail {:?}, made tail {:?}\nstderr:\n{}",
                got.len(),
                want.len(),
                &got[got.len().saturating_sub(3)..],
                &want[want.len().saturating_sub(3)..],
                env.service.stderr()
            );
        }
    }
    let unexpected: BTreeSet<_> = actual
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    assert!(
        unexpected.is_empty(),
        "changes of unknown keys: {unexpected:?}"
    );
    let settled = ops.iter().filter(|op| !op.applied).count();
    eprintln!(
        "{signal}: {} changes watched in order ({} ops, {settled} not applied, mirror about \
         {lag_at_stop} behind at the stop); watch errors {:?}",
        changes.len(),
        ops.len(),
        watcher.errors()
    );
    Ok(())
}

#[tokio::test]
async fn watch_follows_changes_across_a_sigkill_of_the_service() -> anyhow::Result<()> {
    watch_across_service_restart(Signal::SIGKILL).await
}

#[tokio::test]
async fn watch_follows_changes_across_a_sigterm_of_the_service() -> anyhow::Result<()> {
    watch_across_service_restart(Signal::SIGTERM).await
}

#[tokio::test]
async fn watch_from_current_shows_existing_values_first() -> anyhow::Result<()> {
    let env = StateEnv::start(&[]).await?;
    let state = env.state(Encoding::Protobuf);
    state.scope_create("cur").await?;
    state.set("cur", "a", "a1").await?;
    state.set("cur", "a", "a2").await?;
    state.set("cur", "b", "b1").await?;
    state.set("cur", "gone", "x").await?;
    state.delete("cur", "gone", None).await?;
    state.set("cur", "c", "c1").await?;
    common_state::wait_kv_converged(&state, &env.js, DEADLINE).await?;

    let watcher = Watcher::start(&env.js, spec("cur", WatchFrom::Current)).await?;
    // The current value of each key in bucket order (last change per key), deletes included.
    let initial = watcher
        .wait_until(DEADLINE, "the current values", |cs| cs.len() >= 4)
        .await?;
    assert_eq!(
        seen(&initial[..4]),
        [put("a", "a2"), put("b", "b1"), del("gone"), put("c", "c1")]
    );
    state.set("cur", "b", "b2").await?;
    let changes = until_put(&watcher, "b", "b2").await?;
    assert_eq!(changes.len(), 5, "{changes:?}");
    assert_revisions_increase(&changes);

    // A watch from "now" sees none of the existing values.
    let now = Watcher::start(&env.js, spec("cur", WatchFrom::Now)).await?;
    state.set("cur", "d", "d1").await?;
    let later = until_put(&now, "d", "d1").await?;
    assert_eq!(seen(&later), [put("d", "d1")]);
    // From a revision: that revision and everything after it.
    let rev = changes[4].revision;
    let from = Watcher::start(&env.js, spec("cur", WatchFrom::Revision(rev))).await?;
    let replay = until_put(&from, "d", "d1").await?;
    assert_eq!(seen(&replay), [put("b", "b2"), put("d", "d1")]);
    Ok(())
}

#[tokio::test]
async fn scope_watch_sees_neither_siblings_nor_sub_scopes() -> anyhow::Result<()> {
    let env = StateEnv::start(&[("auto_create_scopes", "true")]).await?;
    let state = env.state(Encoding::Json);
    let own = Watcher::start(&env.js, spec("plant.a", WatchFrom::Now)).await?;
    let subtree = Watcher::start(
        &env.js,
        WatchSpec {
            subtree: true,
            ..spec("plant.a", WatchFrom::Now)
        },
    )
    .await?;
    for (scope, key) in [
        ("plant", "a"),
        ("plant.ab", "x"),
        ("plant.b", "x"),
        ("plant.a", "x"),
        ("plant.a.sub", "y"),
        ("plant.a", "b.c"),
        ("plantx.a", "x"),
        ("other.plant.a", "x"),
    ] {
        state.set(scope, key, &format!("{scope}/{key}")).await?;
    }
    state.set("plant.a", "end", "1").await?;
    let changes = until_put(&own, "end", "1").await?;
    let keys: Vec<(String, String)> = changes
        .iter()
        .map(|c| (c.scope.clone(), c.key.clone()))
        .collect();
    let want = |items: &[(&str, &str)]| -> Vec<(String, String)> {
        items
            .iter()
            .map(|(s, k)| (s.to_string(), k.to_string()))
            .collect()
    };
    assert_eq!(
        keys,
        want(&[("plant.a", "x"), ("plant.a", "b.c"), ("plant.a", "end")]),
        "a scope watch sees its own keys only (a key with dots is not a sub-scope)"
    );
    let changes = until_put(&subtree, "end", "1").await?;
    let keys: Vec<(String, String)> = changes
        .iter()
        .map(|c| (c.scope.clone(), c.key.clone()))
        .collect();
    assert_eq!(
        keys,
        want(&[
            ("plant.a", "x"),
            ("plant.a.sub", "y"),
            ("plant.a", "b.c"),
            ("plant.a", "end")
        ]),
        "a subtree watch adds sub-scopes, still no siblings"
    );
    Ok(())
}

#[tokio::test]
async fn prefix_filter_keeps_only_matching_keys() -> anyhow::Result<()> {
    let env = StateEnv::start(&[]).await?;
    let state = env.state(Encoding::Json);
    state.scope_create("pf").await?;
    let watcher = Watcher::start(
        &env.js,
        WatchSpec {
            prefix: "temp".into(),
            ..spec("pf", WatchFrom::Now)
        },
    )
    .await?;
    for key in [
        "temp1", "pressure", "temp.x", "tem", "Temp2", "temp ü", "xtemp",
    ] {
        state.set("pf", key, key).await?;
    }
    state.delete("pf", "temp1", None).await?;
    state.delete("pf", "pressure", None).await?;
    state.set("pf", "temp-end", "1").await?;
    let changes = until_put(&watcher, "temp-end", "1").await?;
    assert_eq!(
        seen(&changes),
        [
            put("temp1", "temp1"),
            put("temp.x", "temp.x"),
            put("temp ü", "temp ü"),
            del("temp1"),
            put("temp-end", "1"),
        ]
    );
    assert_revisions_increase(&changes);
    Ok(())
}

/// PRODUCT BUG (reported): `WatchFrom::Revision(r)` starts with no floor, and async-nats
/// recreates an ordered consumer that has delivered nothing yet with `DeliverPolicy::All`
/// (NATS-PITFALLS.md §4.2). A watch resumed from "last applied revision + 1" that sees no
/// change before a nats-server restart then replays every older revision of the scope.
#[tokio::test]
async fn watch_from_revision_never_yields_older_revisions() -> anyhow::Result<()> {
    let mut env = StateEnv::start(&[]).await?;
    let state = env.state(Encoding::Json);
    state.scope_create("resume").await?;
    for i in 0..5 {
        state.set("resume", "k", &format!("old{i}")).await?;
    }
    common_state::wait_kv_converged(&state, &env.js, DEADLINE).await?;
    let store = env.js.get_key_value(common_state::BUCKET).await?;
    let next = store.status().await?.info.state.last_sequence + 1;
    let watcher = Watcher::start(&env.js, spec("resume", WatchFrom::Revision(next))).await?;
    env.nats.restart().await?;
    wait_ready(&state, &env.js).await?;
    state.set("resume", "k", "new").await?;
    let changes = until_put(&watcher, "k", "new").await?;
    assert!(
        changes.iter().all(|c| c.revision >= next),
        "revisions below {next} yielded: {:?}",
        seen(&changes)
    );
    Ok(())
}

/// Issue #15 item 6: a long-lived watcher across a recreation of the bucket (deleted under a
/// running service, whose mirror recreates and refills it). Revisions restart at 1, below the
/// last one the watcher yielded; it must notice (its consumer is gone: heartbeats stop), follow
/// the new bucket from its current values and keep seeing changes — not drop them all as
/// "already seen".
#[tokio::test]
async fn watch_survives_a_recreated_bucket() -> anyhow::Result<()> {
    let env = StateEnv::start(&[]).await?;
    let state = env.state(Encoding::Json);
    state.scope_create("line1").await?;
    // Enough revisions that the recreated bucket starts far below the watcher's last one.
    for i in 0..20 {
        state.set("line1", "filler", &format!("f{i}")).await?;
    }
    let watcher = Watcher::start(&env.js, spec("line1", WatchFrom::Now)).await?;
    state.set("line1", "temp", "before").await?;
    let before = until_put(&watcher, "temp", "before").await?;
    let high = before.last().map_or(0, |c| c.revision);
    assert!(high > 20, "revision {high}");

    env.js.delete_key_value("plantd-state").await?;
    // One change while the bucket is gone: the mirror's publish fails, it recreates the bucket
    // and resyncs from SQLite (a handful of revisions, far below `high`).
    state.set("line1", "temp", "after").await?;
    let after = watcher
        .wait_until(Duration::from_secs(30), "temp=after", |cs| {
            cs.iter().any(|c| c.key == "temp" && c.value == "after")
        })
        .await?;
    let recreated: Vec<&Change> = after.iter().filter(|c| c.revision < high).collect();
    assert!(
        !recreated.is_empty(),
        "the new bucket's changes (revisions below {high}) were delivered: {after:?}"
    );
    let last = after.last().expect("changes");
    assert_eq!((last.key.as_str(), last.value.as_str()), ("temp", "after"));
    println!(
        "watch across a recreated bucket: last revision before {high}, after {} ({} changes)",
        last.revision,
        after.len()
    );
    Ok(())
}
