//! Opening the database and bringing its schema up to date.
//!
//! The same pattern as the state store (`services/state/src/store/schema.rs`): numbered SQL
//! files compiled in, applied in order at open, each in an immediate transaction that also sets
//! `PRAGMA user_version`, so a crash mid-migration leaves the old version; a database from a
//! newer build is refused. WAL mode and `synchronous=FULL`: identity writes rarely, and a
//! revocation or password change that is acknowledged must survive a power loss.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// The migrations, in order: `(schema version after applying, SQL)`.
const MIGRATIONS: &[(u32, &str)] = &[(1, include_str!("migrations/001_initial.sql"))];

/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens (creating if needed) the database at `path` and migrates it.
pub(crate) fn open(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path).map_err(|e| {
        StoreError::sqlite(&format!("opening the database at {}", path.display()), &e)
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| StoreError::sqlite("setting the busy timeout", &e))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| StoreError::sqlite("enabling wal mode", &e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Internal(format!(
            "the database at {} cannot use wal mode (journal mode is {mode})",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| StoreError::sqlite("setting synchronous", &e))?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(|e| StoreError::sqlite("enabling foreign keys", &e))?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn schema_version(conn: &Connection) -> Result<u32, StoreError> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| StoreError::sqlite("reading the schema version", &e))
}

fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |(version, _)| *version)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    for (version, sql) in MIGRATIONS {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StoreError::sqlite("starting a migration", &e))?;
        let current = schema_version(&tx)?;
        if current > latest_version() {
            return Err(StoreError::Internal(format!(
                "the database has schema version {current}, newer than the {} this build knows",
                latest_version()
            )));
        }
        if current >= *version {
            continue;
        }
        tx.execute_batch(sql)
            .map_err(|e| StoreError::sqlite(&format!("migration {version}"), &e))?;
        tx.pragma_update(None, "user_version", version)
            .map_err(|e| StoreError::sqlite("setting the schema version", &e))?;
        tx.commit()
            .map_err(|e| StoreError::sqlite(&format!("committing migration {version}"), &e))?;
        tracing::info!(version, "applied identity store migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_in_wal_and_refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.db");
        let conn = open(&path).unwrap();
        assert_eq!(schema_version(&conn).unwrap(), latest_version());
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(conn);
        let conn = open(&path).unwrap();
        conn.pragma_update(None, "user_version", latest_version() + 1)
            .unwrap();
        drop(conn);
        let err = open(&path).unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
    }
}
