//! Unit tests of the claim shapes: every limit explicit, the right types and values.

use serde_json::{Value, json};

use super::*;

fn to_json<N: Serialize>(claims: &Claims<N>) -> Value {
    serde_json::to_value(claims).unwrap()
}

#[test]
fn user_claims_write_every_limit_and_no_bearer() {
    let perms = Permissions {
        publish: Permission::allow(["a.>"]),
        subscribe: Permission::allow(["b.>"]),
        resp: Some(ResponsePermission { max: 1, ttl: 5 }),
    };
    let user = Claims::new("u", "UXXX", UserNats::new(perms).issued_by("AACC"));
    let v = to_json(&user);
    let n = &v["nats"];
    assert_eq!(n["type"], "user");
    assert_eq!(n["version"], 2);
    for limit in ["subs", "data", "payload"] {
        assert_eq!(n[limit], -1, "{limit}");
    }
    assert_eq!(n["bearer_token"], false);
    assert_eq!(n["issuer_account"], "AACC");
    assert_eq!(n["pub"], json!({"allow": ["a.>"]}));
    assert_eq!(n["sub"], json!({"allow": ["b.>"]}));
    assert_eq!(n["resp"], json!({"max": 1, "ttl": 5}));
    assert!(v.get("type").is_none(), "a top-level type makes Go read v1");
    assert!(v.get("exp").is_none());
}

#[test]
fn user_without_signing_key_or_responses_omits_them() {
    let v = to_json(&Claims::new(
        "u",
        "U",
        UserNats::new(Permissions::default()),
    ));
    assert!(v["nats"].get("issuer_account").is_none());
    assert!(v["nats"].get("resp").is_none());
    assert_eq!(v["nats"]["pub"], json!({}));
}

#[test]
fn plantd_account_has_every_limit_jetstream_and_no_bearer() {
    let mut nats = AccountNats::new(OperatorLimits::plantd(), vec!["ASK".into()]);
    nats.revocations.insert("UREV".into(), 42);
    let v = to_json(&Claims::new("plantd", "AACC", nats));
    let n = &v["nats"];
    assert_eq!(n["type"], "account");
    assert_eq!(n["version"], 2);
    let l = &n["limits"];
    for limit in [
        "subs", "data", "payload", "imports", "exports", "conn", "leaf",
    ] {
        assert_eq!(l[limit], -1, "{limit}");
    }
    for limit in ["mem_storage", "disk_storage", "streams", "consumer"] {
        assert_eq!(l[limit], -1, "{limit}");
    }
    assert_eq!(l["wildcards"], true);
    assert_eq!(l["disallow_bearer"], true);
    assert_eq!(n["signing_keys"], json!(["ASK"]));
    assert_eq!(n["revocations"], json!({"UREV": 42}));
}

#[test]
fn system_account_has_jetstream_off_and_limits_explicit() {
    let v = to_json(&Claims::new(
        "SYS",
        "ASYS",
        AccountNats::new(OperatorLimits::system(), vec![]),
    ));
    let l = &v["nats"]["limits"];
    assert_eq!(l["conn"], -1);
    assert_eq!(l["mem_storage"], 0);
    assert_eq!(l["disk_storage"], 0);
    assert_eq!(l["disallow_bearer"], true);
}

#[test]
fn operator_claims_name_system_account_and_signing_keys() {
    let v = to_json(&Claims::new(
        "op",
        "OOP",
        OperatorNats::new("ASYS", vec!["OSK".into()]),
    ));
    let n = &v["nats"];
    assert_eq!(n["type"], "operator");
    assert_eq!(n["version"], 2);
    assert_eq!(n["system_account"], "ASYS");
    assert_eq!(n["signing_keys"], json!(["OSK"]));
    assert_eq!(n["strict_signing_key_usage"], true);
}

#[test]
fn omitted_limits_decode_as_zero_like_the_server_reads_them() {
    let user: UserNats = serde_json::from_value(json!({"type": "user", "version": 2})).unwrap();
    assert_eq!(user.limits, NatsLimits::default());
    assert_eq!(user.limits.subs, 0);
    let account: AccountNats =
        serde_json::from_value(json!({"type": "account", "version": 2, "limits": {}})).unwrap();
    assert_eq!(account.limits.account.conn, 0);
    assert_eq!(account.limits.jetstream.disk_storage, 0);
}

#[test]
fn did_sign_needs_issuer_account_and_a_listed_key() {
    let account = Claims::new(
        "a",
        "AACC",
        AccountNats::new(OperatorLimits::plantd(), vec!["ASK".into()]),
    );
    let mut user = Claims::new("u", "U", UserNats::new(Permissions::default()));
    user.iss = "ASK".into();
    assert!(
        !account.did_sign(&user),
        "signing key without issuer_account"
    );
    user.nats.issuer_account = Some("AACC".into());
    assert!(account.did_sign(&user));
    user.iss = "AOTHER".into();
    assert!(!account.did_sign(&user), "unlisted signing key");
    user.iss = "AACC".into();
    assert!(account.did_sign(&user), "the account's own key");
}
