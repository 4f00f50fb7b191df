//! End-to-end: revocation at the server (logout, disable, role change), the account JWT
//! identity pushes, and scoped KV watch permissions.

mod common;

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use common::{Hub, REQUEST, assert_refused, disconnected, server_error};
use futures::StreamExt as _;
use plantd_identity::claims::{AccountNats, Claims, OperatorLimits};
use plantd_identity::{jwt, revocation};
use plantd_schemas::identity::v1::{
    LogoutRequest, LogoutResponse, RoleAssignRequest, RoleBinding, User, UserUpdateRequest,
};
use plantd_shared::call;
use plantd_shared::codec::Encoding;
use plantd_shared::{ErrorCode, subjects::identity};

/// The account JWT the server holds now.
async fn server_account(hub: &Hub) -> Claims<AccountNats> {
    let sys = plantd_shared::creds::auth_options(hub.setup.creds.sys.clone())
        .connect(hub.server.url())
        .await
        .unwrap();
    let subject = revocation::claims_lookup(&hub.setup.plantd_account.public_key);
    let reply = sys.request(subject, "".into()).await.unwrap();
    jwt::decode(std::str::from_utf8(&reply.payload).unwrap()).unwrap()
}

#[tokio::test]
async fn logout_closes_the_connection_and_the_creds_stay_refused() {
    let mut hub = Hub::start().await;
    hub.create_user("alice", "correct horse", &[("operator", "site1")])
        .await;
    let alice = hub.login("alice", "correct horse").await.unwrap();
    let (client, _events) = alice.connect().await.unwrap();
    // Control: a second session of the same user survives alice's logout.
    let other = hub.login("alice", "correct horse").await.unwrap();
    let (other_client, _other_events) = other.connect().await.unwrap();

    let logout = identity::op("logout");
    let reply: LogoutResponse = call::request(
        &client,
        &logout,
        &LogoutRequest {
            proof: Some(alice.proof(&logout)),
        },
        Encoding::Json,
        REQUEST,
    )
    .await
    .expect("the logout reply arrives before the server closes the connection");
    assert!(reply.revoked);
    disconnected(&client).await;
    assert_refused(alice.connect().await, "the logged-out creds");
    let account = server_account(&hub).await;
    assert!(
        account
            .nats
            .revocations
            .contains_key(&alice.key.public_key())
    );
    assert!(
        !account
            .nats
            .revocations
            .contains_key(&other.key.public_key())
    );
    other_client
        .flush()
        .await
        .expect("the other session is untouched");
    assert_eq!(
        other_client.connection_state(),
        async_nats::connection::State::Connected
    );

    // The revocation is in the server's resolver store: a restart does not undo it, even
    // with identity stopped and the older bootstrap JWT preloaded.
    hub.stop().await;
    hub.server.restart().await.unwrap();
    assert_refused(
        alice.connect().await,
        "the logged-out creds after a restart",
    );
    other
        .connect()
        .await
        .expect("the other session after a restart");
}

#[tokio::test]
async fn disabling_a_user_revokes_it_at_the_server() {
    let hub = Hub::start().await;
    hub.create_user("alice", "correct horse", &[("viewer", "")])
        .await;
    let alice = hub.login("alice", "correct horse").await.unwrap();
    let (client, _events) = alice.connect().await.unwrap();
    let disable = UserUpdateRequest {
        username: "alice".into(),
        disabled: Some(true),
        ..UserUpdateRequest::default()
    };
    let user: User = hub.admin_call("user.update", &disable).await.unwrap();
    assert!(user.disabled);
    // The reply came after the server confirmed: the connection goes at once.
    disconnected(&client).await;
    assert_refused(alice.connect().await, "a disabled user's creds");
    let err = hub.login("alice", "correct horse").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden, "{}", err.message);
    let wrong = hub.login("alice", "wrong password").await.unwrap_err();
    assert_eq!(
        wrong.code,
        ErrorCode::Unauthorized,
        "no hint without the password"
    );

    let enable = UserUpdateRequest {
        username: "alice".into(),
        disabled: Some(false),
        ..UserUpdateRequest::default()
    };
    let _: User = hub.admin_call("user.update", &enable).await.unwrap();
    let again = hub.login("alice", "correct horse").await.unwrap();
    again
        .connect()
        .await
        .expect("enabled again: a new login works");
}

