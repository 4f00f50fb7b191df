//! The read path: a small pool of read-only connections, used from async code.
//!
//! In WAL mode readers never wait for the writer, so reads do not go through the writer thread:
//! each call checks a connection out of the pool on a `spawn_blocking` thread, runs the SQL from
//! [`super::queries`] and returns it. The pool is a `Mutex<Vec<Connection>>` with a `Condvar`
//! rather than a pool crate: with a handful of connections and short queries that is all it
//! takes, and its size (`read_pool_size`) also bounds how many blocking threads reads can occupy.
//!
//! A `get` first asks the value cache (`cache.rs`, which explains why it is never staler than
//! the last acknowledged write) and, on a miss, is the exception: a primary-key lookup in a WAL database whose pages are cached
//! takes a few microseconds, far less than handing it to a blocking thread and back (a profile
//! of `plant bench --scenario state-get-64` showed the service spending most of its time in
//! the futex wake-ups of that hand-off). So `get` runs on the calling task when a pooled
//! connection is free at once, and falls back to the blocking pool otherwise; a task never
//! waits for a connection on a runtime thread. Lists and other multi-row reads, which can
//! read a page of up to 512 KiB, always use the blocking pool.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;

use super::StoreError;
use super::cache::ValueCache;
use super::pagination::{decode_token, page_size};
use super::queries;
use super::types::{Entry, ListPage, OutboxRow, ScopeInfo};
use crate::validate::{self, Limits};

/// A cloneable handle for reading the store from async code.
#[derive(Debug, Clone)]
pub struct Reader {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: Mutex<Vec<Connection>>,
    returned: Condvar,
    cache: Arc<ValueCache>,
    limits: Limits,
    db_id: String,
}

/// A connection checked out of the pool; goes back on drop.
struct Checkout<'a> {
    inner: &'a Inner,
    conn: Option<Connection>,
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.inner.lock().push(conn);
            self.inner.returned.notify_one();
        }
    }
}

impl Inner {
    /// The pool; a panic while holding the lock cannot leave the `Vec` half-changed, so a
    /// poisoned lock is still usable.
    fn lock(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A free connection if there is one now, without waiting.
    fn try_checkout(&self) -> Option<Checkout<'_>> {
        let conn = self.lock().pop()?;
        Some(Checkout {
            inner: self,
            conn: Some(conn),
        })
    }

