//! The SQLite store, plantd state's source of truth.
//!
//! It is split by concept: `schema.rs` opens connections and migrates, the writer thread
//! (`writer.rs`) group-commits every change together with its outbox rows (`apply.rs` holds that
//! SQL), and the [`Reader`] pool (`reader.rs`, SQL in `queries.rs`) serves reads concurrently
//! thanks to WAL, with a bounded cache of current values for `get` (`cache.rs`) that the writer
//! invalidates before it acknowledges a change. This module only wires them: [`Store::open`] prepares the database and returns
//! the two halves plus the writer thread's join handle.
//!
//! The store is pure storage — no NATS. The KV mirror reads the outbox with
//! [`Reader::outbox_after`], wakes on [`WriteHandle::committed`], and reports what JetStream has
//! acknowledged with [`WriteHandle::outbox_done`], which rides in the same group commits.

mod apply;
mod cache;
mod config;
mod error;
mod feed;
mod pagination;
mod queries;
mod reader;
mod schema;
mod types;
mod writer;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

pub use config::{Durability, StoreConfig};
pub use error::{Missing, StoreError};
pub use feed::{AckFuture, CommitFeed, EarlyPublisher, FedRow};
pub use pagination::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
pub use reader::{EntryChunk, Reader, Recheck, Rechecked};
pub use types::{
    DeleteOutcome, Entry, ListPage, OutboxDoneOutcome, OutboxOp, OutboxRow, ScopeCreateOutcome,
    ScopeDeleteOutcome, ScopeInfo, SetOutcome, WriteOp, WriteOutcome,
};
pub use writer::{WriteHandle, WriterStats};

/// Entry point for opening the store.
#[derive(Debug)]
pub struct Store;

impl Store {
    /// Opens (creating if needed) the database at `path`, migrates it, opens the read pool and
    /// starts the writer thread.
    ///
    /// Blocking: call it at startup or inside `spawn_blocking`. The writer thread runs until
    /// every [`WriteHandle`] is dropped or [`WriteHandle::shutdown`] is called, and always
    /// finishes the ops already queued; join the returned handle to wait for it.
    pub fn open(
        path: impl AsRef<Path>,
        config: StoreConfig,
    ) -> Result<(WriteHandle, Reader, JoinHandle<()>), StoreError> {
        config.check()?;
        let path = path.as_ref();
        let (conn, db_id) = schema::open_writer(path, &config)?;
        let last_seq = queries::last_outbox_seq(&conn)?;
        let readers = (0..config.read_pool_size)
            .map(|_| schema::open_reader(path, &config))
            .collect::<Result<Vec<_>, _>>()?;
        let cache = Arc::new(cache::ValueCache::new(config.read_cache_bytes));
        let reader = Reader::new(readers, Arc::clone(&cache), config.limits, db_id);
        let (writer, join) = writer::spawn(conn, &config, last_seq, cache)?;
        tracing::info!(path = %path.display(), db_id = reader.db_id(), last_seq, "state store open");
        Ok((writer, reader, join))
    }
}
