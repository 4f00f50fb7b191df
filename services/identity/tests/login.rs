//! End-to-end: logging in through the login-only credential, using the issued JWT at the
//! server, and the session endpoints with user proofs.

mod common;

use std::time::Instant;

use common::{Hub, REQUEST, server_error, service_error};
use nkeys::KeyPair;
use plantd_identity::claims::{Claims, UserNats};
use plantd_identity::{jwt, proof};
use plantd_schemas::identity::v1::{
    CheckPermissionRequest, CheckPermissionResponse, RefreshRequest, RefreshResponse,
    WhoamiRequest, WhoamiResponse,
};
use plantd_shared::call;
use plantd_shared::codec::Encoding;
use plantd_shared::{ErrorCode, subjects::identity};

#[tokio::test]
async fn login_issues_a_working_scoped_jwt_sealed_to_the_client() {
    let hub = Hub::start().await;
    hub.create_user("alice", "correct horse", &[("viewer", "site1.>")])
        .await;
    let alice = hub.login("alice", "correct horse").await.unwrap();

    let grant = &alice.grant;
    assert_eq!(grant.username, "alice");
    assert_eq!(grant.inbox_prefix, "_INBOX_alice");
    assert_eq!(grant.roles.len(), 1);
    assert_eq!(
        (grant.roles[0].role.as_str(), grant.roles[0].scope.as_str()),
        ("viewer", "site1")
    );
    let claims: Claims<UserNats> = jwt::decode(&grant.jwt).unwrap();
    assert_eq!(
        claims.sub,
        alice.key.public_key(),
        "bound to the client's key"
    );
    assert_eq!(claims.iss, hub.setup.plantd_account.signing_key);
    assert!(!claims.nats.bearer_token);
    let ttl = claims.exp.unwrap() - claims.iat;
    assert_eq!(ttl, 12 * 3600, "default ttl");
    assert_eq!(grant.expires.as_ref().unwrap().seconds, claims.exp.unwrap());

    // The JWT works at the server, with the inbox prefix, for what the role allows.
    let (client, mut events) = alice.connect().await.unwrap();
    let whoami = identity::op("whoami");
    let me: WhoamiResponse = call::request(
        &client,
        &whoami,
        &WhoamiRequest {
            proof: Some(alice.proof(&whoami)),
        },
        Encoding::Protobuf,
        REQUEST,
    )
    .await
    .unwrap();
    assert_eq!(me.username, "alice");
    assert_eq!(me.public_key, alice.key.public_key());
    assert_eq!(me.inbox_prefix, "_INBOX_alice");
    assert_eq!(me.expires.unwrap().seconds, claims.exp.unwrap());

    // An admin-only subject is refused by the server itself.
    client
        .publish(identity::admin("user.list"), "{}".into())
        .await
        .unwrap();
    let text = server_error(&mut events, "permissions violation for publish").await;
    assert!(text.contains("plantd.identity.admin.user.list"), "{text}");
    // Another person's inbox cannot be listened to.
    let _sub = client.subscribe("_INBOX_bob.>").await.unwrap();
    server_error(&mut events, "permissions violation for subscription").await;
}

#[tokio::test]
async fn login_only_credential_can_do_nothing_but_log_in() {
    let hub = Hub::start().await;
    let (client, mut events) = common::connect_as(
        &hub.setup.creds.login,
        plantd_identity::permissions::LOGIN_INBOX_PREFIX,
        &hub.server.url(),
    )
    .await
    .unwrap();
    // Control: a login request is delivered and answered (401: no such user).
    let err = hub
        .login_with(&client, "nobody", "password1", &KeyPair::new_user())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unauthorized);
    client
        .publish(identity::op("whoami"), "{}".into())
        .await
        .unwrap();
    server_error(
        &mut events,
        "permissions violation for publish to \"plantd.identity.whoami\"",
    )
    .await;
    let _sub = client.subscribe("_INBOX.>").await.unwrap();
    server_error(
        &mut events,
        "permissions violation for subscription to \"_inbox.>\"",
    )
    .await;
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let hub = Hub::start().await;
    hub.create_user("alice", "correct horse", &[]).await;
    let client = hub.login_client().await;
    let mut timings = Vec::new();
    for (user, password) in [("alice", "wrong password"), ("mallory", "wrong password")] {
        let mut durations = Vec::new();
        let mut messages = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            let err = hub
                .login_with(&client, user, password, &KeyPair::new_user())
                .await
                .unwrap_err();
            durations.push(started.elapsed());
            assert_eq!(err.code, ErrorCode::Unauthorized, "{user}");
            messages.push(err.message);
        }
        durations.sort();
        println!(
            "{user}: login refused in {durations:?} (median {:?})",
            durations[1]
        );
        timings.push((durations[1], messages));
    }
    let ((known, known_messages), (unknown, unknown_messages)) = (&timings[0], &timings[1]);
    assert_eq!(known_messages, unknown_messages, "the same 401 message");
    assert_eq!(known_messages[0], "invalid username or password");
    // Both paths run one argon2id verification; allow for a busy machine.
    let ratio = known.as_secs_f64() / unknown.as_secs_f64();
    assert!(
        (0.33..3.0).contains(&ratio),
        "known {known:?} vs unknown {unknown:?}"
    );
}

