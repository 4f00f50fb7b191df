//! The SQLite set-up every plantd store shares: WAL mode and numbered schema migrations.
//!
//! Each store (state, identity) keeps its SQL next to itself in numbered files under
//! `migrations/`, compiled into the binary; this module applies them at open, in order, each
//! in an immediate transaction that also sets SQLite's `PRAGMA user_version`, so a crash in
//! the middle of a migration leaves the old version intact. A database written by a newer
//! build (a higher version than this build knows) is refused rather than guessed at.
//!
//! WAL mode lets readers read while the one writer commits; a database that cannot use it
//! (e.g. on a file system without shared memory) is refused, since the stores' durability
//! and concurrency reasoning depends on it. Only built with the `sqlite` feature.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

/// A migration: the schema version after applying it, and its SQL.
pub type Migration = (u32, &'static str);

/// Why a database could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A SQLite call failed while `doing` something.
    #[error("{doing}: {source}")]
    Sqlite {
        /// What was being done, e.g. `migration 2`.
        doing: String,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database refused WAL mode.
    #[error("the database at {path} cannot use wal mode (journal mode is {mode})")]
    NoWal {
        /// The database file.
        path: String,
        /// The journal mode it kept.
        mode: String,
    },
    /// The database is newer than this build.
    #[error("the database has schema version {found}, newer than the {known} this build knows")]
    TooNew {
        /// Its version.
        found: u32,
        /// The latest this build knows.
        known: u32,
    },
}

fn sqlite(doing: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> SchemaError {
    move |source| SchemaError::Sqlite {
        doing: doing.into(),
        source,
    }
}

/// Switches `conn` (the database at `path`) to WAL mode, or says why it cannot.
pub fn enable_wal(conn: &Connection, path: &Path) -> Result<(), SchemaError> {
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(sqlite("enabling wal mode"))?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(SchemaError::NoWal {
            path: path.display().to_string(),
            mode,
        })
    }
}

/// The database's schema version (`PRAGMA user_version`; 0 for a new database).
pub fn schema_version(conn: &Connection) -> Result<u32, SchemaError> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sqlite("reading the schema version"))
}

/// The version the last of `migrations` leaves.
pub fn latest_version(migrations: &[Migration]) -> u32 {
    migrations.last().map_or(0, |(version, _)| *version)
}

/// Applies every migration newer than the database, each in its own immediate transaction;
/// `store` names the store in the log line of each one applied.
pub fn migrate(
    conn: &mut Connection,
    migrations: &[Migration],
    store: &str,
) -> Result<(), SchemaError> {
    let known = latest_version(migrations);
    for (version, sql) in migrations {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite("starting a migration"))?;
        // Read inside the transaction: another process may have migrated meanwhile.
        let found = schema_version(&tx)?;
        if found > known {
            return Err(SchemaError::TooNew { found, known });
        }
        if found >= *version {
            continue;
        }
        tx.execute_batch(sql)
            .map_err(sqlite(format!("migration {version}")))?;
        tx.pragma_update(None, "user_version", version)
            .map_err(sqlite("setting the schema version"))?;
        tx.commit()
            .map_err(sqlite(format!("committing migration {version}")))?;
        tracing::info!(version, store, "applied store migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIGRATIONS: &[Migration] = &[
        (1, "CREATE TABLE a (x INTEGER);"),
        (2, "ALTER TABLE a ADD COLUMN y TEXT;"),
    ];

    fn open(path: &Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        enable_wal(&conn, path).unwrap();
        conn
    }

    #[test]
    fn migrates_in_order_once_and_refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = open(&path);
        migrate(&mut conn, &MIGRATIONS[..1], "test").unwrap();
        assert_eq!(schema_version(&conn).unwrap(), 1);
        // A later build adds migration 2; applying everything again only runs it.
        migrate(&mut conn, MIGRATIONS, "test").unwrap();
        migrate(&mut conn, MIGRATIONS, "test").unwrap();
        assert_eq!(schema_version(&conn).unwrap(), 2);
        conn.execute("INSERT INTO a (x, y) VALUES (1, 'z')", [])
            .unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        // An older build refuses the newer database and changes nothing.
        let err = migrate(&mut conn, &MIGRATIONS[..1], "test").unwrap_err();
        assert!(
            matches!(err, SchemaError::TooNew { found: 2, known: 1 }),
            "{err}"
        );
        assert_eq!(schema_version(&conn).unwrap(), 2);
    }

    #[test]
    fn a_failing_migration_leaves_the_old_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = open(&path);
        let broken: &[Migration] = &[MIGRATIONS[0], (2, "CREATE TABLE b (x); NOT SQL;")];
        let err = migrate(&mut conn, broken, "test").unwrap_err();
        assert!(err.to_string().starts_with("migration 2"), "{err}");
        assert_eq!(schema_version(&conn).unwrap(), 1);
        let b_exists: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'b'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            b_exists, 0,
            "the failed migration's statements are rolled back"
        );
    }
}
