//! Group commit: concurrent writers share transactions, a failing op only fails itself, and
//! compare-and-set stays exact under races.

use super::{TestStore, eventually, stall_writer};
use crate::store::{Durability, StoreConfig, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sets_share_commits_and_get_distinct_versions() {
    let store = TestStore::open(StoreConfig {
        auto_create_scopes: true,
        // A synced commit is slower, which is exactly when batching matters.
        durability: Durability::Full,
        ..StoreConfig::default()
    });
    let before = store.writer.stats();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let w = store.writer.clone();
            tokio::spawn(async move { w.set("s", "counter", &format!("{i}"), false, None).await })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.unwrap().unwrap().version);
    }
    versions.sort_unstable();
    assert_eq!(
        versions,
        (1..=200).collect::<Vec<u64>>(),
        "each set got its own version"
    );

    let after = store.writer.stats();
    let groups = after.commit_groups - before.commit_groups;
    assert_eq!(after.ops - before.ops, 200);
    assert!(groups < 200, "200 concurrent sets took {groups} commits");
    assert_eq!(store.reader.get("s", "counter").await.unwrap().version, 200);
    assert_eq!(store.reader.outbox_after(0, 1000).await.unwrap().len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_ops_commit_as_one_group() {
    let store = TestStore::auto_create();
    let (lock, plug) = stall_writer(&store).await;
    let before = store.writer.stats();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let w = store.writer.clone();
            tokio::spawn(async move { w.set("s", &format!("k{i:03}"), "v", false, None).await })
        })
        .collect();
    let w = store.writer.clone();
    eventually("100 queued ops", || w.queued() == 100).await;
    lock.release();
    plug.await.unwrap();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().version, 1);
    }
    let after = store.writer.stats();
    // The plug's batch, then everything that queued behind it.
    assert_eq!(after.commit_groups - before.commit_groups, 2);
    assert_eq!(after.ops - before.ops, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_op_does_not_affect_its_batch_neighbours() {
    let store = TestStore::open(StoreConfig::default());
    store.writer.scope_create("s").await.unwrap();
    store
        .writer
        .set("s", "taken", "old", false, None)
        .await
        .unwrap();
    let outbox_before = store.reader.outbox_after(0, 100).await.unwrap().len();

    let (lock, plug) = stall_writer(&store).await;
    let before = store.writer.stats();
    // Submitted one by one so the queue order is known.
    let mut tasks = Vec::new();
    let ops: [(&str, &str, bool); 4] = [
        ("s", "a", false),
        ("s", "taken", true),    // 409: create_only on an existing key
        ("missing", "b", false), // 404: no such scope
        ("s", "c", false),
    ];
    for (n, (scope, key, create_only)) in ops.into_iter().enumerate() {
        let w = store.writer.clone();
        tasks.push(tokio::spawn(async move {
            w.set(scope, key, "new", create_only, None).await
        }));
        let w = store.writer.clone();
        eventually("the op to queue", || w.queued() == n + 1).await;
    }
    lock.release();
    plug.await.unwrap();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    assert_eq!(store.writer.stats().commit_groups - before.commit_groups, 2);

    assert_eq!(results[0].as_ref().map(|o| o.version), Ok(1));
    assert_eq!(results[1].as_ref().map_err(StoreError::code), Err(409));
    assert_eq!(results[2].as_ref().map_err(StoreError::code), Err(404));
    assert_eq!(results[3].as_ref().map(|o| o.version), Ok(1));

    assert_eq!(store.reader.get("s", "taken").await.unwrap().value, "old");
    assert_eq!(store.reader.get("s", "a").await.unwrap().value, "new");
    assert_eq!(store.reader.get("s", "c").await.unwrap().value, "new");
    let rows = store.reader.outbox_after(0, 100).await.unwrap();
    let new_keys: Vec<_> = rows[outbox_before..]
        .iter()
        .map(|r| r.key.as_str())
        .collect();
    assert_eq!(new_keys, ["a", "c"], "failed ops wrote no outbox rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compare_and_set_race_has_exactly_one_winner() {
    let store = TestStore::auto_create();
    for round in 0..20 {
        let key = format!("k{round}");
        store
            .writer
            .set("s", &key, "base", false, None)
            .await
            .unwrap();
        let racers: Vec<_> = ["left", "right"]
            .into_iter()
            .map(|value| {
                let (w, key) = (store.writer.clone(), key.clone());
                tokio::spawn(async move { w.set("s", &key, value, false, Some(1)).await })
            })
            .collect();
        let mut wins = 0;
        let mut conflicts = 0;
        for racer in racers {
            match racer.await.unwrap() {
                Ok(outcome) => {
                    assert_eq!(outcome.version, 2);
                    wins += 1;
                }
                Err(err) => {
                    assert_eq!(err.code(), 409, "{err}");
                    conflicts += 1;
                }
            }
        }
        assert_eq!((wins, conflicts), (1, 1), "round {round}");
        assert_eq!(store.reader.get("s", &key).await.unwrap().version, 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compare_and_set_in_one_batch_has_exactly_one_winner() {
    let store = TestStore::auto_create();
    store
        .writer
        .set("s", "k", "base", false, None)
        .await
        .unwrap();
    let (lock, plug) = stall_writer(&store).await;
    let racers: Vec<_> = ["left", "right"]
        .into_iter()
        .map(|value| {
            let w = store.writer.clone();
            tokio::spawn(async move { w.set("s", "k", value, false, Some(1)).await })
        })
        .collect();
    let w = store.writer.clone();
    eventually("both racers to queue", || w.queued() == 2).await;
    lock.release();
    plug.await.unwrap();
    let mut codes = Vec::new();
    for racer in racers {
        codes.push(racer.await.unwrap().map_or_else(|e| e.code(), |_| 200));
    }
    codes.sort_unstable();
    assert_eq!(codes, [200, 409]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_that_cannot_commit_fails_every_op_and_changes_nothing() {
    let store = TestStore::open(StoreConfig {
        auto_create_scopes: true,
        busy_timeout_ms: 20,
        ..StoreConfig::default()
    });
    // Another process holds the write lock longer than the busy timeout.
    let lock = super::WriteLock::hold(&store.path());
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            let w = store.writer.clone();
            tokio::spawn(async move { w.set("s", &format!("k{i}"), "v", false, None).await })
        })
        .collect();
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert_eq!(err.code(), 500, "{err}");
        assert!(err.to_string().contains("locked"), "{err}");
    }
    let stats = store.writer.stats();
    assert!(stats.failed_commits >= 1);
    assert_eq!(stats.commit_groups, 0);
    lock.release();

    assert!(store.reader.scope_list().await.unwrap().is_empty());
    assert!(store.reader.outbox_after(0, 10).await.unwrap().is_empty());
    assert_eq!(
        store
            .writer
            .set("s", "k0", "v", false, None)
            .await
            .unwrap()
            .version,
        1
    );
}
