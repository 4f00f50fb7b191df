//! Following state changes through the KV bucket, for any client (`plant state watch`,
//! tests, benchmarks).
//!
//! What a watcher needs from NATS, so identity can grant it per scope: the KV API on the
//! bucket (`$JS.API.STREAM.INFO.KV_plantd-state`, `$JS.API.CONSUMER.CREATE.KV_plantd-state.>`,
//! `$JS.API.DIRECT.GET.KV_plantd-state.>`), delivery to its own inbox, and the subjects
//! `$KV.plantd-state.<encoded scope>.*` as the consumer's filter (see [`crate::kvkey`]).
//!
//! The async-nats watch is an ordered consumer that may replay revisions after a reconnect
//! or server restart (NATS-PITFALLS.md §4.2). This wrapper therefore drops every entry at or
//! below the last revision it delivered, and, for "updates only", at or below the bucket's
//! last sequence when the watch began. Errors are items, not the end of the stream.

use async_nats::jetstream::{self, kv};
use futures::{Stream, StreamExt};

use crate::kvkey;

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchFrom {
    /// Only changes made after the watch began.
    Now,
    /// The current value of every key (deletes included), then changes.
    Current,
    /// Every retained revision from this bucket revision on, then changes.
    Revision(u64),
}

/// Which keys to follow.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    /// The scope (its own keys, not sub-scopes') unless `subtree`.
    pub scope: String,
    /// Also follow every sub-scope.
    pub subtree: bool,
    /// Only keys starting with this.
    pub prefix: String,
    /// Start point.
    pub from: WatchFrom,
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    /// Set to a value.
    Put,
    /// Deleted.
    Delete,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// Scope of the key.
    pub scope: String,
    /// The key.
    pub key: String,
    /// Put or delete.
    pub op: ChangeOp,
    /// The value (empty for deletes).
    pub value: String,
    /// Bucket revision (stream sequence): grows with every change in the bucket.
    pub revision: u64,
}

/// A watch failure.
#[derive(Debug, thiserror::Error)]
#[error("watch of {bucket}: {message}")]
pub struct WatchError {
    /// Bucket.
    pub bucket: String,
    /// What failed.
    pub message: String,
}

/// Starts a watch; the stream ends only when the connection closes.
pub async fn watch(
    js: &jetstream::Context,
    bucket: &str,
    spec: WatchSpec,
) -> Result<impl Stream<Item = Result<Change, WatchError>> + use<>, WatchError> {
    let err = |message: String| WatchError {
        bucket: bucket.to_string(),
        message,
    };
    crate::validate::scope(&spec.scope).map_err(|e| err(e.to_string()))?;
    let store = js.get_key_value(bucket).await.map_err(|e| {
        err(format!(
            "cannot open bucket (is the state service running?): {e}"
        ))
    })?;
    let filter = if spec.subtree {
        kvkey::subtree_filter(&spec.scope)
    } else {
        kvkey::scope_filter(&spec.scope)
    };
    let mut floor = 0;
    let watch = match spec.from {
        // From the revision after the last one stored, not `watch()` (updates only): nothing
        // committed between reading the last revision and the consumer's creation is missed.
        WatchFrom::Now => {
            floor = store
                .status()
                .await
                .map_err(|e| err(e.to_string()))?
                .info
                .state
                .last_sequence;
            store.watch_from_revision(&filter, floor + 1).await
        }
        WatchFrom::Current => store.watch_with_history(&filter).await,
        // The floor guards against the replay-from-start after a reconnect (PITFALLS §4.2).
        WatchFrom::Revision(rev) => {
            floor = rev.saturating_sub(1);
            store.watch_from_revision(&filter, rev.max(1)).await
        }
    }
    .map_err(|e| err(e.to_string()))?;
    let bucket = bucket.to_string();
    let prefix = spec.prefix;
    Ok(watch.filter_map(move |item| {
        let out = match item {
            Err(e) => Some(Err(WatchError {
                bucket: bucket.clone(),
                message: e.to_string(),
            })),
            Ok(entry) if entry.revision <= floor => None,
            Ok(entry) => {
                floor = entry.revision;
                change(entry).filter(|c| c.key.starts_with(&prefix)).map(Ok)
            }
        };
        futures::future::ready(out)
    }))
}

fn change(entry: kv::Entry) -> Option<Change> {
    let (scope, key) = kvkey::decode(&entry.key).ok()?;
    let op = match entry.operation {
        kv::Operation::Put => ChangeOp::Put,
        kv::Operation::Delete | kv::Operation::Purge => ChangeOp::Delete,
    };
    Some(Change {
        scope,
        key,
        op,
        value: String::from_utf8_lossy(&entry.value).into_owned(),
        revision: entry.revision,
    })
}
