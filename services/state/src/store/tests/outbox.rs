//! The outbox: one row per committed change, in commit order, removed by `OutboxDone`, and
//! surviving a restart together with the data.

use super::TestStore;
use crate::store::{OutboxOp, Store, StoreConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_gets_one_row_in_commit_order() {
    let store = TestStore::auto_create();
    let (w, r) = (&store.writer, &store.reader);
    let mut committed = w.committed();
    assert_eq!(*committed.borrow_and_update(), 0);

    w.set("s", "a", "1", false, None).await.unwrap();
    w.set("s", "b", "2", false, None).await.unwrap();
    w.set("s", "a", "3", false, None).await.unwrap();
    w.delete("s", "b", None).await.unwrap();
    w.delete("s", "missing", None).await.unwrap(); // no row: nothing changed
    w.set("s", "k", "v", true, None).await.unwrap();
    w.set("s", "k", "v", true, None).await.unwrap_err(); // no row: rolled back
    w.scope_create("empty").await.unwrap(); // no row: KV has no scopes
    w.set("t", "x", "9", false, None).await.unwrap();
    let deleted = w.scope_delete("s").await.unwrap();
    assert_eq!(deleted.deleted_keys, 2);

    let rows = r.outbox_after(0, 100).await.unwrap();
    let summary: Vec<_> = rows
        .iter()
        .map(|row| {
            (
                row.scope.as_str(),
                row.key.as_str(),
                row.op,
                row.value.as_deref(),
                row.version,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("s", "a", OutboxOp::Put, Some("1"), 1),
            ("s", "b", OutboxOp::Put, Some("2"), 1),
            ("s", "a", OutboxOp::Put, Some("3"), 2),
            ("s", "b", OutboxOp::Del, None, 1),
            ("s", "k", OutboxOp::Put, Some("v"), 1),
            ("t", "x", OutboxOp::Put, Some("9"), 1),
            ("s", "a", OutboxOp::Del, None, 2),
            ("s", "k", OutboxOp::Del, None, 1),
        ]
    );
    let seqs: Vec<u64> = rows.iter().map(|row| row.seq).collect();
    assert!(seqs.windows(2).all(|p| p[0] < p[1]), "{seqs:?}");
    let last = *seqs.last().unwrap();
    assert!(committed.has_changed().unwrap());
    assert_eq!(*committed.borrow_and_update(), last);

    // Paging through the outbox.
    let page = r.outbox_after(seqs[2], 2).await.unwrap();
    assert_eq!(
        page.iter().map(|row| row.seq).collect::<Vec<_>>(),
        seqs[3..5]
    );

    // The mirror acknowledges the first five; they go, the rest stay.
    let done = w.outbox_done(seqs[4]).await.unwrap();
    assert_eq!(done.removed, 5);
    let rest = r.outbox_after(0, 100).await.unwrap();
    assert_eq!(
        rest.iter().map(|row| row.seq).collect::<Vec<_>>(),
        seqs[5..]
    );
    assert!(
        !committed.has_changed().unwrap(),
        "OutboxDone writes no rows"
    );

    assert_eq!(w.outbox_done(u64::MAX).await.unwrap().removed, 3);
    assert!(r.outbox_after(0, 100).await.unwrap().is_empty());
    assert_eq!(
        r.last_outbox_seq().await.unwrap(),
        last,
        "seq survives an empty outbox"
    );

    // A sequence number is never reused.
    w.set("t", "x", "10", false, None).await.unwrap();
    assert_eq!(r.outbox_after(0, 10).await.unwrap()[0].seq, last + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_wakes_a_waiting_mirror() {
    let store = TestStore::auto_create();
    let mut committed = store.writer.committed();
    let waiter = tokio::spawn(async move {
        committed.changed().await.unwrap();
        *committed.borrow_and_update()
    });
    store.writer.set("s", "k", "v", false, None).await.unwrap();
    let seq = waiter.await.unwrap();
    assert_eq!(seq, store.reader.last_outbox_seq().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_outbox_survive_a_reopen() {
    let mut store = TestStore::auto_create();
    let db_id = store.reader.db_id().to_owned();
    store
        .writer
        .set("site1.oven", "temp", "180", false, None)
        .await
        .unwrap();
    store
        .writer
        .set("site1.oven", "temp", "185", false, None)
        .await
        .unwrap();
    store
        .writer
        .set("site1.oven", "door", "open", false, None)
        .await
        .unwrap();
    store.writer.outbox_done(1).await.unwrap();
    let before = store.reader.outbox_after(0, 100).await.unwrap();
    store.stop().await;
    let path = store.path();
    let TestStore {
        dir,
        writer,
        reader,
        ..
    } = store;
    drop((writer, reader));

    let (writer, reader, join) = Store::open(&path, StoreConfig::default()).unwrap();
    assert_eq!(reader.db_id(), db_id);
    let entry = reader.get("site1.oven", "temp").await.unwrap();
    assert_eq!((entry.value.as_str(), entry.version), ("185", 2));
    assert_eq!(reader.outbox_after(0, 100).await.unwrap(), before);
    assert_eq!(before.len(), 2);
    // The watch starts at the last committed seq, so a mirror knows there is work.
    assert_eq!(*writer.committed().borrow(), 3);
    assert_eq!(
        writer
            .set("site1.oven", "temp", "190", false, Some(2))
            .await
            .unwrap()
            .version,
        3
    );
    drop(writer);
    tokio::task::spawn_blocking(move || join.join())
        .await
        .unwrap()
        .unwrap();
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_visible_to_readers_once_acknowledged() {
    // Acknowledge-after-commit: a reader on another connection sees a write as soon as its
    // submit returned.
    let store = TestStore::auto_create();
    for i in 0..50u64 {
        let outcome = store
            .writer
            .set("s", "k", &i.to_string(), false, None)
            .await
            .unwrap();
        let entry = store.reader.get("s", "k").await.unwrap();
        assert_eq!(entry.version, outcome.version);
        assert_eq!(entry.value, i.to_string());
    }
}
