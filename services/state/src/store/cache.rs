//! A bounded cache of current values in front of the read pool, for `get`.
//!
//! A point read from SQLite costs a read transaction (and its `fcntl` locks on the WAL index),
//! a b-tree search and copies; under `plant bench --scenario state-get-64` that was most of
//! what separated a get from a bare echo. The cache answers repeated gets from memory.
//!
//! SQLite stays the source of truth, and the cache never answers with a value older than the
//! last acknowledged write:
//!
//! - The writer thread **invalidates** every key a committed batch touched (a set or delete
//!   removes its key, a scope delete all keys of that scope) *before* it answers any op of
//!   the batch, and bumps a generation counter under the same lock.
//! - A get that misses reads SQLite and fills the cache only if the generation is still the
//!   one it saw **before** its read. A fill that raced with a commit is dropped: its snapshot
//!   may predate the change. A fill that lands between a commit and the writer's invalidation
//!   is removed by that invalidation, and that write has not been acknowledged yet.
//!
//! Only existing keys are cached (a 404 always reads SQLite). The cache holds at most
//! `read_cache_bytes` of keys and values; once full, it takes no new entries until
//! invalidations free room (no eviction: what was read first stays hot). 0 turns it off. It
//! starts empty with every process, so a restart or a replaced database file cannot serve old
//! data.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock, RwLockWriteGuard};

use super::types::Entry;

/// The cache shared by the readers and the writer thread.
#[derive(Debug)]
pub(crate) struct ValueCache {
    inner: RwLock<Inner>,
    capacity_bytes: usize,
}

#[derive(Debug, Default)]
struct Inner {
    /// scope → key → entry.
    scopes: HashMap<String, HashMap<String, Entry>>,
    /// Bytes of keys and values held.
    bytes: usize,
    /// Bumped by every invalidation; a fill is kept only if it did not change meanwhile.
    generation: u64,
}

/// What a fill must present: the generation seen before its SQLite read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FillTicket(u64);

/// The keys a committed batch changed.
#[derive(Debug)]
pub(crate) enum Touched<'a> {
    /// A set or delete of one key.
    Key(&'a str, &'a str),
    /// A scope delete: every key of the scope.
    Scope(&'a str),
}

fn entry_bytes(entry: &Entry) -> usize {
    entry.key.len() + entry.value.len()
}

impl ValueCache {
    /// A cache of at most `capacity_bytes` of keys and values (0 = off).
    pub(crate) fn new(capacity_bytes: usize) -> Self {
        Self {
            inner: RwLock::new(Inner::default()),
            capacity_bytes,
        }
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        // Every update leaves `Inner` consistent before it can panic, so a poisoned lock is
        // still safe to use.
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached entry of `(scope, key)` and, on a miss, the ticket a fill needs.
    pub(crate) fn get(&self, scope: &str, key: &str) -> Result<Entry, FillTicket> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        match inner.scopes.get(scope).and_then(|keys| keys.get(key)) {
            Some(entry) => Ok(entry.clone()),
            None => Err(FillTicket(inner.generation)),
        }
    }

    /// Stores what a missed get read from SQLite, unless a commit invalidated anything since
    /// `ticket` was taken or the cache is full.
    pub(crate) fn fill(&self, ticket: FillTicket, entry: &Entry) {
        if self.capacity_bytes == 0 {
            return;
        }
        let size = entry_bytes(entry);
        let mut inner = self.write();
        if inner.generation != ticket.0 || inner.bytes + size > self.capacity_bytes {
            return;
        }
        let keys = inner.scopes.entry(entry.scope.clone()).or_default();
        let old = keys.insert(entry.key.clone(), entry.clone());
        let freed = old.as_ref().map_or(0, entry_bytes);
        inner.bytes = inner.bytes + size - freed;
    }

    /// Drops every entry a committed batch touched; called by the writer before it answers.
    pub(crate) fn invalidate<'a>(&self, touched: impl IntoIterator<Item = Touched<'a>>) {
        let mut inner = self.write();
        inner.generation += 1;
        for touch in touched {
            let freed = match touch {
                Touched::Key(scope, key) => {
                    let Some(keys) = inner.scopes.get_mut(scope) else {
                        continue;
                    };
                    let freed = keys.remove(key).as_ref().map_or(0, entry_bytes);
                    if keys.is_empty() {
                        inner.scopes.remove(scope);
                    }
                    freed
                }
                Touched::Scope(scope) => inner
                    .scopes
                    .remove(scope)
                    .map_or(0, |keys| keys.values().map(entry_bytes).sum()),
            };
            inner.bytes -= freed;
        }
    }

    /// Bytes held (for tests).
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(scope: &str, key: &str, value: &str, version: u64) -> Entry {
        Entry {
            scope: scope.into(),
            key: key.into(),
            value: value.into(),
            version,
            created: 1,
            modified: 2,
        }
    }

    #[test]
    fn a_fill_is_served_until_invalidated() {
        let cache = ValueCache::new(1024);
        let ticket = cache.get("s", "k").unwrap_err();
        cache.fill(ticket, &entry("s", "k", "v", 1));
        assert_eq!(cache.get("s", "k").unwrap().value, "v");
        assert_eq!(cache.bytes(), 2);
        cache.invalidate([Touched::Key("s", "k")]);
        assert!(cache.get("s", "k").is_err());
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn a_fill_that_raced_with_a_commit_is_dropped() {
        let cache = ValueCache::new(1024);
        let ticket = cache.get("s", "k").unwrap_err();
        // A commit of another key lands between the miss and the fill.
        cache.invalidate([Touched::Key("s", "other")]);
        cache.fill(ticket, &entry("s", "k", "maybe-old", 1));
        assert!(cache.get("s", "k").is_err(), "the stale fill was not kept");
    }

    #[test]
    fn a_scope_delete_drops_its_keys_and_only_them() {
        let cache = ValueCache::new(1024);
        for (scope, key) in [("a", "1"), ("a", "2"), ("a.b", "1")] {
            let ticket = cache.get(scope, key).unwrap_err();
            cache.fill(ticket, &entry(scope, key, "v", 1));
        }
        cache.invalidate([Touched::Scope("a")]);
        assert!(cache.get("a", "1").is_err());
        assert!(cache.get("a", "2").is_err());
        assert!(cache.get("a.b", "1").is_ok(), "sub-scopes are not deleted");
        assert_eq!(cache.bytes(), 2);
    }

    #[test]
    fn the_byte_bound_holds_and_zero_turns_it_off() {
        let cache = ValueCache::new(10);
        let ticket = cache.get("s", "k1").unwrap_err();
        cache.fill(ticket, &entry("s", "k1", "12345678", 1)); // 10 bytes: fits exactly
        let ticket = cache.get("s", "k2").unwrap_err();
        cache.fill(ticket, &entry("s", "k2", "x", 1));
        assert!(cache.get("s", "k2").is_err(), "full: no new entries");
        assert_eq!(cache.bytes(), 10);
        let off = ValueCache::new(0);
        let ticket = off.get("s", "k").unwrap_err();
        off.fill(ticket, &entry("s", "k", "v", 1));
        assert!(off.get("s", "k").is_err());
    }
}
