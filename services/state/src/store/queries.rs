//! The SQL of every read, as plain functions on a connection.
//!
//! They are synchronous and know nothing of the pool, so the pool ([`super::Reader`]) can run
//! them on its blocking threads and tests can call them directly. Where a read needs more than
//! one statement (scope check plus listing), it runs them in one read transaction so both see
//! the same snapshot; WAL lets that snapshot coexist with the writer's commits.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;
use super::pagination::encode_token;
use super::types::{Entry, ListPage, OutboxOp, OutboxRow, ScopeInfo};

/// One key; 404 naming the scope or the key when either is missing.
pub(crate) fn get(conn: &Connection, scope: &str, key: &str) -> Result<Entry, StoreError> {
    // One statement, one snapshot: the scope row always, the entry if it exists.
    let row = conn
        .prepare_cached(
            "SELECT e.value, e.version, e.created, e.modified
             FROM scopes s LEFT JOIN entries e ON e.scope = s.name AND e.key = ?2
             WHERE s.name = ?1",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![scope, key], |row| {
                Ok((
                    row.get::<_, Option<String>>(0)?,
                    row.get::<_, Option<u64>>(1)?,
                    row.get::<_, Option<i64>>(2)?,
                    row.get::<_, Option<i64>>(3)?,
                ))
            })
            .optional()
        })
        .map_err(|e| StoreError::sqlite("reading the key", &e))?;
    match row {
        None => Err(StoreError::scope_not_found(scope)),
        Some((Some(value), Some(version), Some(created), Some(modified))) => Ok(Entry {
            scope: scope.to_owned(),
            key: key.to_owned(),
            value,
            version,
            created,
            modified,
        }),
        Some(_) => Err(StoreError::key_not_found(scope, key)),
    }
}

/// Most key and value bytes in one list page (at least one entry is always returned), so a
/// page of large values stays well under the server's max_payload even as JSON. A page may
/// therefore hold fewer than `limit` entries while `next_page_token` says there are more.
pub(crate) const PAGE_BYTES: usize = 512 * 1024;

/// One page of the keys of `scope` that start with `prefix`, after the key `after`, bounded by
/// `page_size` entries and [`PAGE_BYTES`].
pub(crate) fn list(
    conn: &mut Connection,
    scope: &str,
    prefix: &str,
    page_size: usize,
    after: Option<&str>,
) -> Result<ListPage, StoreError> {
    let fail = |e: rusqlite::Error| StoreError::sqlite("listing keys", &e);
    let tx = conn.transaction().map_err(fail)?;
    if !scope_exists(&tx, scope)? {
        return Err(StoreError::scope_not_found(scope));
    }
    let mut entries = Vec::with_capacity(page_size.min(128));
    let mut more = false;
    let mut page_bytes = 0;
    {
        let mut stmt = tx
            .prepare_cached(
                "SELECT key, value, version, created, modified FROM entries
                 WHERE scope = ?1 AND key >= ?2 AND key > ?3
                 ORDER BY key LIMIT ?4",
            )
            .map_err(fail)?;
        // Keys with the prefix are contiguous in byte order, so stop at the first that lacks it.
        let fetch = i64::try_from(page_size)
            .unwrap_or(i64::MAX)
            .saturating_add(1);
        let mut rows = stmt
            .query(params![scope, prefix, after.unwrap_or(""), fetch])
            .map_err(fail)?;
        while let Some(row) = rows.next().map_err(fail)? {
            let entry = entry_from_row(scope, row).map_err(fail)?;
            if !entry.key.starts_with(prefix) {
                break;
            }
            let size = entry.key.len() + entry.value.len();
            if entries.len() == page_size || (!entries.is_empty() && page_bytes + size > PAGE_BYTES)
            {
                more = true;
                break;
            }
            page_bytes += size;
            entries.push(entry);
        }
    }
    tx.commit().map_err(fail)?;
    let next_page_token = match (more, entries.last()) {
        (true, Some(last)) => encode_token(&last.key),
        _ => String::new(),
    };
    Ok(ListPage {
        entries,
        next_page_token,
    })
}

fn entry_from_row(scope: &str, row: &Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        scope: scope.to_owned(),
        key: row.get(0)?,
        value: row.get(1)?,
        version: row.get(2)?,
        created: row.get(3)?,
        modified: row.get(4)?,
    })
}