#[tokio::test]
async fn a_role_change_revokes_and_a_new_login_gets_the_new_rights() {
    let hub = Hub::start().await;
    hub.create_user("bob", "battery staple", &[("viewer", "site1")])
        .await;
    let bob = hub.login("bob", "battery staple").await.unwrap();
    let (client, mut events) = bob.connect().await.unwrap();
    client
        .publish("plantd.state.set.site1", "{}".into())
        .await
        .unwrap();
    server_error(
        &mut events,
        "permissions violation for publish to \"plantd.state.set.site1\"",
    )
    .await;

    let assign = RoleAssignRequest {
        username: "bob".into(),
        binding: Some(RoleBinding {
            role: "operator".into(),
            scope: "site1".into(),
        }),
    };
    let user: User = hub.admin_call("role.assign", &assign).await.unwrap();
    assert_eq!(user.roles.len(), 2);
    disconnected(&client).await;
    assert_refused(bob.connect().await, "creds with the old permissions");

    let bob = hub.login("bob", "battery staple").await.unwrap();
    let (client, mut events) = bob.connect().await.unwrap();
    let mut sub = hub.admin.subscribe("plantd.state.set.site1").await.unwrap();
    hub.admin.flush().await.unwrap();
    // Publish until the admin hears it (bounded): right after the account update a first
    // publish is sometimes silently dropped by nats-server 2.15.1 for a moment (seen in ~1 of
    // 3 runs, never after ~1 s; no permissions violation is reported for it). What this test
    // checks is the new rights, so it must not hinge on that one message.
    let deadline = tokio::time::Instant::now() + common::EVENT_WAIT;
    let delivered = loop {
        client
            .publish("plantd.state.set.site1", "{}".into())
            .await
            .unwrap();
        client.flush().await.unwrap();
        match tokio::time::timeout(std::time::Duration::from_millis(200), sub.next()).await {
            Ok(message) => break message.is_some(),
            Err(_) if tokio::time::Instant::now() < deadline => continue,
            Err(_) => break false,
        }
    };
    assert!(delivered, "the operator publish reached the server");
    while let Ok(event) = events.try_recv() {
        assert!(!format!("{event:?}").contains("iolation"), "{event:?}");
    }

    let unknown = RoleAssignRequest {
        username: "bob".into(),
        binding: Some(RoleBinding {
            role: "superuser".into(),
            scope: String::new(),
        }),
    };
    let err = hub
        .admin_call::<_, User>("role.assign", &unknown)
        .await
        .unwrap_err();
    assert_eq!(common::service_error(err).code, ErrorCode::BadRequest);
}

#[tokio::test]
async fn pushed_account_keeps_limits_signing_key_and_grows_iat() {
    let hub = Hub::start().await;
    let before = server_account(&hub).await;
    hub.create_user("alice", "correct horse", &[]).await;
    let alice = hub.login("alice", "correct horse").await.unwrap();
    let (client, _events) = alice.connect().await.unwrap();
    let delete = plantd_schemas::identity::v1::UserDeleteRequest {
        username: "alice".into(),
    };
    let deleted: plantd_schemas::identity::v1::UserDeleteResponse =
        hub.admin_call("user.delete", &delete).await.unwrap();
    assert!(deleted.existed);
    disconnected(&client).await;
    let after = server_account(&hub).await;
    assert!(after.iat > before.iat, "each push is newer");
    assert_eq!(after.nats.limits, OperatorLimits::plantd());
    assert_eq!(
        after.nats.signing_keys,
        vec![hub.setup.plantd_account.signing_key.clone()]
    );
    assert_eq!(after.iss, hub.setup.operator_signing_key);
    assert!(after.nats.revocations.contains_key(&alice.key.public_key()));
    // Service creds signed by the same signing key still work, and JetStream is still on.
    let echo = plantd_shared::creds::auth_options(hub.setup.creds.state.clone())
        .connect(hub.server.url())
        .await
        .expect("service creds survive account updates");
    jetstream::new(echo)
        .query_account()
        .await
        .expect("jetstream still enabled");
}

