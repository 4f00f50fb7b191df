//! The SQL of each write: how one [`WriteOp`] changes `scopes`, `entries` and `outbox`.
//!
//! Every function here runs inside the writer's batch transaction, within a savepoint of its
//! own, so an error (a 404, a 409) rolls back exactly this op and leaves its neighbours in the
//! group commit alone. Checks and changes happen on the one write connection, so a version read
//! here cannot change before the same op writes — compare-and-set needs no further locking. Each
//! changed key gets one outbox row in the same transaction: the mirror then sees exactly the
//! committed changes, in commit order.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::types::{
    DeleteOutcome, OutboxDoneOutcome, OutboxOp, OutboxRow, ScopeCreateOutcome, ScopeDeleteOutcome,
    SetOutcome, WriteOp, WriteOutcome,
};

/// What every op in one batch shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApplyContext {
    /// Commit time of the batch (unix microseconds).
    pub now: i64,
    /// Whether `set` creates a missing scope.
    pub auto_create_scopes: bool,
}

/// The result of one applied op.
#[derive(Debug)]
pub(crate) struct Applied {
    /// The answer for the caller (sent only after the batch commits).
    pub outcome: WriteOutcome,
    /// The highest outbox sequence number this op wrote, if it wrote any.
    pub last_outbox_seq: Option<u64>,
    /// The one outbox row this op wrote, for the mirror's in-memory feed (`None` also when
    /// SQL wrote the rows itself, as for a scope deletion: the mirror then reads the outbox).
    pub row: Option<OutboxRow>,
}

/// Applies one op on `conn` (a savepoint of the batch transaction).
pub(crate) fn apply(
    conn: &Connection,
    op: &WriteOp,
    ctx: ApplyContext,
) -> Result<Applied, StoreError> {
    match op {
        WriteOp::Set {
            scope,
            key,
            value,
            create_only,
            expected_version,
        } => set(
            conn,
            ctx,
            scope,
            key,
            value,
            *create_only,
            *expected_version,
        ),
        WriteOp::Delete {
            scope,
            key,
            expected_version,
        } => delete(conn, scope, key, *expected_version),
        WriteOp::ScopeCreate { scope } => {
            let created = create_scope(conn, scope, ctx.now)?;
            Ok(Applied {
                outcome: WriteOutcome::ScopeCreate(ScopeCreateOutcome { created }),
                last_outbox_seq: None,
                row: None,
            })
        }
        WriteOp::ScopeDelete { scope } => delete_scope(conn, scope),
        WriteOp::OutboxDone { up_to_seq } => {
            // Sequence numbers are SQLite integers; anything larger means "everything".
            let up_to = i64::try_from(*up_to_seq).unwrap_or(i64::MAX);
            let removed = conn
                .prepare_cached("DELETE FROM outbox WHERE seq <= ?1")
                .and_then(|mut stmt| stmt.execute([up_to]))
                .map_err(|e| StoreError::sqlite("removing mirrored outbox rows", &e))?;
            Ok(Applied {
                outcome: WriteOutcome::OutboxDone(OutboxDoneOutcome {
                    removed: removed as u64,
                }),
                last_outbox_seq: None,
                row: None,
            })
        }
    }
}

fn set(
    conn: &Connection,
    ctx: ApplyContext,
    scope: &str,
    key: &str,
    value: &str,
    create_only: bool,
    expected_version: Option<u64>,
) -> Result<Applied, StoreError> {
    if !scope_exists(conn, scope)? {
        if !ctx.auto_create_scopes {
            return Err(StoreError::scope_not_found(scope));
        }
        create_scope(conn, scope, ctx.now)?;
    }
    let current = current_version(conn, scope, key)?;
    if let (true, Some(actual)) = (create_only, current) {
        return Err(StoreError::Conflict(format!(
            "key {key:?} already exists in scope {scope:?} (version {actual})"
        )));
    }
    check_expected(scope, key, expected_version, current)?;
    let version = current.map_or(1, |v| v + 1);
    conn.prepare_cached(
        "INSERT INTO entries (scope, key, value, version, created, modified)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT (scope, key) DO UPDATE
         SET value = excluded.value, version = excluded.version, modified = excluded.modified",
    )
    .and_then(|mut stmt| stmt.execute(params![scope, key, value, version, ctx.now]))
    .map_err(|e| StoreError::sqlite("storing the key", &e))?;
    let seq = append_outbox(conn, scope, key, OutboxOp::Put, Some(value), version)?;
    Ok(Applied {
        outcome: WriteOutcome::Set(SetOutcome {
            version,
            modified: ctx.now,
        }),
        last_outbox_seq: Some(seq),
        row: Some(OutboxRow {
            seq,
            scope: scope.to_owned(),
            key: key.to_owned(),
            op: OutboxOp::Put,
            value: Some(value.to_owned()),
            version,
            trace: None,
        }),
    })
}

