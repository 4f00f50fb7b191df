//! No input can panic a decoder (issue #9, part 5): property-based fuzzing with proptest of
//! every request decoder (JSON and protobuf, through the shared codec, for every request
//! message of the echo, state and identity contracts), the KV key encoder/decoder (round
//! trip; arbitrary keys never panic), scope and subject validation, the watch token and JWT
//! decoding. Page tokens are fuzzed beside their private code
//! (`services/state/src/store/pagination.rs`).
//!
//! Each property runs proptest's default 256 cases in the suite (about a second in a debug
//! build); run it long with `PROPTEST_CASES=100000 cargo test -p plantd-tests --test
//! fuzz_inputs` (docs/testing.md). The fixed seeds below are inputs that once broke decoders
//! elsewhere or sit on boundaries; failures proptest finds are kept in
//! `tests/proptest-regressions/` (commit them with the fix).

use plantd_schemas::{
    echo::v1::{EchoRequest, SlowRequest},
    identity::v1 as id,
    state::v1 as st,
};
use plantd_shared::{ErrorCode, codec::Encoding, codec::WireMessage, subjects};
use plantd_state::kvkey;
use proptest::prelude::*;

/// Inputs worth trying every time, whatever the random ones are.
const SEEDS: &[&[u8]] = &[
    b"",
    b"{}",
    b"null",
    b"[]",
    b"{\"key\":",
    b"{\"key\":null}",
    b"{\"key\":1e999}",
    b"{\"version\":\"18446744073709551616\"}",
    b"{\"expected_version\":\"-1\"}",
    b"{\"limit\":4294967296}",
    b"{\"key\":\"\\ud800\"}",
    b"{\"a\":{\"b\":{\"c\":{\"d\":[[[[[[[[[[]]]]]]]]]]}}}}",
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    b"\x0a\xff\xff\xff\xff\x0f",
    b"\x08\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
    b"\x12\x00\x1a",
];

/// Decodes `payload` as `T` in both encodings: Ok, or a 400 — never a panic or another code.
fn decodes_or_400<T: WireMessage>(payload: &[u8]) -> Result<(), TestCaseError> {
    for encoding in [Encoding::Json, Encoding::Protobuf] {
        if let Err(err) = encoding.decode::<T>(payload) {
            prop_assert_eq!(
                err.code,
                ErrorCode::BadRequest,
                "{:?}: {}",
                encoding,
                err.message
            );
        }
    }
    Ok(())
}

/// Every request message of the contracts.
fn every_request(payload: &[u8]) -> Result<(), TestCaseError> {
    decodes_or_400::<EchoRequest>(payload)?;
    decodes_or_400::<SlowRequest>(payload)?;
    decodes_or_400::<st::GetRequest>(payload)?;
    decodes_or_400::<st::SetRequest>(payload)?;
    decodes_or_400::<st::DeleteRequest>(payload)?;
    decodes_or_400::<st::ListRequest>(payload)?;
    decodes_or_400::<st::WatchRequest>(payload)?;
    decodes_or_400::<st::ScopeCreateRequest>(payload)?;
    decodes_or_400::<st::ScopeDeleteRequest>(payload)?;
    decodes_or_400::<st::ScopeListRequest>(payload)?;
    decodes_or_400::<id::LoginRequest>(payload)?;
    decodes_or_400::<id::RefreshRequest>(payload)?;
    decodes_or_400::<id::LogoutRequest>(payload)?;
    decodes_or_400::<id::WhoamiRequest>(payload)?;
    decodes_or_400::<id::CheckPermissionRequest>(payload)?;
    decodes_or_400::<id::UserCreateRequest>(payload)?;
    decodes_or_400::<id::UserGetRequest>(payload)?;
    decodes_or_400::<id::UserUpdateRequest>(payload)?;
    decodes_or_400::<id::UserDeleteRequest>(payload)?;
    decodes_or_400::<id::UserListRequest>(payload)?;
    decodes_or_400::<id::OrgCreateRequest>(payload)?;
    decodes_or_400::<id::OrgGetRequest>(payload)?;
    decodes_or_400::<id::OrgListRequest>(payload)?;
    decodes_or_400::<id::RoleAssignRequest>(payload)?;
    decodes_or_400::<id::RoleUnassignRequest>(payload)?;
    decodes_or_400::<id::ServiceCredsRequest>(payload)?;
    Ok(())
}

