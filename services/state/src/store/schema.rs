//! Opening connections and bringing the database schema up to date.
//!
//! Migrations are numbered SQL files in `migrations/`, compiled into the binary and applied at
//! open by [`plantd_shared::sqlite::migrate`] (versions in `PRAGMA user_version`, one
//! transaction each; a database from a newer build is refused).
//!
//! Every connection runs in WAL mode, which lets the read pool read while the single writer
//! commits; `synchronous` follows [`Durability`](super::Durability). The database gets a random `db_id` at creation
//! (from `/dev/urandom`, or std's randomly keyed hasher where that is missing — the workspace has
//! no rand crate) so the mirror can tell a recreated database from the one it mirrored before.

use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::path::Path;

use plantd_shared::sqlite::{self, Migration};
use rusqlite::{Connection, OpenFlags};

use super::{StoreConfig, StoreError};

/// The migrations, in order: `(schema version after applying, SQL)`.
const MIGRATIONS: &[Migration] = &[(1, include_str!("migrations/001_initial.sql"))];

/// Opens (creating if needed) the write connection, applies pending migrations and makes sure
/// the database has a `db_id`. Returns the connection and the `db_id`.
pub(crate) fn open_writer(
    path: &Path,
    config: &StoreConfig,
) -> Result<(Connection, String), StoreError> {
    let mut conn = Connection::open(path).map_err(|e| open_failed(path, &e))?;
    configure(&conn, config)?;
    sqlite::enable_wal(&conn, path)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(|e| StoreError::sqlite("enabling foreign keys", &e))?;
    sqlite::migrate(&mut conn, MIGRATIONS, "state")?;
    let db_id = ensure_db_id(&conn)?;
    Ok((conn, db_id))
}

/// Opens a read-only connection to a database [`open_writer`] has prepared.
pub(crate) fn open_reader(path: &Path, config: &StoreConfig) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_failed(path, &e))?;
    configure(&conn, config)?;
    Ok(conn)
}

/// Settings every connection shares.
fn configure(conn: &Connection, config: &StoreConfig) -> Result<(), StoreError> {
    conn.busy_timeout(config.busy_timeout())
        .map_err(|e| StoreError::sqlite("setting the busy timeout", &e))?;
    conn.pragma_update(None, "synchronous", config.durability.pragma_value())
        .map_err(|e| StoreError::sqlite("setting synchronous", &e))?;
    Ok(())
}

fn open_failed(path: &Path, err: &rusqlite::Error) -> StoreError {
    StoreError::sqlite(&format!("opening the database at {}", path.display()), err)
}

/// Returns the database's `db_id`, creating it on first open.
fn ensure_db_id(conn: &Connection) -> Result<String, StoreError> {
    conn.execute(
        "INSERT INTO meta (name, value) VALUES ('db_id', ?1) ON CONFLICT (name) DO NOTHING",
        [new_db_id()],
    )
    .map_err(|e| StoreError::sqlite("storing the database id", &e))?;
    conn.query_row("SELECT value FROM meta WHERE name = 'db_id'", [], |row| {
        row.get(0)
    })
    .map_err(|e| StoreError::sqlite("reading the database id", &e))
}

/// 128 random bits as 32 lowercase hex digits.
fn new_db_id() -> String {
    let mut bytes = [0u8; 16];
    let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if from_os.is_err() {
        // std seeds every RandomState from the OS; mix in time and pid for good measure.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u128(nanos);
            hasher.write_u32(std::process::id());
            hasher.write_usize(i);
            chunk.copy_from_slice(&hasher.finish().to_le_bytes());
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Durability;

    fn pragma_i64(conn: &Connection, name: &str) -> i64 {
        conn.pragma_query_value(None, name, |row| row.get(0))
            .expect("pragma is readable")
    }

    #[test]
    fn creates_schema_wal_and_db_id_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.db");
        let config = StoreConfig::default();
        let (conn, id) = open_writer(&path, &config).expect("open");
        assert_eq!(
            sqlite::schema_version(&conn).expect("version"),
            sqlite::latest_version(MIGRATIONS)
        );
        assert_eq!(id.len(), 32);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("journal mode");
        assert_eq!(mode, "wal");
        assert_eq!(pragma_i64(&conn, "foreign_keys"), 1);
        drop(conn);

        let (_conn, again) = open_writer(&path, &config).expect("reopen");
        assert_eq!(again, id, "db_id is stable across opens");
        let other = tempfile::tempdir().expect("temp dir");
        let (_c, other_id) = open_writer(&other.path().join("state.db"), &config).expect("open");
        assert_ne!(other_id, id, "a new database gets a new db_id");
    }

    #[test]
    fn durability_sets_synchronous() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.db");
        for (durability, expected) in [(Durability::Full, 2), (Durability::Normal, 1)] {
            let config = StoreConfig {
                durability,
                ..StoreConfig::default()
            };
            let (writer, _) = open_writer(&path, &config).expect("open");
            assert_eq!(
                pragma_i64(&writer, "synchronous"),
                expected,
                "{durability:?}"
            );
            let reader = open_reader(&path, &config).expect("open reader");
            assert_eq!(
                pragma_i64(&reader, "synchronous"),
                expected,
                "{durability:?}"
            );
        }
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.db");
        let (conn, _) = open_writer(&path, &StoreConfig::default()).expect("open");
        conn.pragma_update(None, "user_version", sqlite::latest_version(MIGRATIONS) + 1)
            .expect("bump version");
        drop(conn);
        let err = open_writer(&path, &StoreConfig::default()).unwrap_err();
        assert_eq!(err.code(), 500);
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[test]
    fn reader_cannot_write() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.db");
        let _w = open_writer(&path, &StoreConfig::default()).expect("open");
        let reader = open_reader(&path, &StoreConfig::default()).expect("open reader");
        assert!(
            reader
                .execute("INSERT INTO scopes (name, created) VALUES ('x', 0)", [])
                .is_err()
        );
    }
}
