//! The state service's request API end to end: every operation in JSON and protobuf, every
//! error code with the field it names, list pagination (also under concurrent writes),
//! compare-and-set races, and scope management including the KV delete markers of
//! `scope.delete`. Real nats-server, real `plantd-state`.

mod common_state;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use common_state::{BUCKET, CALL_TIMEOUT, DEADLINE, State, StateEnv, assert_error};
use plantd_schemas::state::v1::{GetRequest, ListRequest, SetRequest};
use plantd_shared::ErrorCode;
use plantd_shared::call::{self, CallError};
use plantd_shared::codec::Encoding;
use plantd_shared::subjects::state as subj;
use plantd_tests::eventually;

/// Creates `scope` and sets `keys` in it (concurrently, in chunks).
async fn fill(state: &State, scope: &str, keys: &[String]) {
    state.scope_create(scope).await.expect("scope.create");
    for chunk in keys.chunks(64) {
        let sets = chunk.iter().map(|k| async move {
            let value = format!("v-{k}");
            state.set(scope, k, &value).await
        });
        for result in futures::future::join_all(sets).await {
            result.expect("set");
        }
    }
}

#[tokio::test]
async fn every_operation_in_json_and_protobuf() -> anyhow::Result<()> {
    let env = StateEnv::start(&[]).await?;
    for encoding in [Encoding::Json, Encoding::Protobuf] {
        let state = env.state(encoding);
        let scope = format!("api.{encoding:?}").to_lowercase();
        let ctx = |what: &str| format!("{encoding:?}: {what}");

        let created = state.scope_create(&scope).await?;
        assert_eq!(
            (created.scope.as_str(), created.created),
            (scope.as_str(), true)
        );
        let again = state.scope_create(&scope).await?;
        assert!(!again.created, "{}", ctx("scope.create is idempotent"));

        // Plain set, then get with every field.
        let first = state.set(&scope, "temp", "21.5").await?;
        assert_eq!(first.version, 1, "{}", ctx("new key"));
        assert!(first.modified.is_some(), "{}", ctx("set has modified"));
        let got = state.get(&scope, "temp").await?;
        assert_eq!(
            (got.key.as_str(), got.value.as_str(), got.version),
            ("temp", "21.5", 1)
        );
        assert!(got.created.is_some() && got.modified.is_some());
        assert_eq!(
            got.created,
            got.modified,
            "{}",
            ctx("created == modified at v1")
        );

        // Overwrite: version grows by one, created stays.
        let second = state.set(&scope, "temp", "22.0").await?;
        assert_eq!(second.version, 2);
        let got2 = state.get(&scope, "temp").await?;
        assert_eq!((got2.value.as_str(), got2.version), ("22.0", 2));
        assert_eq!(got2.created, got.created, "{}", ctx("created is kept"));

        // Compare-and-set with the right version; create_only on a new key.
        let cas = state
            .set_req(
                &scope,
                SetRequest {
                    key: "temp".into(),
                    value: "23.0".into(),
                    expected_version: Some(2),
                    ..Default::default()
                },
            )
            .await?;
        assert_eq!(cas.version, 3);
        let created_only = state
            .set_req(
                &scope,
                SetRequest {
                    key: "Ofen Temperatur ü.🔥".into(),
                    value: "heiß\n\"quoted\"".into(),
                    create_only: true,
                    ..Default::default()
                },
            )
            .await?;
        assert_eq!(created_only.version, 1);
        let unicode = state.get(&scope, "Ofen Temperatur ü.🔥").await?;
        assert_eq!(
            unicode.value,
            "heiß\n\"quoted\"",
            "{}",
            ctx("UTF-8 round trip")
        );
        // expected_version 0 means "must not exist" and creates.
        let zero = state
            .set_req(
                &scope,
                SetRequest {
                    key: "pressure".into(),
                    value: "1.01".into(),
                    expected_version: Some(0),
                    ..Default::default()
                },
            )
            .await?;
        assert_eq!(zero.version, 1);
        // An empty value is a value.
        state.set(&scope, "empty", "").await?;
        assert_eq!(state.get(&scope, "empty").await?.value, "");

        // list: all, with a prefix.
        let all = state.list(&scope, ListRequest::default()).await?;
        let keys: Vec<_> = all.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            ["Ofen Temperatur ü.🔥", "empty", "pressure", "temp"],
            "{}",
            ctx("list is ordered by key bytes")
        );
        assert!(all.next_page_token.is_empty());
        let temp = all.entries.iter().find(|e| e.key == "temp").unwrap();
        assert_eq!((temp.value.as_str(), temp.version), ("23.0", 3));
        assert!(temp.modified.is_some());
        let prefixed = state
            .list(
                &scope,
                ListRequest {
                    prefix: "p".into(),
                    ..Default::default()
                },
            )
            .await?;
        assert_eq!(prefixed.entries.len(), 1);
        assert_eq!(prefixed.entries[0].key, "pressure");

        // delete with the right expected version, then a plain delete of a missing key.
        let deleted = state.delete(&scope, "pressure", Some(1)).await?;
        assert_eq!((deleted.existed, deleted.last_version), (true, 1));
        let missing = state.delete(&scope, "pressure", None).await?;
        assert_eq!(
            (missing.existed, missing.last_version),
            (false, 0),
            "{}",
            ctx("deleting a missing key is not an error")
        );
        assert_error(
            state.get(&scope, "pressure").await,
            ErrorCode::NotFound,
            None,
            &ctx("get after delete"),
        );
        // A deleted key starts again at version 1.
        assert_eq!(state.set(&scope, "pressure", "0.9").await?.version, 1);

        // scope.list counts keys; scope.delete removes the scope and its keys.
        let scopes = state.scope_list().await?;
        let info = scopes
            .scopes
            .iter()
            .find(|s| s.name == scope)
            .expect("scope listed");
        assert_eq!(info.key_count, 4, "{}", ctx("key count"));
        assert!(info.created.is_some());
        let dropped = state.scope_delete(&scope).await?;
        assert_eq!(
            (
                dropped.scope.as_str(),
                dropped.existed,
                dropped.deleted_keys
            ),
            (scope.as_str(), true, 4)
        );
        let dropped_again = state.scope_delete(&scope).await?;
        assert_eq!(
            (dropped_again.existed, dropped_again.deleted_keys),
            (false, 0)
        );
        assert!(
            !state
                .scope_list()
                .await?
                .scopes
                .iter()
                .any(|s| s.name == scope)
        );
        assert_error(
            state.get(&scope, "temp").await,
            ErrorCode::NotFound,
            None,
            &ctx("get in a deleted scope"),
        );
    }
    Ok(())
}