/// JSON-shaped noise: objects with the contracts' field names and odd values, which random
/// bytes almost never produce.
fn json_like() -> impl Strategy<Value = Vec<u8>> {
    let names = prop::sample::select(vec![
        "key",
        "value",
        "version",
        "expected_version",
        "create_only",
        "prefix",
        "limit",
        "page_token",
        "token",
        "from",
        "from_revision",
        "subtree",
        "message",
        "delay_ms",
        "username",
        "password",
        "roles",
        "proof",
        "jwt",
    ]);
    let values = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("[1,\"x\",{}]".to_string()),
        Just("\"18446744073709551616\"".to_string()),
    ];
    prop::collection::vec((names, values), 0..6).prop_map(|fields| {
        let body: Vec<String> = fields
            .into_iter()
            .map(|(n, v)| format!("\"{n}\":{v}"))
            .collect();
        format!("{{{}}}", body.join(",")).into_bytes()
    })
}

#[test]
fn seeds_decode_or_are_a_400() {
    for seed in SEEDS {
        every_request(seed).unwrap_or_else(|e| panic!("{seed:?}: {e}"));
        let text = String::from_utf8_lossy(seed);
        let _ = kvkey::decode(&text);
        let _ = subjects::validate_scope(&text);
        let _ = plantd_identity::jwt::decode::<plantd_identity::claims::UserNats>(&text);
    }
}

/// Cases from `PROPTEST_CASES` (default 256); failures kept where a reviewer finds them.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "proptest-regressions/fuzz_inputs.txt",
            ),
        )),
        // Valid scopes are a small part of all strings; rejecting the rest is the point.
        max_global_rejects: u32::MAX,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_never_panic_a_request_decoder(payload in prop::collection::vec(any::<u8>(), 0..256)) {
        every_request(&payload)?;
    }

    #[test]
    fn json_shaped_input_never_panics_a_request_decoder(payload in json_like()) {
        every_request(&payload)?;
    }

    #[test]
    fn kv_keys_round_trip_for_every_valid_scope_and_key(
        scope_tokens in prop::collection::vec("[a-zA-Z0-9_-]{1,8}|[^.*> \\t\\r\\n]{1,6}", 1..4),
        key_chars in prop::collection::vec(any::<char>(), 1..40),
    ) {
        let scope = scope_tokens.join(".");
        let key: String = key_chars.into_iter().collect();
        prop_assume!(plantd_state::validate::scope(&scope).is_ok());
        let encoded = kvkey::encode(&scope, &key);
        prop_assert_eq!(kvkey::decode(&encoded), Ok((scope.clone(), key.clone())));
        // An encoded key is a valid NATS subject tail: no empty token, no wildcard, no space.
        for token in encoded.split('.') {
            prop_assert!(!token.is_empty() && !token.contains(['*', '>', ' ', '\t', '\r', '\n']), "{}", encoded);
        }
        prop_assert!(encoded.starts_with(kvkey::scope_filter(&scope).trim_end_matches('*')));
    }

    #[test]
    fn arbitrary_kv_keys_decode_or_fail_cleanly(text in any::<String>()) {
        if let Ok((scope, key)) = kvkey::decode(&text) {
            prop_assert_eq!(kvkey::encode(&scope, &key), text);
        }
    }

    #[test]
    fn scope_validation_never_panics_and_valid_scopes_make_valid_subjects(text in any::<String>()) {
        if subjects::validate_scope(&text).is_ok() {
            let subject = subjects::state::key_op("get", &text);
            prop_assert!(subject.split('.').all(|t| !t.is_empty() && t != "*" && t != ">"), "{}", subject);
            prop_assert!(!subject.contains(char::is_whitespace));
        }
    }

    #[test]
    fn jwt_decoding_never_panics(text in any::<String>(), parts in prop::collection::vec("[A-Za-z0-9_-]{0,64}", 0..5)) {
        let _ = plantd_identity::jwt::decode::<plantd_identity::claims::UserNats>(&text);
        let _ = plantd_identity::jwt::decode::<plantd_identity::claims::UserNats>(&parts.join("."));
    }
}
