//! The read path: get, list with keyset pagination (also under concurrent writes), scope
//! listing, full-resync chunks, and the pool under contention.

use std::collections::{BTreeSet, HashMap};

use super::TestStore;
use crate::store::{StoreConfig, StoreError};

async fn all_pages(store: &TestStore, scope: &str, prefix: &str, limit: u32) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token = String::new();
    loop {
        let page = store
            .reader
            .list(scope, prefix, limit, &token)
            .await
            .unwrap();
        let size = if limit == 0 { 100 } else { limit as usize };
        assert!(page.entries.len() <= size);
        keys.extend(page.entries.into_iter().map(|e| e.key));
        if page.next_page_token.is_empty() {
            return keys;
        }
        token = page.next_page_token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_distinguishes_missing_scope_from_missing_key() {
    let store = TestStore::auto_create();
    store
        .writer
        .set("s", "Temperatur Ofen ü", "180", false, None)
        .await
        .unwrap();
    let entry = store.reader.get("s", "Temperatur Ofen ü").await.unwrap();
    assert_eq!(
        (entry.scope.as_str(), entry.value.as_str(), entry.version),
        ("s", "180", 1)
    );

    let scope_err = store.reader.get("nope", "k").await.unwrap_err();
    let key_err = store.reader.get("s", "k").await.unwrap_err();
    assert_eq!((scope_err.code(), key_err.code()), (404, 404));
    assert_eq!(scope_err.to_string(), "scope \"nope\" not found");
    assert_eq!(key_err.to_string(), "key \"k\" not found in scope \"s\"");
    assert_eq!(store.reader.get("a..b", "k").await.unwrap_err().code(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_by_key_with_prefix() {
    let store = TestStore::auto_create();
    let keys = ["a", "b/1", "b/2", "b/3", "b0", "c", "ü", "🔥"];
    for key in keys {
        store.writer.set("s", key, key, false, None).await.unwrap();
    }
    store
        .writer
        .set("s.sub", "b/9", "x", false, None)
        .await
        .unwrap();

    assert_eq!(
        all_pages(&store, "s", "", 0).await,
        keys,
        "byte order, own scope only"
    );
    assert_eq!(all_pages(&store, "s", "", 3).await, keys);
    assert_eq!(all_pages(&store, "s", "", 1).await, keys);
    assert_eq!(all_pages(&store, "s", "b/", 2).await, ["b/1", "b/2", "b/3"]);
    assert_eq!(
        all_pages(&store, "s", "b", 100).await,
        ["b/1", "b/2", "b/3", "b0"]
    );
    assert!(all_pages(&store, "s", "zzz", 10).await.is_empty());

    // An exactly full last page has no token.
    let page = store.reader.list("s", "b/", 3, "").await.unwrap();
    assert_eq!(page.entries.len(), 3);
    assert!(page.next_page_token.is_empty());
    let page = store.reader.list("s", "", 2, "").await.unwrap();
    assert_eq!(page.entries[1].value, "b/1");
    assert!(!page.next_page_token.is_empty());

    let empty = store
        .reader
        .list("s.sub.none", "", 0, "")
        .await
        .unwrap_err();
    assert_eq!(empty.code(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_rejects_bad_limits_and_tokens_by_field() {
    let store = TestStore::auto_create();
    store.writer.set("s", "k", "v", false, None).await.unwrap();
    let r = &store.reader;
    let field = |e: StoreError| (e.code(), e.field());
    assert_eq!(
        field(r.list("s", "", 1001, "").await.unwrap_err()),
        (400, Some("limit"))
    );
    assert_eq!(
        field(r.list("s", "", 0, "%%%").await.unwrap_err()),
        (400, Some("page_token"))
    );
    assert_eq!(
        field(r.list("s.*", "", 0, "").await.unwrap_err()),
        (400, Some("scope"))
    );
    let long_prefix = "p".repeat(1025);
    assert_eq!(
        field(r.list("s", &long_prefix, 0, "").await.unwrap_err()),
        (413, Some("prefix"))
    );
    assert_eq!(r.list("s", "", 1000, "").await.unwrap().entries.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pagination_is_stable_under_concurrent_writes() {
    let store = TestStore::auto_create();
    let existing: Vec<String> = (0..300).map(|i| format!("k{i:04}")).collect();
    for key in &existing {
        store.writer.set("s", key, "v", false, None).await.unwrap();
    }
    // While we page, a writer inserts keys between and around the existing ones, and updates
    // the existing ones.
    let writer = store.writer.clone();
    let churn = tokio::spawn(async move {
        for i in 0..300 {
            writer
                .set("s", &format!("k{i:04}x"), "new", false, None)
                .await
                .unwrap();
            writer
                .set("s", &format!("k{:04}", 299 - i), "upd", false, None)
                .await
                .unwrap();
            if i % 7 == 0 {
                writer
                    .set("s", &format!("a{i}"), "before", false, None)
                    .await
                    .unwrap();
            }
        }
    });
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = store.reader.list("s", "", 7, &token).await.unwrap();
        seen.extend(page.entries.into_iter().map(|e| e.key));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        tokio::task::yield_now().await;
    }
    churn.await.unwrap();

    let mut counts: HashMap<&str, usize> = HashMap::new();
    for key in &seen {
        *counts.entry(key).or_default() += 1;
    }
    assert!(counts.values().all(|&n| n == 1), "no key twice");
    for key in &existing {
        assert_eq!(
            counts.get(key.as_str()),
            Some(&1),
            "{key} returned exactly once"
        );
    }
    assert!(
        seen.windows(2).all(|p| p[0] < p[1]),
        "keys ascend across pages"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_list_counts_keys() {
    let store = TestStore::auto_create();
    store.writer.scope_create("empty").await.unwrap();
    for key in ["a", "b", "c"] {
        store
            .writer
            .set("site1", key, "v", false, None)
            .await
            .unwrap();
    }
    store
        .writer
        .set("site1.oven", "t", "v", false, None)
        .await
        .unwrap();
    let scopes: Vec<_> = store
        .reader
        .scope_list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.name, s.key_count))
        .collect();
    assert_eq!(
        scopes,
        [
            ("empty".into(), 0),
            ("site1".into(), 3),
            ("site1.oven".into(), 1)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_after_walks_everything_in_chunks() {
    let store = TestStore::auto_create();
    let mut expected = BTreeSet::new();
    for scope in ["a", "a.b", "b"] {
        for i in 0..7 {
            let key = format!("k{i}");
            store
                .writer
                .set(scope, &key, "v", false, None)
                .await
                .unwrap();
            expected.insert((scope.to_owned(), key));
        }
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let chunk = store
            .reader
            .entries_after(after.clone(), 4)
            .await
            .unwrap()
            .entries;
        let done = chunk.len() < 4;
        seen.extend(chunk.into_iter().map(|e| (e.scope, e.key)));
        after = seen.last().cloned();
        if done {
            break;
        }
    }
    assert_eq!(seen, expected.into_iter().collect::<Vec<_>>());

    // Each chunk and point read says which change its snapshot includes.
    let last = store.reader.last_outbox_seq().await.unwrap();
    assert_eq!(
        store.reader.entries_after(None, 1).await.unwrap().as_of,
        last
    );
    let keys = vec![("a".to_owned(), "k0".to_owned())];
    let read = store.reader.recheck(keys.clone(), 0).await.unwrap();
    let k0 = &read.keys[0];
    assert_eq!(
        (k0.entry.as_ref().map(|e| e.value.as_str()), read.as_of),
        (Some("v"), last)
    );
    assert!(
        k0.pending,
        "nothing mirrored yet: its change is in the outbox"
    );
    let read = store.reader.recheck(keys.clone(), last).await.unwrap();
    assert!(
        !read.keys[0].pending,
        "acknowledged, though still in the outbox"
    );
    store.writer.outbox_done(last).await.unwrap();
    let read = store.reader.recheck(keys.clone(), 0).await.unwrap();
    assert!(!read.keys[0].pending, "mirrored and removed");
    store.writer.delete("a", "k0", None).await.unwrap();
    let read = store.reader.recheck(keys, last).await.unwrap();
    let k0 = &read.keys[0];
    assert_eq!(
        (k0.entry.is_none(), k0.pending, read.as_of),
        (true, true, last + 1),
        "a delete is a change too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_small_pool_serves_many_concurrent_reads() {
    let store = TestStore::open(StoreConfig {
        auto_create_scopes: true,
        read_pool_size: 1,
        ..StoreConfig::default()
    });
    store.writer.set("s", "k", "v", false, None).await.unwrap();
    let reads: Vec<_> = (0..64)
        .map(|_| {
            let r = store.reader.clone();
            tokio::spawn(async move { r.get("s", "k").await })
        })
        .collect();
    for read in reads {
        assert_eq!(read.await.unwrap().unwrap().value, "v");
    }
}

/// Gets run on their task when a connection is free and fall back to the blocking pool when
/// lists hold the only one: with a pool of one and lists running throughout, both kinds of
/// read still answer correctly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gets_fall_back_to_the_pool_while_lists_hold_it() {
    let store = TestStore::open(StoreConfig {
        auto_create_scopes: true,
        read_pool_size: 1,
        ..StoreConfig::default()
    });
    for i in 0..200 {
        store
            .writer
            .set("s", &format!("k{i:03}"), &format!("v{i}"), false, None)
            .await
            .unwrap();
    }
    let lists: Vec<_> = (0..8)
        .map(|_| {
            let r = store.reader.clone();
            tokio::spawn(async move { r.list("s", "", 1000, "").await })
        })
        .collect();
    let gets: Vec<_> = (0..200)
        .map(|i| {
            let r = store.reader.clone();
            tokio::spawn(async move { (i, r.get("s", &format!("k{i:03}")).await) })
        })
        .collect();
    for get in gets {
        let (i, entry) = get.await.unwrap();
        assert_eq!(entry.unwrap().value, format!("v{i}"));
    }
    for list in lists {
        assert_eq!(list.await.unwrap().unwrap().entries.len(), 200);
    }
}

/// The get cache never answers with a value older than the last acknowledged write: while
/// readers keep the key hot, every get after a set's ack sees that set's version or a newer
/// one; a cached key that is deleted, or whose scope is deleted, is a 404 right after the ack.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cached_gets_never_lag_an_acknowledged_write() {
    let store = TestStore::auto_create();
    store.writer.set("s", "k", "0", false, None).await.unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammers: Vec<_> = (0..4)
        .map(|_| {
            let (r, stop) = (store.reader.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = r.get("s", "k").await;
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for i in 1..=300u64 {
        let acked = store
            .writer
            .set("s", "k", &i.to_string(), false, None)
            .await
            .unwrap()
            .version;
        let seen = store.reader.get("s", "k").await.unwrap();
        assert!(
            seen.version >= acked,
            "get after ack of v{acked} returned v{}",
            seen.version
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for hammer in hammers {
        hammer.await.unwrap();
    }

    // Cached, then deleted: 404 at once.
    assert_eq!(store.reader.get("s", "k").await.unwrap().value, "300");
    store.writer.delete("s", "k", None).await.unwrap();
    assert!(matches!(
        store.reader.get("s", "k").await,
        Err(StoreError::NotFound { .. })
    ));
    // Cached, then its scope deleted: 404 at once; a sub-scope's cached key is untouched.
    store.writer.set("s", "k2", "v", false, None).await.unwrap();
    store
        .writer
        .set("s.sub", "k", "v", false, None)
        .await
        .unwrap();
    assert!(store.reader.get("s", "k2").await.is_ok());
    assert!(store.reader.get("s.sub", "k").await.is_ok());
    store.writer.scope_delete("s").await.unwrap();
    assert!(store.reader.get("s", "k2").await.is_err());
    assert_eq!(store.reader.get("s.sub", "k").await.unwrap().value, "v");
}