#[tokio::test]
async fn every_error_code_names_what_was_wrong() -> anyhow::Result<()> {
    let env = StateEnv::start(&[("max_value_bytes", "1000"), ("max_key_bytes", "100")]).await?;
    for encoding in [Encoding::Json, Encoding::Protobuf] {
        let state = env.state(encoding);
        let scope = format!("err.{encoding:?}").to_lowercase();
        let ctx = |what: &str| format!("{encoding:?}: {what}");
        state.scope_create(&scope).await?;
        state.set(&scope, "k", "v1").await?;

        // 404: missing key, missing scope (get, set, delete, list).
        let err = assert_error(
            state.get(&scope, "nope").await,
            ErrorCode::NotFound,
            None,
            &ctx("get missing key"),
        );
        assert!(err.message.contains("nope"), "{err:?}");
        let err = assert_error(
            state.get("no.such.scope", "k").await,
            ErrorCode::NotFound,
            None,
            &ctx("get in missing scope"),
        );
        assert!(err.message.contains("no.such.scope"), "{err:?}");
        assert_error(
            state.set("no.such.scope", "k", "v").await,
            ErrorCode::NotFound,
            None,
            &ctx("set in missing scope"),
        );
        assert_error(
            state.delete("no.such.scope", "k", None).await,
            ErrorCode::NotFound,
            None,
            &ctx("delete in missing scope"),
        );
        assert_error(
            state.list("no.such.scope", ListRequest::default()).await,
            ErrorCode::NotFound,
            None,
            &ctx("list in missing scope"),
        );

        // 409: create_only on an existing key, version mismatches; nothing changes.
        assert_error(
            state
                .set_req(
                    &scope,
                    SetRequest {
                        key: "k".into(),
                        value: "x".into(),
                        create_only: true,
                        ..Default::default()
                    },
                )
                .await,
            ErrorCode::Conflict,
            None,
            &ctx("create_only on existing"),
        );
        for expected in [0, 2, 99] {
            assert_error(
                state
                    .set_req(
                        &scope,
                        SetRequest {
                            key: "k".into(),
                            value: "x".into(),
                            expected_version: Some(expected),
                            ..Default::default()
                        },
                    )
                    .await,
                ErrorCode::Conflict,
                None,
                &ctx(&format!("set expecting version {expected} of a v1 key")),
            );
        }
        assert_error(
            state
                .set_req(
                    &scope,
                    SetRequest {
                        key: "absent".into(),
                        value: "x".into(),
                        expected_version: Some(1),
                        ..Default::default()
                    },
                )
                .await,
            ErrorCode::Conflict,
            None,
            &ctx("set expecting version 1 of a missing key"),
        );
        assert_error(
            state.delete(&scope, "k", Some(7)).await,
            ErrorCode::Conflict,
            None,
            &ctx("delete with wrong expected version"),
        );
        let still = state.get(&scope, "k").await?;
        assert_eq!(
            (still.value.as_str(), still.version),
            ("v1", 1),
            "{}",
            ctx("a refused write changes nothing")
        );
        let missing = state.delete(&scope, "absent", None).await?;
        assert!(!missing.existed, "{}", ctx("delete missing key"));

        // 413: value and key over the configured limits; at the limit is fine.
        let err = assert_error(
            state.set(&scope, "big", &"v".repeat(1001)).await,
            ErrorCode::TooLarge,
            Some("value"),
            &ctx("value over max_value_bytes"),
        );
        assert!(err.message.contains("1000"), "{err:?}");
        state.set(&scope, "big", &"v".repeat(1000)).await?;
        // Bytes, not characters: 501 two-byte characters are 1002 bytes.
        assert_error(
            state.set(&scope, "big", &"ü".repeat(501)).await,
            ErrorCode::TooLarge,
            Some("value"),
            &ctx("value over max_value_bytes in bytes"),
        );
        let long_key = "k".repeat(101);
        assert_error(
            state.set(&scope, &long_key, "v").await,
            ErrorCode::TooLarge,
            Some("key"),
            &ctx("set key over max_key_bytes"),
        );
        assert_error(
            state.get(&scope, &long_key).await,
            ErrorCode::TooLarge,
            Some("key"),
            &ctx("get key over max_key_bytes"),
        );
        state.set(&scope, &"k".repeat(100), "v").await?;

        // 400 naming "key": empty key on every key operation.
        assert_error(
            state.get(&scope, "").await,
            ErrorCode::BadRequest,
            Some("key"),
            &ctx("get empty key"),
        );
        assert_error(
            state.set(&scope, "", "v").await,
            ErrorCode::BadRequest,
            Some("key"),
            &ctx("set empty key"),
        );
        assert_error(
            state.delete(&scope, "", None).await,
            ErrorCode::BadRequest,
            Some("key"),
            &ctx("delete empty key"),
        );

        // 400 naming "scope": a token NATS accepts but the store does not (too long, or a
        // control character), on key and scope operations.
        let long_scope = format!("site1.{}", "a".repeat(300));
        assert_error(
            state.get(&long_scope, "k").await,
            ErrorCode::BadRequest,
            Some("scope"),
            &ctx("get with a 300-byte scope token"),
        );
        assert_error(
            state.set(&long_scope, "k", "v").await,
            ErrorCode::BadRequest,
            Some("scope"),
            &ctx("set with a 300-byte scope token"),
        );
        assert_error(
            state.scope_create(&long_scope).await,
            ErrorCode::BadRequest,
            Some("scope"),
            &ctx("scope.create with a 300-byte scope token"),
        );
        assert_error(
            state.scope_create("site1.bell\u{7}").await,
            ErrorCode::BadRequest,
            Some("scope"),
            &ctx("scope.create with a control character"),
        );
        assert_error(
            state.set("site1.del\u{7f}", "k", "v").await,
            ErrorCode::BadRequest,
            Some("scope"),
            &ctx("set with a DEL character in the scope"),
        );

        // 400 naming "limit" and "page_token".
        assert_error(
            state
                .list(
                    &scope,
                    ListRequest {
                        limit: 1001,
                        ..Default::default()
                    },
                )
                .await,
            ErrorCode::BadRequest,
            Some("limit"),
            &ctx("list limit over 1000"),
        );
        for token in ["!!!", "a", "%%%%%%%%"] {
            assert_error(
                state
                    .list(
                        &scope,
                        ListRequest {
                            page_token: token.into(),
                            ..Default::default()
                        },
                    )
                    .await,
                ErrorCode::BadRequest,
                Some("page_token"),
                &ctx(&format!("list with page_token {token:?}")),
            );
        }
    }

    // Malformed payloads are 400s and the service keeps serving.
    let scope = "err.json";
    let get = subj::key_op("get", scope);
    for (encoding, payload) in [
        (Encoding::Json, &b"{\"key\": "[..]),
        (Encoding::Json, &b"not json at all"[..]),
        (Encoding::Json, &b"[1,2,3]"[..]),
        (Encoding::Json, &b"{\"key\": 42}"[..]),
        (Encoding::Protobuf, &b"\xff\xff\xff\xff"[..]),
    ] {
        let result = call::request_raw(
            &env.client,
            &get,
            encoding.headers(),
            Bytes::from_static(payload),
            CALL_TIMEOUT,
        )
        .await;
        assert_error(
            result,
            ErrorCode::BadRequest,
            None,
            &format!("malformed {encoding:?} payload {payload:?}"),
        );
    }
    let good: plantd_schemas::state::v1::GetResponse = call::request(
        &env.client,
        &get,
        &GetRequest { key: "k".into() },
        Encoding::Json,
        CALL_TIMEOUT,
    )
    .await?;
    assert_eq!(good.value, "v1", "service still serves after bad input");
    let stderr = env.service.stderr();
    assert!(
        !stderr.contains("panicked"),
        "plantd-state panicked:\n{stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn auto_create_scopes_creates_on_first_set() -> anyhow::Result<()> {
    let env = StateEnv::start(&[("auto_create_scopes", "true")]).await?;
    let state = env.state(Encoding::Json);
    assert_eq!(state.set("auto.fresh", "k", "v").await?.version, 1);
    assert_eq!(state.get("auto.fresh", "k").await?.value, "v");
    let scopes = state.scope_list().await?;
    let info = scopes
        .scopes
        .iter()
        .find(|s| s.name == "auto.fresh")
        .expect("auto-created scope listed");
    assert_eq!(info.key_count, 1);
    // Reads and deletes still say 404 for a scope nobody created.
    assert_error(
        state.get("auto.other", "k").await,
        ErrorCode::NotFound,
        None,
        "get in a never-created scope",
    );
    assert_error(
        state.delete("auto.other", "k", None).await,
        ErrorCode::NotFound,
        None,
        "delete in a never-created scope",
    );
    // Bad scopes are still refused.
    assert_error(
        state
            .set(&format!("auto.{}", "x".repeat(300)), "k", "v")
            .await,
        ErrorCode::BadRequest,
        Some("scope"),
        "auto-create of an invalid scope",
    );
    Ok(())
}

#[tokio::test]
async fn list_pages_through_every_key() -> anyhow::Result<()> {
    let env = StateEnv::start(&[]).await?;
    let state = env.state(Encoding::Protobuf);
    let keys: Vec<String> = (0..250).map(|i| format!("key{i:03}")).collect();
    fill(&state, "paging", &keys).await;
    state.set("paging", "other", "x").await?;

    // Default page size is 100.
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = Vec::new();
    loop {
        let page = state
            .list(
                "paging",
                ListRequest {
                    prefix: "key".into(),
                    limit: 0,
                    page_token: token,
                },
            )
            .await?;
        pages.push(page.entries.len());
        seen.extend(page.entries.into_iter().map(|e| e.key));
        if page.next_page_token.is_empty() {
            break;
        }
        assert!(pages.len() < 10, "paging does not end");
        token = page.next_page_token;
    }
    assert_eq!(pages, [100, 100, 50]);
    assert_eq!(seen, keys, "every key once, in order");

    // limit 1000 is allowed and returns everything at once; small pages work too.
    let big = state
        .list(
            "paging",
            ListRequest {
                limit: 1000,
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(big.entries.len(), 251);
    assert!(big.next_page_token.is_empty());
    let small = state
        .list(
            "paging",
            ListRequest {
                prefix: "key24".into(),
                limit: 3,
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(
        small
            .entries
            .iter()
            .map(|e| e.key.as_str())
            .collect::<Vec<_>>(),
        ["key240", "key241", "key242"]
    );
    let rest = state
        .list(
            "paging",
            ListRequest {
                prefix: "key24".into(),
                limit: 1000,
                page_token: small.next_page_token,
            },
        )
        .await?;
    assert_eq!(rest.entries.len(), 7);
    assert!(rest.next_page_token.is_empty());
    // A page exactly filled by the last keys says there is no more.
    let exact = state
        .list(
            "paging",
            ListRequest {
                prefix: "key24".into(),
                limit: 10,
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(exact.entries.len(), 10);
    assert!(
        exact.next_page_token.is_empty(),
        "no token after the last key"
    );
    Ok(())
}

#[tokio::test]
async fn list_paging_under_concurrent_writes_returns_each_key_once() -> anyhow::Result<()> {
    let env = StateEnv::start(&[]).await?;
    let state = env.state(Encoding::Json);
    let before: Vec<String> = (0..300).map(|i| format!("p{i:04}")).collect();
    fill(&state, "busy", &before).await;

    // A writer inserts keys between the existing ones (and before and after them) and updates
    // existing ones, as fast as it can, while the listing pages through.
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = {
        let (state, stop, writes) = (state.clone(), Arc::clone(&stop), Arc::clone(&writes));
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) && i < 100_000 {
                let n = (i * 37) % 300;
                let (new_key, old_key) = (format!("p{n:04}-{i}"), format!("p{n:04}"));
                let prefix_key = format!("a{i}");
                let updated = format!("updated-{i}");
                let (a, b, c) = tokio::join!(
                    state.set("busy", &new_key, "new"),
                    state.set("busy", &old_key, &updated),
                    state.set("busy", &prefix_key, "early"),
                );
                a.expect("insert");
                b.expect("update");
                c.expect("insert before");
                writes.fetch_add(3, Ordering::SeqCst);
                i += 1;
            }
        })
    };
    eventually(DEADLINE, || async {
        (writes.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await?;

    let mut returned: Vec<String> = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    let writes_at_start = writes.load(Ordering::SeqCst);
    loop {
        let page = state
            .list(
                "busy",
                ListRequest {
                    prefix: "p".into(),
                    limit: 7,
                    page_token: token,
                },
            )
            .await?;
        pages += 1;
        returned.extend(page.entries.into_iter().map(|e| e.key));
        if page.next_page_token.is_empty() {
            break;
        }
        assert!(pages < 100_000, "paging does not end");
        token = page.next_page_token;
    }
    let writes_during = writes.load(Ordering::SeqCst) - writes_at_start;
    stop.store(true, Ordering::SeqCst);
    writer.await?;

    assert!(
        writes_during > 0,
        "the writer wrote while the listing paged"
    );
    assert!(
        returned.windows(2).all(|w| w[0] < w[1]),
        "keys strictly ascending across pages (so none twice)"
    );
    let returned_set: BTreeSet<&String> = returned.iter().collect();
    let missing: Vec<_> = before
        .iter()
        .filter(|k| !returned_set.contains(k))
        .collect();
    assert!(missing.is_empty(), "keys skipped while paging: {missing:?}");
    assert!(returned.iter().all(|k| k.starts_with('p')));
    eprintln!(
        "{pages} pages, {} keys returned, {writes_during} concurrent writes",
        returned.len()
    );
    Ok(())
}

#[tokio::test]
async fn compare_and_set_race_has_exactly_one_winner() -> anyhow::Result<()> {
    let env = StateEnv::start(&[]).await?;
    // Two connections, so the two requests really race to the service.
    let a = env.state(Encoding::Json);
    let b = State::new(
        env.nats.try_client().await?,
        Encoding::Protobuf,
        CALL_TIMEOUT,
    );
    a.scope_create("cas").await?;
    let mut version = a.set("cas", "counter", "start").await?.version;
    for round in 0..20 {
        let req = |who: &str| SetRequest {
            key: "counter".into(),
            value: format!("{who}-{round}"),
            expected_version: Some(version),
            ..Default::default()
        };
        let (ra, rb) = tokio::join!(a.set_req("cas", req("a")), b.set_req("cas", req("b")));
        let (winner, loser) = match (ra, rb) {
            (Ok(ok), Err(err)) => (("a", ok), err),
            (Err(err), Ok(ok)) => (("b", ok), err),
            other => panic!("round {round}: expected one winner and one 409, got {other:?}"),
        };
        match loser {
            CallError::Service(err) => assert_eq!(err.code, ErrorCode::Conflict, "{err:?}"),
            other => panic!("round {round}: loser failed with {other:?}"),
        }
        assert_eq!(winner.1.version, version + 1, "round {round}");
        let got = a.get("cas", "counter").await?;
        assert_eq!(
            (got.value, got.version),
            (format!("{}-{round}", winner.0), version + 1),
            "round {round}: the winner's value is stored"
        );
        version += 1;
    }

    // create_only races the same way: exactly one creator.
    for round in 0..20 {
        let key = format!("lock{round}");
        let req = |who: &str| SetRequest {
            key: key.clone(),
            value: who.into(),
            create_only: true,
            ..Default::default()
        };
        let (ra, rb) = tokio::join!(a.set_req("cas", req("a")), b.set_req("cas", req("b")));
        let oks = usize::from(ra.is_ok()) + usize::from(rb.is_ok());
        assert_eq!(oks, 1, "round {round}: {ra:?} / {rb:?}");
        for r in [ra, rb] {
            if let Err(err) = r {
                assert!(
                    matches!(&err, CallError::Service(e) if e.code == ErrorCode::Conflict),
                    "{err:?}"
                );
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn scopes_create_list_and_delete_with_kv_delete_markers() -> anyhow::Result<()> {
    let env = StateEnv::start(&[]).await?;
    let state = env.state(Encoding::Json);
    for scope in ["plant", "plant.oven", "plant.ovenx", "empty"] {
        assert!(state.scope_create(scope).await?.created);
    }
    assert!(!state.scope_create("plant").await?.created, "idempotent");
    let oven_keys: Vec<String> = (0..5).map(|i| format!("sensor.{i}")).collect();
    for key in &oven_keys {
        state.set("plant.oven", key, &format!("on-{key}")).await?;
    }
    state.set("plant.oven", "sensor.0", "overwritten").await?;
    for key in ["a", "b", "c"] {
        state.set("plant", key, "p").await?;
    }
    state.set("plant.ovenx", "sensor.0", "sibling").await?;

    let counts: BTreeMap<String, u64> = state
        .scope_list()
        .await?
        .scopes
        .into_iter()
        .map(|s| (s.name, s.key_count))
        .collect();
    let expected: BTreeMap<String, u64> = [
        ("empty", 0),
        ("plant", 3),
        ("plant.oven", 5),
        ("plant.ovenx", 1),
    ]
    .into_iter()
    .map(|(n, c)| (n.to_owned(), c))
    .collect();
    assert_eq!(counts, expected, "scope.list counts each scope's own keys");

    // The KV mirror holds the keys before the scope is deleted.
    let store = env.js.get_key_value(BUCKET).await?;
    let kv_key = |key: &str| plantd_state::kvkey::encode("plant.oven", key);
    eventually(DEADLINE, || async {
        for key in &oven_keys {
            let value = store.get(kv_key(key)).await?;
            anyhow::ensure!(value.is_some(), "{key} not mirrored yet");
        }
        anyhow::Ok(())
    })
    .await?;

    let deleted = state.scope_delete("plant.oven").await?;
    assert_eq!((deleted.existed, deleted.deleted_keys), (true, 5));
    let names: Vec<String> = state
        .scope_list()
        .await?
        .scopes
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["empty", "plant", "plant.ovenx"]);
    assert_error(
        state.get("plant.oven", "sensor.1").await,
        ErrorCode::NotFound,
        None,
        "get in the deleted scope",
    );
    // The parent and the sibling with a common name prefix keep their keys.
    assert_eq!(state.list_all("plant", "").await?.len(), 3);
    assert_eq!(state.get("plant.ovenx", "sensor.0").await?.value, "sibling");

    // Every deleted key shows a delete marker in the KV; the others are untouched.
    eventually(DEADLINE, || async {
        for key in &oven_keys {
            let entry = store
                .entry(kv_key(key))
                .await?
                .ok_or_else(|| anyhow::anyhow!("{key}: no KV entry at all"))?;
            anyhow::ensure!(
                entry.operation == kv::Operation::Delete,
                "{key}: last KV operation is {:?}",
                entry.operation
            );
        }
        anyhow::Ok(())
    })
    .await?;
    let sibling = store
        .get(plantd_state::kvkey::encode("plant.ovenx", "sensor.0"))
        .await?;
    assert_eq!(sibling.as_deref(), Some(&b"sibling"[..]));
    common_state::wait_kv_converged(&state, &env.js, DEADLINE).await?;

    // A recreated scope starts empty.
    assert!(state.scope_create("plant.oven").await?.created);
    assert!(state.list_all("plant.oven", "").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn requests_without_a_service_fail_fast_with_no_responders() -> anyhow::Result<()> {
    let mut env = StateEnv::start(&[]).await?;
    let state = env
        .state(Encoding::Json)
        .with_timeout(Duration::from_secs(5));
    state.scope_create("gone").await?;
    let status = env.service.terminate(DEADLINE).await?;
    assert!(
        status.success(),
        "plantd-state exits cleanly on SIGTERM: {status}"
    );
    let started = tokio::time::Instant::now();
    let result = state.get("gone", "k").await;
    assert!(
        matches!(result, Err(CallError::NoResponders { .. })),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no-responders is fast"
    );
    Ok(())
}

/// PRODUCT BUG (reported, not fixed here): the bucket is created with
/// `max_value_size = max_value_bytes`, but nats-server counts the message headers
/// (`Nats-Msg-Id`, `Plantd-Change-Seq`) in a stream's `max_msg_size`. A value at the limit is
/// accepted by the store, and its mirror publish is refused ("message size exceeds maximum
/// allowed", 10054) forever, which blocks every later change from reaching the KV too.
#[tokio::test]
async fn value_at_max_value_bytes_is_mirrored_and_does_not_block_the_mirror() -> anyhow::Result<()>
{
    let env = StateEnv::start(&[("max_value_bytes", "1000")]).await?;
    let state = env.state(Encoding::Json);
    state.scope_create("limit").await?;
    state.set("limit", "big", &"v".repeat(1000)).await?;
    state.set("limit", "after", "small").await?;
    common_state::wait_kv_converged(&state, &env.js, Duration::from_secs(10))
        .await
        .map_err(|e| e.context(format!("plantd-state stderr:\n{}", env.service.stderr())))?;
    Ok(())
}

/// PRODUCT BUG (reported): `list` pages are bounded by count only, so with the default limit
/// a scope holding a few large (valid) values cannot be listed: the reply is over the server's
/// max_payload and the service answers 413 to a request that did nothing wrong.
#[tokio::test]
async fn list_of_large_values_pages_within_max_payload() -> anyhow::Result<()> {
    let env = StateEnv::start(&[]).await?;
    let state = env.state(Encoding::Protobuf);
    state.scope_create("large").await?;
    let big = "v".repeat(plantd_state::validate::DEFAULT_MAX_VALUE_BYTES);
    for i in 0..5 {
        state.set("large", &format!("k{i}"), &big).await?;
    }
    let entries = state.list_all("large", "").await?;
    assert_eq!(entries.len(), 5);
    Ok(())
}