fn delete(
    conn: &Connection,
    scope: &str,
    key: &str,
    expected_version: Option<u64>,
) -> Result<Applied, StoreError> {
    if !scope_exists(conn, scope)? {
        return Err(StoreError::scope_not_found(scope));
    }
    let current = current_version(conn, scope, key)?;
    check_expected(scope, key, expected_version, current)?;
    let Some(last_version) = current else {
        return Ok(Applied {
            outcome: WriteOutcome::Delete(DeleteOutcome {
                existed: false,
                last_version: 0,
            }),
            last_outbox_seq: None,
            row: None,
        });
    };
    conn.prepare_cached("DELETE FROM entries WHERE scope = ?1 AND key = ?2")
        .and_then(|mut stmt| stmt.execute(params![scope, key]))
        .map_err(|e| StoreError::sqlite("deleting the key", &e))?;
    let seq = append_outbox(conn, scope, key, OutboxOp::Del, None, last_version)?;
    Ok(Applied {
        outcome: WriteOutcome::Delete(DeleteOutcome {
            existed: true,
            last_version,
        }),
        last_outbox_seq: Some(seq),
        row: Some(OutboxRow {
            seq,
            scope: scope.to_owned(),
            key: key.to_owned(),
            op: OutboxOp::Del,
            value: None,
            version: last_version,
            trace: None,
        }),
    })
}

fn delete_scope(conn: &Connection, scope: &str) -> Result<Applied, StoreError> {
    if !scope_exists(conn, scope)? {
        return Ok(Applied {
            outcome: WriteOutcome::ScopeDelete(ScopeDeleteOutcome {
                existed: false,
                deleted_keys: 0,
            }),
            last_outbox_seq: None,
            row: None,
        });
    }
    let deleted = conn
        .prepare_cached(
            "INSERT INTO outbox (scope, key, op, value, version)
             SELECT scope, key, 'del', NULL, version FROM entries WHERE scope = ?1 ORDER BY key",
        )
        .and_then(|mut stmt| stmt.execute([scope]))
        .map_err(|e| StoreError::sqlite("recording the scope's deletions", &e))?;
    let last_outbox_seq = (deleted > 0).then(|| conn.last_insert_rowid() as u64);
    conn.prepare_cached("DELETE FROM entries WHERE scope = ?1")
        .and_then(|mut stmt| stmt.execute([scope]))
        .and_then(|_| conn.prepare_cached("DELETE FROM scopes WHERE name = ?1"))
        .and_then(|mut stmt| stmt.execute([scope]))
        .map_err(|e| StoreError::sqlite("deleting the scope", &e))?;
    Ok(Applied {
        outcome: WriteOutcome::ScopeDelete(ScopeDeleteOutcome {
            existed: true,
            deleted_keys: deleted as u64,
        }),
        last_outbox_seq,
        row: None,
    })
}

/// 409 unless `expected` is absent or equals the current version (0 standing for "no key").
fn check_expected(
    scope: &str,
    key: &str,
    expected: Option<u64>,
    current: Option<u64>,
) -> Result<(), StoreError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let actual = current.unwrap_or(0);
    if expected == actual {
        return Ok(());
    }
    let actual_text = match current {
        Some(v) => format!("the current version is {v}"),
        None => "the key does not exist".to_owned(),
    };
    Err(StoreError::Conflict(format!(
        "key {key:?} in scope {scope:?}: expected version {expected}, {actual_text}"
    )))
}

fn scope_exists(conn: &Connection, scope: &str) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT 1 FROM scopes WHERE name = ?1")
        .and_then(|mut stmt| stmt.exists([scope]))
        .map_err(|e| StoreError::sqlite("looking up the scope", &e))
}

/// Creates `scope` if missing; true if it was created.
fn create_scope(conn: &Connection, scope: &str, now: i64) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO scopes (name, created) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
        )
        .and_then(|mut stmt| stmt.execute(params![scope, now]))
        .map_err(|e| StoreError::sqlite("creating the scope", &e))?;
    Ok(inserted == 1)
}

fn current_version(conn: &Connection, scope: &str, key: &str) -> Result<Option<u64>, StoreError> {
    conn.prepare_cached("SELECT version FROM entries WHERE scope = ?1 AND key = ?2")
        .and_then(|mut stmt| {
            stmt.query_row(params![scope, key], |row| row.get(0))
                .optional()
        })
        .map_err(|e| StoreError::sqlite("reading the key's version", &e))
}

/// Appends one change to the outbox and returns its sequence number.
fn append_outbox(
    conn: &Connection,
    scope: &str,
    key: &str,
    op: OutboxOp,
    value: Option<&str>,
    version: u64,
) -> Result<u64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO outbox (scope, key, op, value, version) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut stmt| stmt.insert(params![scope, key, op.as_str(), value, version]))
    .map(|seq| seq as u64)
    .map_err(|e| StoreError::sqlite("writing the outbox", &e))
}
