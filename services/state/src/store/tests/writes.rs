//! Every write op and every error code it can produce.

use super::{TestStore, WriteLock, eventually};
use crate::store::{Missing, Store, StoreConfig, StoreError, WriteOp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_create_is_idempotent() {
    let store = TestStore::open(StoreConfig::default());
    assert!(
        store
            .writer
            .scope_create("site1.oven")
            .await
            .unwrap()
            .created
    );
    assert!(
        !store
            .writer
            .scope_create("site1.oven")
            .await
            .unwrap()
            .created
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_creates_then_increments_versions() {
    let store = TestStore::open(StoreConfig::default());
    store.writer.scope_create("s").await.unwrap();
    let first = store.writer.set("s", "k", "1", false, None).await.unwrap();
    assert_eq!(first.version, 1);
    let second = store.writer.set("s", "k", "2", false, None).await.unwrap();
    assert_eq!(second.version, 2);
    assert!(second.modified >= first.modified);

    let entry = store.reader.get("s", "k").await.unwrap();
    assert_eq!((entry.value.as_str(), entry.version), ("2", 2));
    assert_eq!(
        entry.created, first.modified,
        "created stays at the first write"
    );
    assert_eq!(entry.modified, second.modified);

    // After a delete the key starts over at version 1.
    store.writer.delete("s", "k", None).await.unwrap();
    let again = store.writer.set("s", "k", "3", false, None).await.unwrap();
    assert_eq!(again.version, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_in_a_missing_scope_is_404_unless_scopes_are_auto_created() {
    let store = TestStore::open(StoreConfig::default());
    let err = store
        .writer
        .set("nope", "k", "v", false, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), 404);
    assert_eq!(
        err,
        StoreError::NotFound(Missing::Scope {
            scope: "nope".into()
        })
    );
    assert_eq!(err.to_string(), "scope \"nope\" not found");

    let store = TestStore::auto_create();
    assert_eq!(
        store
            .writer
            .set("new.scope", "k", "v", false, None)
            .await
            .unwrap()
            .version,
        1
    );
    let scopes = store.reader.scope_list().await.unwrap();
    assert_eq!(scopes.len(), 1);
    assert_eq!(
        (scopes[0].name.as_str(), scopes[0].key_count),
        ("new.scope", 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_only_and_expected_version_conflicts_are_409() {
    let store = TestStore::auto_create();
    let w = &store.writer;
    assert_eq!(w.set("s", "k", "a", true, None).await.unwrap().version, 1);

    let err = w.set("s", "k", "b", true, None).await.unwrap_err();
    assert_eq!(err.code(), 409);
    assert_eq!(
        err.to_string(),
        "key \"k\" already exists in scope \"s\" (version 1)"
    );

    let err = w.set("s", "k", "b", false, Some(5)).await.unwrap_err();
    assert_eq!(err.code(), 409);
    assert_eq!(
        err.to_string(),
        "key \"k\" in scope \"s\": expected version 5, the current version is 1"
    );
    let err = w.set("s", "k", "b", false, Some(0)).await.unwrap_err();
    assert_eq!(err.code(), 409, "0 means the key must not exist");

    let err = w.set("s", "other", "b", false, Some(3)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "key \"other\" in scope \"s\": expected version 3, the key does not exist"
    );
    assert_eq!(
        w.set("s", "other", "b", false, Some(0))
            .await
            .unwrap()
            .version,
        1
    );
    assert_eq!(
        w.set("s", "k", "b", false, Some(1)).await.unwrap().version,
        2
    );

    // A conflict changes nothing.
    assert_eq!(store.reader.get("s", "k").await.unwrap().value, "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_reports_what_it_did() {
    let store = TestStore::auto_create();
    let w = &store.writer;
    w.set("s", "k", "v", false, None).await.unwrap();
    w.set("s", "k", "v2", false, None).await.unwrap();

    let err = w.delete("s", "k", Some(1)).await.unwrap_err();
    assert_eq!(err.code(), 409);
    let outcome = w.delete("s", "k", Some(2)).await.unwrap();
    assert!(outcome.existed);
    assert_eq!(outcome.last_version, 2);

    let missing = w.delete("s", "k", None).await.unwrap();
    assert!(!missing.existed);
    assert_eq!(missing.last_version, 0);
    assert!(!w.delete("s", "k", Some(0)).await.unwrap().existed);
    assert_eq!(w.delete("s", "k", Some(4)).await.unwrap_err().code(), 409);

    let err = w.delete("nope", "k", None).await.unwrap_err();
    assert_eq!(err.code(), 404);
    assert_eq!(err.to_string(), "scope \"nope\" not found");

    let err = store.reader.get("s", "k").await.unwrap_err();
    assert_eq!(err.to_string(), "key \"k\" not found in scope \"s\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_delete_removes_its_keys_but_not_sub_scopes() {
    let store = TestStore::auto_create();
    let w = &store.writer;
    for key in ["a", "b", "c"] {
        w.set("site", key, "v", false, None).await.unwrap();
    }
    w.set("site.sub", "x", "v", false, None).await.unwrap();

    let outcome = w.scope_delete("site").await.unwrap();
    assert!(outcome.existed);
    assert_eq!(outcome.deleted_keys, 3);
    assert_eq!(
        store.reader.get("site", "a").await.unwrap_err().to_string(),
        "scope \"site\" not found"
    );
    assert_eq!(store.reader.get("site.sub", "x").await.unwrap().value, "v");

    let again = w.scope_delete("site").await.unwrap();
    assert!(!again.existed);
    assert_eq!(again.deleted_keys, 0);
    assert_eq!(w.scope_delete("site.sub").await.unwrap().deleted_keys, 1);
    assert!(store.reader.scope_list().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_400_or_413_and_never_queued() {
    let store = TestStore::auto_create();
    let w = &store.writer;
    let cases = [
        (w.set("a..b", "k", "v", false, None).await, 400, "scope"),
        (w.set("a.*", "k", "v", false, None).await, 400, "scope"),
        (w.set("a", "", "v", false, None).await, 400, "key"),
        (
            w.set("a", &"k".repeat(1025), "v", false, None).await,
            413,
            "key",
        ),
        (
            w.set("a", "k", &"v".repeat(1024 * 1024 + 1), false, None)
                .await,
            413,
            "value",
        ),
    ];
    for (result, code, field) in cases {
        let err = result.unwrap_err();
        assert_eq!((err.code(), err.field()), (code, Some(field)), "{err}");
    }
    assert_eq!(w.delete("a b", "k", None).await.unwrap_err().code(), 400);
    assert_eq!(w.scope_create("").await.unwrap_err().code(), 400);
    assert_eq!(w.scope_delete("x.>").await.unwrap_err().code(), 400);
    assert_eq!(w.stats().ops, 0, "invalid ops never reach the writer");

    let err = store.reader.get("a", "").await.unwrap_err();
    assert_eq!((err.code(), err.field()), (400, Some("key")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_queued_ops_then_answers_503() {
    let mut store = TestStore::auto_create();
    let lock = WriteLock::hold(&store.path());
    let mut tasks = Vec::new();
    for i in 0..10 {
        let w = store.writer.clone();
        tasks.push(tokio::spawn(async move {
            w.set("s", &format!("k{i}"), "v", false, None).await
        }));
    }
    let w = store.writer.clone();
    eventually("10 ops to be taken or queued", || {
        w.queued() + w.stats().ops as usize == 10
    })
    .await;
    let shutdown = {
        let w = store.writer.clone();
        tokio::spawn(async move { w.shutdown().await })
    };
    shutdown.await.unwrap();
    lock.release();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().version, 1);
    }
    store.stop().await;

    let err = store
        .writer
        .set("s", "late", "v", false, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), 503);
    assert_eq!(
        err.to_string(),
        "state store unavailable: the writer has stopped"
    );
    assert_eq!(
        store
            .reader
            .list("s", "", 0, "")
            .await
            .unwrap()
            .entries
            .len(),
        10
    );
    assert!(
        store.writer.committed().has_changed().is_err(),
        "watch closed with the writer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_stops_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, _reader, join) =
        Store::open(super::db_path(dir.path()), StoreConfig::default()).unwrap();
    writer.scope_create("s").await.unwrap();
    drop(writer);
    tokio::task::spawn_blocking(move || join.join())
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn open_failures_are_500_without_sql_and_bad_config_is_400() {
    let err = Store::open("/nonexistent-dir/x/state.db", StoreConfig::default()).unwrap_err();
    assert_eq!(err.code(), 500);
    assert!(
        err.to_string()
            .contains("opening the database at /nonexistent-dir/x/state.db"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        queue_capacity: 0,
        ..StoreConfig::default()
    };
    let err = Store::open(super::db_path(dir.path()), config).unwrap_err();
    assert_eq!((err.code(), err.field()), (400, Some("queue_capacity")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_returns_the_matching_outcome() {
    let store = TestStore::auto_create();
    let outcome = store
        .writer
        .submit(WriteOp::ScopeCreate { scope: "s".into() })
        .await
        .unwrap();
    assert_eq!(
        outcome,
        crate::store::WriteOutcome::ScopeCreate(crate::store::ScopeCreateOutcome { created: true })
    );
}
