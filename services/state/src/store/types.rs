//! The store's data types: what a write asks for, what it answers, and what reads return.
//!
//! They are plain Rust types, separate from the protobuf wire messages in `plantd-schemas` (as
//! async-nats keeps its KV `Entry` apart from the machinery that sends it): the handlers convert
//! at the edge, and the store stays testable without any codec. Timestamps are unix
//! microseconds, the unit SQLite stores.

use crate::validate::{self, Limits};

use super::StoreError;

/// One write, applied by the writer thread in a group commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Create or replace a key (answered by [`SetOutcome`]).
    Set {
        /// The scope; must exist unless the store auto-creates scopes.
        scope: String,
        /// The key.
        key: String,
        /// The new value.
        value: String,
        /// Fail with 409 if the key exists.
        create_only: bool,
        /// Fail with 409 unless the key's version equals this (0 = the key must not exist).
        expected_version: Option<u64>,
    },
    /// Delete a key (answered by [`DeleteOutcome`]); deleting a missing key is not an error.
    Delete {
        /// The scope; must exist.
        scope: String,
        /// The key.
        key: String,
        /// Fail with 409 unless the key's version equals this (0 = the key must not exist).
        expected_version: Option<u64>,
    },
    /// Create a scope; idempotent (answered by [`ScopeCreateOutcome`]).
    ScopeCreate {
        /// The scope.
        scope: String,
    },
    /// Delete a scope and all its keys, not its sub-scopes (answered by [`ScopeDeleteOutcome`]).
    ScopeDelete {
        /// The scope.
        scope: String,
    },
    /// The mirror has published every outbox row up to and including `up_to_seq`; remove them
    /// (answered by [`OutboxDoneOutcome`]).
    OutboxDone {
        /// Highest acknowledged outbox sequence number.
        up_to_seq: u64,
    },
}

impl WriteOp {
    /// Checks scope, key and value against the input rules, so a bad op never reaches SQLite.
    pub fn validate(&self, limits: &Limits) -> Result<(), StoreError> {
        match self {
            Self::Set {
                scope, key, value, ..
            } => {
                validate::scope(scope)?;
                validate::key(key, limits)?;
                validate::value(value, limits)?;
            }
            Self::Delete { scope, key, .. } => {
                validate::scope(scope)?;
                validate::key(key, limits)?;
            }
            Self::ScopeCreate { scope } | Self::ScopeDelete { scope } => validate::scope(scope)?,
            Self::OutboxDone { .. } => {}
        }
        Ok(())
    }
}

/// The answer to one [`WriteOp`], in the variant matching the op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Answer to [`WriteOp::Set`].
    Set(SetOutcome),
    /// Answer to [`WriteOp::Delete`].
    Delete(DeleteOutcome),
    /// Answer to [`WriteOp::ScopeCreate`].
    ScopeCreate(ScopeCreateOutcome),
    /// Answer to [`WriteOp::ScopeDelete`].
    ScopeDelete(ScopeDeleteOutcome),
    /// Answer to [`WriteOp::OutboxDone`].
    OutboxDone(OutboxDoneOutcome),
}

/// A committed `set`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetOutcome {
    /// The key's new version: 1 for a new key, else the previous version plus one.
    pub version: u64,
    /// When the change was committed (unix microseconds).
    pub modified: i64,
}

/// A committed `delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// Whether the key existed.
    pub existed: bool,
    /// The version the key had when it was deleted; 0 when it did not exist.
    pub last_version: u64,
}

/// A committed scope creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeCreateOutcome {
    /// False when the scope already existed.
    pub created: bool,
}

/// A committed scope deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeDeleteOutcome {
    /// Whether the scope existed.
    pub existed: bool,
    /// How many keys were deleted with it (one `del` outbox row each).
    pub deleted_keys: u64,
}

/// Outbox rows removed after the mirror's acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxDoneOutcome {
    /// Number of rows removed.
    pub removed: u64,
}

/// A stored key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The scope the key belongs to.
    pub scope: String,
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
    /// Grows by one per change, starting at 1.
    pub version: u64,
    /// When the key was created (unix microseconds).
    pub created: i64,
    /// When the key last changed (unix microseconds).
    pub modified: i64,
}

/// One page of a `list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// The entries, ordered by key (UTF-8 byte order).
    pub entries: Vec<Entry>,
    /// Token for the next page; empty on the last page.
    pub next_page_token: String,
}

/// A scope and how many keys it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeInfo {
    /// The scope.
    pub name: String,
    /// Number of keys in the scope itself (not in sub-scopes).
    pub key_count: u64,
    /// When the scope was created (unix microseconds).
    pub created: i64,
}

/// What an outbox row asks the mirror to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxOp {
    /// Put the row's value under its KV key.
    Put,
    /// Delete the KV key.
    Del,
}

impl OutboxOp {
    /// The value stored in the `op` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Put => "put",
            Self::Del => "del",
        }
    }
}

/// A committed change the mirror has not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Commit order; never reused, so `(db_id, seq)` names the change uniquely and makes a
    /// deterministic `Nats-Msg-Id`.
    pub seq: u64,
    /// The scope of the changed key.
    pub scope: String,
    /// The changed key.
    pub key: String,
    /// Put or delete.
    pub op: OutboxOp,
    /// The new value for a put; `None` for a delete.
    pub value: Option<String>,
    /// The key's version after a put; for a delete, the version the key had when deleted.
    pub version: u64,
    /// The writing request's `traceparent`, when tracing is on; in memory only (a row read
    /// back from the outbox has none), so only the writer's early publish carries it.
    pub trace: Option<String>,
}