    /// Waits for a free connection (blocking; called on a blocking thread).
    fn checkout(&self) -> Checkout<'_> {
        let mut pool = self.lock();
        loop {
            if let Some(conn) = pool.pop() {
                return Checkout {
                    inner: self,
                    conn: Some(conn),
                };
            }
            pool = self
                .returned
                .wait(pool)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Reader {
    pub(crate) fn new(
        conns: Vec<Connection>,
        cache: Arc<ValueCache>,
        limits: Limits,
        db_id: String,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool: Mutex::new(conns),
                returned: Condvar::new(),
                cache,
                limits,
                db_id,
            }),
        }
    }

    /// The random id the database got when it was created; changes only if the file is
    /// replaced, so the mirror can detect a new database and resync.
    pub fn db_id(&self) -> &str {
        &self.inner.db_id
    }

    /// The key and value limits the store enforces.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Runs `f` with a pooled connection on a blocking thread.
    async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut checkout = inner.checkout();
            let conn = checkout
                .conn
                .as_mut()
                .expect("a checkout holds its connection until dropped");
            f(conn)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "state store read task failed");
            StoreError::Internal("a read task failed".to_owned())
        })?
    }

    /// One key. 404 names the scope when the scope is missing, the key when only the key is.
    pub async fn get(&self, scope: &str, key: &str) -> Result<Entry, StoreError> {
        validate::scope(scope)?;
        validate::key(key, &self.inner.limits)?;
        let ticket = match self.inner.cache.get(scope, key) {
            Ok(entry) => return Ok(entry),
            Err(ticket) => ticket,
        };
        let entry = self.get_from_sqlite(scope, key).await?;
        self.inner.cache.fill(ticket, &entry);
        Ok(entry)
    }

    /// A point read on this task when a connection is free (see the module docs), else on
    /// the blocking pool.
    async fn get_from_sqlite(&self, scope: &str, key: &str) -> Result<Entry, StoreError> {
        if let Some(checkout) = self.inner.try_checkout() {
            let conn = checkout
                .conn
                .as_ref()
                .expect("a checkout holds its connection until dropped");
            return queries::get(conn, scope, key);
        }
        let (scope, key) = (scope.to_owned(), key.to_owned());
        self.with_conn(move |conn| queries::get(conn, &scope, &key))
            .await
    }

    /// One page of the keys of `scope` that start with `prefix` (empty = all), ordered by key.
    ///
    /// `limit` 0 means 100; above 1000 is a 400 naming `limit`. `page_token` is empty for the
    /// first page, else the `next_page_token` of the previous page (anything else is a 400
    /// naming `page_token`). Pages are keyset-based: under concurrent writes no key is returned
    /// twice and no key that exists throughout is skipped.
    pub async fn list(
        &self,
        scope: &str,
        prefix: &str,
        limit: u32,
        page_token: &str,
    ) -> Result<ListPage, StoreError> {
        let limits = &self.inner.limits;
        validate::scope(scope)?;
        validate::max_len("prefix", prefix, limits.max_key_bytes)?;
        let size = page_size(limit)?;
        let after = decode_token(page_token, limits)?;
        let (scope, prefix) = (scope.to_owned(), prefix.to_owned());
        self.with_conn(move |conn| queries::list(conn, &scope, &prefix, size, after.as_deref()))
            .await
    }

    /// Every scope with its number of keys, ordered by name.
    pub async fn scope_list(&self) -> Result<Vec<ScopeInfo>, StoreError> {
        self.with_conn(|conn| queries::scope_list(conn)).await
    }

    /// Up to `max` outbox rows with `seq > after_seq`, in commit order — what the mirror has
    /// yet to publish.
    pub async fn outbox_after(
        &self,
        after_seq: u64,
        max: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.with_conn(move |conn| queries::outbox_after(conn, after_seq, max))
            .await
    }

    /// The highest outbox sequence number ever committed (0 if none), even when the mirror has
    /// already removed its row.
    pub async fn last_outbox_seq(&self) -> Result<u64, StoreError> {
        self.with_conn(|conn| queries::last_outbox_seq(conn)).await
    }

    /// A chunk of all entries of all scopes, ordered by `(scope, key)`, after `after` (`None`
    /// starts at the beginning): pass the last entry's `(scope, key)` to get the next chunk, until
    /// a chunk comes back shorter than `max`. For the mirror's reconcile: each chunk is one read
    /// transaction, and [`EntryChunk::as_of`] is the last change sequence that snapshot
    /// contains, so a change to one of these keys after the read has a higher sequence.
    pub async fn entries_after(
        &self,
        after: Option<(String, String)>,
        max: usize,
    ) -> Result<EntryChunk, StoreError> {
        self.with_conn(move |conn| {
            let txn = conn
                .transaction()
                .map_err(|e| StoreError::sqlite("starting a read", &e))?;
            let as_of = queries::last_outbox_seq(&txn)?;
            let after = after.as_ref().map(|(s, k)| (s.as_str(), k.as_str()));
            let entries = queries::entries_after(&txn, after, max)?;
            Ok(EntryChunk { entries, as_of })
        })
        .await
    }

    /// Keys as of one snapshot, for the mirror's reconcile: each key's entry (`None` if absent)
    /// and whether the outbox holds a change of it after `after_seq` (the last change the
    /// mirror knows acknowledged), with the last change sequence the snapshot contains (see
    /// [`Reader::entries_after`]). A key without such a change has not changed since.
    pub async fn recheck(
        &self,
        keys: Vec<(String, String)>,
        after_seq: u64,
    ) -> Result<Recheck, StoreError> {
        self.with_conn(move |conn| {
            let txn = conn
                .transaction()
                .map_err(|e| StoreError::sqlite("starting a read", &e))?;
            let as_of = queries::last_outbox_seq(&txn)?;
            let pending = queries::outbox_keys(&txn, after_seq)?;
            let keys = keys
                .into_iter()
                .map(|(scope, key)| {
                    let entry = match queries::get(&txn, &scope, &key) {
                        Ok(entry) => Some(entry),
                        Err(StoreError::NotFound(_)) => None,
                        Err(err) => return Err(err),
                    };
                    let pending = pending.contains(&(scope.clone(), key.clone()));
                    Ok(Rechecked {
                        scope,
                        key,
                        entry,
                        pending,
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(Recheck { keys, as_of })
        })
        .await
    }
}

/// Keys read again in one snapshot ([`Reader::recheck`]).
#[derive(Debug, Clone)]
pub struct Recheck {
    /// The keys, in the order asked.
    pub keys: Vec<Rechecked>,
    /// The highest change sequence committed when they were read.
    pub as_of: u64,
}

/// One key of a [`Recheck`].
#[derive(Debug, Clone)]
pub struct Rechecked {
    /// Its scope.
    pub scope: String,
    /// Its key.
    pub key: String,
    /// Its entry, `None` if absent.
    pub entry: Option<Entry>,
    /// Whether the outbox holds a change of it after the `after_seq` asked.
    pub pending: bool,
}

/// Entries read in one snapshot, with the last change sequence that snapshot contains.
#[derive(Debug, Clone)]
pub struct EntryChunk {
    /// The entries, ordered by `(scope, key)`.
    pub entries: Vec<Entry>,
    /// The highest change sequence committed when they were read.
    pub as_of: u64,
}
