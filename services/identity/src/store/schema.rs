//! Opening the database and bringing its schema up to date.
//!
//! Numbered SQL files compiled in and applied at open by [`plantd_shared::sqlite::migrate`],
//! as in the state store (one transaction each; a database from a newer build is refused).
//! WAL mode and `synchronous=FULL`: identity writes rarely, and a
//! revocation or password change that is acknowledged must survive a power loss.

use std::path::Path;

use plantd_shared::sqlite::{self, Migration};
use rusqlite::Connection;

use super::StoreError;

/// The migrations, in order: `(schema version after applying, SQL)`.
const MIGRATIONS: &[Migration] = &[(1, include_str!("migrations/001_initial.sql"))];

/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens (creating if needed) the database at `path` and migrates it.
pub(crate) fn open(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path).map_err(|e| {
        StoreError::sqlite(&format!("opening the database at {}", path.display()), &e)
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| StoreError::sqlite("setting the busy timeout", &e))?;
    sqlite::enable_wal(&conn, path)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| StoreError::sqlite("setting synchronous", &e))?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(|e| StoreError::sqlite("enabling foreign keys", &e))?;
    sqlite::migrate(&mut conn, MIGRATIONS, "identity")?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_in_wal_and_refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.db");
        let conn = open(&path).unwrap();
        assert_eq!(
            sqlite::schema_version(&conn).unwrap(),
            sqlite::latest_version(MIGRATIONS)
        );
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(conn);
        let conn = open(&path).unwrap();
        conn.pragma_update(None, "user_version", sqlite::latest_version(MIGRATIONS) + 1)
            .unwrap();
        drop(conn);
        let err = open(&path).unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
    }
}