fn scope_exists(conn: &Connection, scope: &str) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT 1 FROM scopes WHERE name = ?1")
        .and_then(|mut stmt| stmt.exists([scope]))
        .map_err(|e| StoreError::sqlite("looking up the scope", &e))
}

/// Every scope with its key count, ordered by name.
pub(crate) fn scope_list(conn: &Connection) -> Result<Vec<ScopeInfo>, StoreError> {
    conn.prepare_cached(
        "SELECT s.name, s.created, count(e.key)
         FROM scopes s LEFT JOIN entries e ON e.scope = s.name
         GROUP BY s.name ORDER BY s.name",
    )
    .and_then(|mut stmt| {
        stmt.query_map([], |row| {
            Ok(ScopeInfo {
                name: row.get(0)?,
                created: row.get(1)?,
                key_count: row.get(2)?,
            })
        })?
        .collect()
    })
    .map_err(|e| StoreError::sqlite("listing scopes", &e))
}

/// Up to `max` outbox rows with `seq > after_seq`, in commit order.
pub(crate) fn outbox_after(
    conn: &Connection,
    after_seq: u64,
    max: usize,
) -> Result<Vec<OutboxRow>, StoreError> {
    let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
    let max = i64::try_from(max).unwrap_or(i64::MAX);
    let rows: Vec<(u64, String, String, String, Option<String>, u64)> = conn
        .prepare_cached(
            "SELECT seq, scope, key, op, value, version FROM outbox
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_map(params![after, max], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                ))
            })?
            .collect()
        })
        .map_err(|e| StoreError::sqlite("reading the outbox", &e))?;
    rows.into_iter()
        .map(|(seq, scope, key, op, value, version)| {
            let op = match op.as_str() {
                "put" => OutboxOp::Put,
                "del" => OutboxOp::Del,
                _ => {
                    return Err(StoreError::Internal(format!(
                        "outbox row {seq} has an unknown op"
                    )));
                }
            };
            Ok(OutboxRow {
                seq,
                scope,
                key,
                op,
                value,
                version,
                trace: None,
            })
        })
        .collect()
}

/// The highest outbox sequence number ever assigned (0 if none), even if its row is gone.
pub(crate) fn last_outbox_seq(conn: &Connection) -> Result<u64, StoreError> {
    conn.prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)).optional())
        .map(Option::unwrap_or_default)
        .map_err(|e| StoreError::sqlite("reading the outbox position", &e))
}

/// The distinct `(scope, key)` pairs that have outbox rows with `seq > after_seq`. The outbox
/// is small unless the mirror has been cut off, and this is read only while a reconcile found
/// differences.
pub(crate) fn outbox_keys(
    conn: &Connection,
    after_seq: u64,
) -> Result<HashSet<(String, String)>, StoreError> {
    let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
    conn.prepare_cached("SELECT DISTINCT scope, key FROM outbox WHERE seq > ?1")
        .and_then(|mut stmt| {
            stmt.query_map(params![after], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
        .map_err(|e| StoreError::sqlite("reading the outbox keys", &e))
}

/// Up to `max` entries of all scopes ordered by `(scope, key)`, after the pair `after`.
pub(crate) fn entries_after(
    conn: &Connection,
    after: Option<(&str, &str)>,
    max: usize,
) -> Result<Vec<Entry>, StoreError> {
    // Scopes are never empty, so ("", "") sorts before every entry.
    let (after_scope, after_key) = after.unwrap_or(("", ""));
    let max = i64::try_from(max).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "SELECT scope, key, value, version, created, modified FROM entries
         WHERE (scope, key) > (?1, ?2) ORDER BY scope, key LIMIT ?3",
    )
    .and_then(|mut stmt| {
        stmt.query_map(params![after_scope, after_key, max], |row| {
            Ok(Entry {
                scope: row.get(0)?,
                key: row.get(1)?,
                value: row.get(2)?,
                version: row.get(3)?,
                created: row.get(4)?,
                modified: row.get(5)?,
            })
        })?
        .collect()
    })
    .map_err(|e| StoreError::sqlite("reading entries", &e))
}
