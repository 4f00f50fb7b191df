//! Unit tests of the store: revocation semantics, role changes, pruning.

use super::*;
use crate::store::sessions::Session;
use crate::store::users::UserUpdate;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("identity.db")).unwrap();
    (dir, store)
}

fn session(jti: &str, user: &str, key: &str, issued_at: i64) -> Session {
    Session {
        jti: jti.into(),
        username: user.into(),
        public_key: key.into(),
        issued_at,
        expires_at: issued_at + 100,
        revoked: false,
    }
}

#[tokio::test]
async fn users_orgs_and_bindings_round_trip_with_conflicts() {
    let (_dir, store) = store();
    let err = store
        .run(|tx| users::create_user(tx, "alice", "h", Some("acme"), &[], 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "unknown org: {err}");
    store
        .run(|tx| users::create_org(tx, "acme", 1))
        .await
        .unwrap();
    let err = store
        .run(|tx| users::create_org(tx, "acme", 2))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)));
    let roles = vec![("viewer".to_string(), "site1".to_string())];
    let alice = store
        .run(move |tx| users::create_user(tx, "alice", "h", Some("acme"), &roles, 5))
        .await
        .unwrap();
    assert_eq!(alice.org.as_deref(), Some("acme"));
    assert_eq!(alice.roles, [("viewer".into(), "site1".into())]);
    let err = store
        .run(|tx| users::create_user(tx, "alice", "h", None, &[], 6))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)));
    let listed = store.run(users::list_users).await.unwrap();
    assert_eq!(listed, [alice]);
}

#[tokio::test]
async fn revocation_follows_the_servers_iat_rule() {
    let (_dir, store) = store();
    store
        .run(|tx| {
            users::create_user(tx, "alice", "h", None, &[], 1)?;
            sessions::record(tx, &session("j1", "alice", "UK1", 10))
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .run(|tx| sessions::revoked_at(tx, "UK1"))
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .run(|tx| sessions::revoke_key(tx, "UK1", 10))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .run(|tx| sessions::revoked_at(tx, "UK1"))
            .await
            .unwrap(),
        Some(10)
    );
    let s = store
        .run(|tx| sessions::by_jti(tx, "j1"))
        .await
        .unwrap()
        .unwrap();
    assert!(s.revoked, "iat 10 <= revoked 10");
    // Revoking again at the same time changes nothing; a revoked key gets no new session.
    assert!(
        !store
            .run(|tx| sessions::revoke_key(tx, "UK1", 10))
            .await
            .unwrap()
    );
    let err = store
        .run(|tx| sessions::record(tx, &session("j2", "alice", "UK1", 11)))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let revs = store.run(sessions::revocations).await.unwrap();
    assert_eq!(revs.get("UK1"), Some(&10));
}

#[tokio::test]
async fn a_key_belongs_to_one_user() {
    let (_dir, store) = store();
    store
        .run(|tx| sessions::record(tx, &session("j1", "alice", "UK1", 10)))
        .await
        .unwrap();
    store
        .run(|tx| sessions::record(tx, &session("j2", "alice", "UK1", 11)))
        .await
        .expect("the same user may refresh the same key");
    let err = store
        .run(|tx| sessions::record(tx, &session("j3", "bob", "UK1", 12)))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)));
}

#[tokio::test]
async fn password_disable_role_and_delete_revoke_live_sessions_only() {
    let (_dir, store) = store();
    store
        .run(|tx| {
            users::create_user(tx, "alice", "h", None, &[], 1)?;
            sessions::record(tx, &session("live", "alice", "ULIVE", 100))?;
            sessions::record(tx, &session("old", "alice", "UOLD", 1))
        })
        .await
        .unwrap();
    // Enabling, or changing only the org, revokes nothing.
    let update = UserUpdate {
        disabled: Some(false),
        ..UserUpdate::default()
    };
    let (_, revoked) = store
        .run(move |tx| users::update_user(tx, "alice", &update, 150))
        .await
        .unwrap();
    assert_eq!(revoked, 0);
    // A new binding revokes the live key (exp 200), not the expired one (exp 101 < now 150).
    let (user, revoked) = store
        .run(|tx| users::assign_role(tx, "alice", "viewer", "", 150))
        .await
        .unwrap();
    assert_eq!((user.roles.len(), revoked), (1, 1));
    let revs = store.run(sessions::revocations).await.unwrap();
    assert_eq!(revs.keys().collect::<Vec<_>>(), ["ULIVE"]);
    // The same binding again: nothing changes.
    let (_, revoked) = store
        .run(|tx| users::assign_role(tx, "alice", "viewer", "", 160))
        .await
        .unwrap();
    assert_eq!(revoked, 0);
    let err = store
        .run(|tx| users::unassign_role(tx, "alice", "operator", "", 160))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)));
    // Delete: the user and its sessions go, the revocation stays.
    store
        .run(|tx| sessions::record(tx, &session("again", "alice", "UNEW", 160)))
        .await
        .unwrap();
    let (existed, revoked) = store
        .run(|tx| users::delete_user(tx, "alice", 170))
        .await
        .unwrap();
    assert_eq!((existed, revoked), (true, 1));
    assert!(
        store
            .run(|tx| sessions::by_jti(tx, "again"))
            .await
            .unwrap()
            .is_none()
    );
    let revs = store.run(sessions::revocations).await.unwrap();
    assert_eq!(revs.get("UNEW"), Some(&170));
    let (existed, _) = store
        .run(|tx| users::delete_user(tx, "alice", 180))
        .await
        .unwrap();
    assert!(!existed);
}

#[tokio::test]
async fn prune_keeps_revocations_until_their_jwts_expire() {
    let (_dir, store) = store();
    store
        .run(|tx| {
            sessions::record(tx, &session("j1", "alice", "UK1", 10))?;
            sessions::revoke_key(tx, "UK1", 20)?;
            // Service creds: no session, never expire.
            sessions::revoke_key(tx, "USVC", 20)
        })
        .await
        .unwrap();
    // UK1's JWT expires at 110: kept while 110 >= now - margin.
    assert_eq!(
        store.run(|tx| sessions::prune(tx, 150, 60)).await.unwrap(),
        0
    );
    assert_eq!(
        store.run(|tx| sessions::prune(tx, 171, 60)).await.unwrap(),
        1
    );
    let revs = store.run(sessions::revocations).await.unwrap();
    assert_eq!(revs.keys().collect::<Vec<_>>(), ["USVC"]);
}