#[tokio::test]
async fn login_attempts_are_rate_limited_per_user_and_per_client() {
    let hub = Hub::start_with(|c| {
        c.login_rate_per_user = 3;
        c.login_rate_per_client = 4;
    })
    .await;
    hub.create_user("alice", "correct horse", &[]).await;
    hub.create_user("bob", "battery staple", &[]).await;
    let client = hub.login_client().await;
    for _ in 0..3 {
        let err = hub
            .login_with(&client, "alice", "guess", &KeyPair::new_user())
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Unauthorized);
    }
    // Even the right password is refused now: the limit is on attempts.
    let err = hub
        .login_with(&client, "alice", "correct horse", &KeyPair::new_user())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::TooManyRequests, "{}", err.message);
    // Unknown users are limited the same way (a 429 reveals nothing).
    for _ in 0..3 {
        let _ = hub
            .login_with(&client, "ghost", "guess", &KeyPair::new_user())
            .await;
    }
    let err = hub
        .login_with(&client, "ghost", "guess", &KeyPair::new_user())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::TooManyRequests);
    // Bob is unaffected; one client key is limited across usernames.
    let key = KeyPair::new_user();
    hub.login_with(&client, "bob", "battery staple", &key)
        .await
        .unwrap();
    for user in ["u1", "u2", "u3"] {
        let err = hub
            .login_with(&client, user, "guess", &key)
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Unauthorized);
    }
    let err = hub
        .login_with(&client, "u4", "guess", &key)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::TooManyRequests);
    assert!(err.message.contains("client"), "{}", err.message);
}

#[tokio::test]
async fn refresh_renews_the_jwt_for_the_same_key() {
    let hub = Hub::start().await;
    hub.create_user("alice", "correct horse", &[("operator", "site1")])
        .await;
    let alice = hub.login("alice", "correct horse").await.unwrap();
    let (client, _events) = alice.connect().await.unwrap();
    let refresh = identity::op("refresh");
    let reply: RefreshResponse = call::request(
        &client,
        &refresh,
        &RefreshRequest {
            proof: Some(alice.proof(&refresh)),
        },
        Encoding::Json,
        REQUEST,
    )
    .await
    .unwrap();
    let grant = reply.grant.unwrap();
    let old: Claims<UserNats> = jwt::decode(&alice.grant.jwt).unwrap();
    let new: Claims<UserNats> = jwt::decode(&grant.jwt).unwrap();
    assert_eq!(new.sub, old.sub, "the same key");
    assert!(new.iat >= old.iat && new.exp >= old.exp);
    let creds = hub.write_creds("alice-refreshed", &grant.jwt, &alice.key);
    let (renewed, _) = common::connect_as(&creds, &grant.inbox_prefix, &hub.server.url())
        .await
        .expect("the refreshed jwt is admitted");
    renewed.flush().await.unwrap();
}

#[tokio::test]
async fn bad_proofs_are_refused_with_401() {
    let hub = Hub::start().await;
    hub.create_user("alice", "correct horse", &[("viewer", "")])
        .await;
    hub.create_user("root", "correct horse", &[("admin", "")])
        .await;
    let alice = hub.login("alice", "correct horse").await.unwrap();
    let (client, _events) = alice.connect().await.unwrap();
    let whoami = identity::op("whoami");
    let ask = |proof| {
        let client = client.clone();
        let whoami = whoami.clone();
        async move {
            call::request::<_, WhoamiResponse>(
                &client,
                &whoami,
                &WhoamiRequest { proof },
                Encoding::Json,
                REQUEST,
            )
            .await
            .map_err(service_error)
        }
    };
    // Control: a good proof.
    ask(Some(alice.proof(&whoami))).await.unwrap();
    let now = proof::now_ms();
    let cases = [
        ("no proof", None),
        (
            "wrong key",
            Some(proof::sign(
                &alice.grant.jwt,
                &KeyPair::new_user(),
                &whoami,
                now,
            )),
        ),
        (
            "stale timestamp",
            Some(proof::sign(
                &alice.grant.jwt,
                &alice.key,
                &whoami,
                now - 10 * 60_000,
            )),
        ),
        (
            "future timestamp",
            Some(proof::sign(
                &alice.grant.jwt,
                &alice.key,
                &whoami,
                now + 10 * 60_000,
            )),
        ),
        (
            "made for another subject",
            Some(alice.proof(&identity::op("logout"))),
        ),
        (
            "tampered jwt",
            Some(proof::sign(
                &alice.grant.jwt.replace('.', ".x"),
                &alice.key,
                &whoami,
                now,
            )),
        ),
    ];
    for (what, proof) in cases {
        let err = ask(proof).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Unauthorized, "{what}: {}", err.message);
        assert_eq!(err.field.as_deref(), Some("proof"), "{what}");
    }

    // check-permission: the caller's own rights, and only admins may ask about others.
    let check = identity::op("check-permission");
    let ask_check = |subject: &str, username: &str| {
        let req = CheckPermissionRequest {
            proof: Some(alice.proof(&check)),
            username: username.into(),
            subject: subject.into(),
            action: "publish".into(),
        };
        let client = client.clone();
        let check = check.clone();
        async move {
            call::request::<_, CheckPermissionResponse>(
                &client,
                &check,
                &req,
                Encoding::Json,
                REQUEST,
            )
            .await
            .map_err(service_error)
        }
    };
    assert!(
        ask_check("plantd.state.get.site9.x", "")
            .await
            .unwrap()
            .allowed
    );
    let denied = ask_check("plantd.state.set.site9", "").await.unwrap();
    assert!(!denied.allowed, "{}", denied.reason);
    let err = ask_check("plantd.state.set.site9", "root")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
}