/// A viewer has no JetStream API rights at all (issue #9: a push consumer's deliver subject
/// is not checked by the server, and API replies go to any reply subject), and hears watch
/// deliveries only of its own scope (`$PLANTD.watch.site1.>`); watches are created for it by
/// the state service (tests/tests/identity_matrix.rs drives them end to end).
#[tokio::test]
async fn a_viewer_has_no_jetstream_rights_and_hears_only_its_scopes_watches() {
    let hub = Hub::start().await;
    let admin_js = jetstream::new(hub.admin.clone());
    let bucket = admin_js
        .create_key_value(kv::Config {
            bucket: "plantd-state".into(),
            history: 5,
            ..kv::Config::default()
        })
        .await
        .unwrap();
    bucket.put("site1.k", "one".into()).await.unwrap();
    hub.create_user("vera", "correct horse", &[("viewer", "site1")])
        .await;
    let vera = hub.login("vera", "correct horse").await.unwrap();
    let (client, mut events) = vera.connect().await.unwrap();

    // Every JetStream API call, including the consumer create of the attack, is refused.
    let attack = serde_json::json!({
        "stream_name": "KV_plantd-state",
        "config": {
            "name": "attack",
            "deliver_subject": "plantd.state.set.site2",
            "filter_subject": "$KV.plantd-state.site1.>",
            "ack_policy": "none",
        },
    });
    for (subject, body) in [
        (
            "$JS.API.CONSUMER.CREATE.KV_plantd-state.attack.$KV.plantd-state.site1.>",
            attack.to_string(),
        ),
        ("$JS.API.STREAM.INFO.KV_plantd-state", String::new()),
        (
            "$JS.API.DIRECT.GET.KV_plantd-state.$KV.plantd-state.site1.k",
            String::new(),
        ),
    ] {
        let answered =
            tokio::time::timeout(Duration::from_secs(2), client.request(subject, body.into()))
                .await;
        assert!(
            !matches!(answered, Ok(Ok(_))),
            "{subject} was answered for a viewer"
        );
        server_error(
            &mut events,
            &format!(
                "permissions violation for publish to \"{}\"",
                subject.to_lowercase()
            ),
        )
        .await;
    }
    let infos = admin_js.get_stream("KV_plantd-state").await.unwrap();
    assert!(
        infos.consumer_info("attack").await.is_err(),
        "no consumer was created"
    );

    // Watch deliveries: its scope's subject is open to it, another scope's is not.
    let mut heard = client.subscribe("$PLANTD.watch.site1.t").await.unwrap();
    client.flush().await.unwrap();
    let publisher = hub.admin.clone();
    let got = tokio::time::timeout(common::EVENT_WAIT, async {
        loop {
            publisher
                .publish("$PLANTD.watch.site1.t", "x".into())
                .await
                .unwrap();
            if let Ok(Some(m)) =
                tokio::time::timeout(Duration::from_millis(100), heard.next()).await
            {
                return m;
            }
        }
    })
    .await
    .expect("a viewer of site1 hears site1's watch deliveries");
    assert_eq!(got.payload.as_ref(), b"x");
    let _other = client.subscribe("$PLANTD.watch.site2.t").await.unwrap();
    server_error(
        &mut events,
        "permissions violation for subscription to \"$plantd.watch.site2.t\"",
    )
    .await;
}
