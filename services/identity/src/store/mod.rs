//! The SQLite store: organizations, users, role bindings, sessions and revocations.
//!
//! Identity is low-traffic (logins, refreshes, admin edits), so the store is deliberately
//! simple: one connection behind a mutex, each operation one transaction run on the blocking
//! pool through [`Store::run`]. Operations that revoke (disable, delete, password or role
//! change) write the revocation rows in the *same* transaction as the change, so a crash can
//! never leave a changed user whose old JWTs are still valid in identity's own records; pushing
//! the revocations to the server happens after commit ([`crate::revocation`]) and is retried
//! from these rows until it succeeds.
//!
//! SQL lives in [`users`] (orgs, users, role bindings) and [`sessions`] (sessions, revocations,
//! service creds, meta); [`schema`] opens and migrates.

mod schema;
pub mod sessions;
pub mod users;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

/// Why a store operation failed; the variants map to wire codes 404, 409 and 500.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// 404: the named thing does not exist; the message says which.
    #[error("{0}")]
    NotFound(String),
    /// 409: it exists already, or conflicts with what does.
    #[error("{0}")]
    Conflict(String),
    /// 500: SQLite failed; a short reason, never SQL or data.
    #[error("{0}")]
    Internal(String),
}

impl StoreError {
    /// A SQLite failure while `doing` something; logs the full error, keeps the code.
    pub(crate) fn sqlite(doing: &str, err: &rusqlite::Error) -> StoreError {
        tracing::error!(error = %err, "identity store: {doing} failed");
        let code = err
            .sqlite_error_code()
            .map_or_else(|| "error".to_string(), |c| format!("{c:?}"));
        StoreError::Internal(format!("identity store failed {doing} ({code})"))
    }
}

impl From<plantd_shared::sqlite::SchemaError> for StoreError {
    fn from(err: plantd_shared::sqlite::SchemaError) -> Self {
        match err {
            plantd_shared::sqlite::SchemaError::Sqlite { doing, source } => {
                StoreError::sqlite(&doing, &source)
            }
            other => StoreError::Internal(other.to_string()),
        }
    }
}

/// The store handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`. Blocking.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            conn: Arc::new(Mutex::new(schema::open(path)?)),
        })
    }

    /// Runs `op` inside one transaction on the blocking pool; commits if it returns `Ok`.
    pub async fn run<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic inside an earlier op poisons the mutex; the connection itself is fine
            // (the transaction was rolled back when it dropped).
            let mut conn = conn.lock().unwrap_or_else(|poison| poison.into_inner());
            let tx = conn
                .transaction()
                .map_err(|e| StoreError::sqlite("starting a transaction", &e))?;
            let value = op(&tx)?;
            tx.commit()
                .map_err(|e| StoreError::sqlite("committing", &e))?;
            Ok(value)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("identity store task failed: {e}")))?
    }
}

/// Maps a missing row to `None`.
pub(crate) fn optional<T>(
    result: rusqlite::Result<T>,
    doing: &str,
) -> Result<Option<T>, StoreError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(StoreError::sqlite(doing, &e)),
    }
}

#[cfg(test)]
mod tests;
