//! Tests of the whole store: real SQLite files in temp dirs, the real writer thread, called
//! from multi-threaded tokio runtimes the way the service calls it.
//!
//! To make group commit observable without timing luck, [`WriteLock`] holds SQLite's write lock
//! from a second connection: the writer then stalls in `BEGIN IMMEDIATE` while the test queues
//! ops, and [`eventually`] polls the queue length instead of sleeping.

mod batching;
mod outbox;
mod reads;
mod writes;

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tempfile::TempDir;

use super::{Reader, Store, StoreConfig, WriteHandle};

/// An open store in its own temp dir.
pub(super) struct TestStore {
    pub dir: TempDir,
    pub writer: WriteHandle,
    pub reader: Reader,
    pub join: Option<JoinHandle<()>>,
}

impl TestStore {
    pub fn open(config: StoreConfig) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (writer, reader, join) = Store::open(db_path(dir.path()), config).expect("store opens");
        Self {
            dir,
            writer,
            reader,
            join: Some(join),
        }
    }

    /// A store whose `set` creates missing scopes.
    pub fn auto_create() -> Self {
        Self::open(StoreConfig {
            auto_create_scopes: true,
            ..StoreConfig::default()
        })
    }

    pub fn path(&self) -> PathBuf {
        db_path(self.dir.path())
    }

    /// Stops the writer and waits for its thread; keeps the temp dir.
    pub async fn stop(&mut self) {
        self.writer.shutdown().await;
        if let Some(join) = self.join.take() {
            tokio::task::spawn_blocking(move || join.join())
                .await
                .expect("join task")
                .expect("writer thread did not panic");
        }
    }
}

pub(super) fn db_path(dir: &Path) -> PathBuf {
    dir.join("state.db")
}

/// SQLite's write lock, held by a second connection until released.
pub(super) struct WriteLock(Connection);

impl WriteLock {
    pub fn hold(path: &Path) -> Self {
        let conn = Connection::open(path).expect("second connection opens");
        conn.execute_batch("BEGIN IMMEDIATE")
            .expect("write lock is free");
        Self(conn)
    }

    pub fn release(self) {
        self.0.execute_batch("COMMIT").expect("release write lock");
    }
}

/// Polls `condition` until it holds; panics naming `what` after 10 s.
pub(super) async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Stalls the writer on a plug op so that ops submitted next queue up in one batch. Returns the
/// lock and the plug's task; release the lock to let both batches commit.
pub(super) async fn stall_writer(store: &TestStore) -> (WriteLock, tokio::task::JoinHandle<()>) {
    let lock = WriteLock::hold(&store.path());
    let ops_before = store.writer.stats().ops;
    let writer = store.writer.clone();
    let plug = tokio::spawn(async move {
        writer.scope_create("plug").await.expect("plug op commits");
    });
    let w = store.writer.clone();
    // The writer counts a batch's ops before it begins the transaction, where it now waits.
    eventually("the writer to take the plug op", || {
        w.stats().ops == ops_before + 1
    })
    .await;
    (lock, plug)
}
