//! Unit tests of `bootstrap::init`: the files, their modes and the trust chain they encode.

use std::os::unix::fs::PermissionsExt as _;

use plantd_shared::creds::Creds;

use super::*;
use crate::claims::UserNats;

/// The permissions in the user JWT of the creds file at `path`.
fn perms(path: &Path) -> crate::claims::Permissions {
    let user: Claims<UserNats> = jwt::decode(&Creds::read(path).unwrap().jwt).unwrap();
    user.nats.permissions
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_writes_a_consistent_trust_chain() {
    let dir = tempfile::tempdir().unwrap();
    let b = init(dir.path(), false).unwrap();

    let operator: Claims<OperatorNats> =
        jwt::decode(&fs::read_to_string(&b.operator_jwt).unwrap()).unwrap();
    assert_eq!(operator.sub, b.operator);
    assert_eq!(operator.iss, b.operator, "self-signed");
    assert_eq!(operator.nats.system_account, b.system_account.public_key);
    assert_eq!(
        operator.nats.signing_keys,
        vec![b.operator_signing_key.clone()]
    );

    for (account, limits) in [
        (&b.system_account, OperatorLimits::system()),
        (&b.plantd_account, OperatorLimits::plantd()),
    ] {
        let claims: Claims<AccountNats> =
            jwt::decode(&fs::read_to_string(&account.jwt_path).unwrap()).unwrap();
        assert_eq!(claims.sub, account.public_key);
        assert_eq!(
            claims.iss, b.operator_signing_key,
            "signed by the signing key"
        );
        assert_eq!(claims.nats.signing_keys, vec![account.signing_key.clone()]);
        assert_eq!(claims.nats.limits, limits);
    }

    let plantd: Claims<AccountNats> =
        jwt::decode(&fs::read_to_string(&b.plantd_account.jwt_path).unwrap()).unwrap();
    let sys: Claims<AccountNats> =
        jwt::decode(&fs::read_to_string(&b.system_account.jwt_path).unwrap()).unwrap();
    let creds = &b.creds;
    for (path, account) in [
        (&creds.admin, &plantd),
        (&creds.echo, &plantd),
        (&creds.metric, &plantd),
        (&creds.state, &plantd),
        (&creds.identity, &plantd),
        (&creds.bus, &plantd),
        (&creds.login, &plantd),
        (&creds.web_api, &plantd),
        (&creds.sys, &sys),
    ] {
        assert_eq!(mode(path), 0o600, "{}", path.display());
        let user: Claims<UserNats> = jwt::decode(&Creds::read(path).unwrap().jwt).unwrap();
        assert!(account.did_sign(&user), "{}", path.display());
        assert_ne!(user.iss, account.sub, "users are signed by a signing key");
        assert!(!user.nats.bearer_token);
        assert_eq!(user.nats.limits.subs, -1);
    }
}

#[test]
fn secrets_are_private_and_seeds_load() {
    let dir = tempfile::tempdir().unwrap();
    let b = init(dir.path(), false).unwrap();
    for sub in ["", "keys", "creds", "resolver"] {
        assert_eq!(mode(&b.auth_dir.join(sub)), 0o700, "{sub}");
    }
    for key in Key::ALL {
        assert_eq!(mode(&b.key_path(key)), 0o600, "{key:?}");
        b.load_key(key).unwrap();
    }
    assert_eq!(
        b.load_key(Key::PlantdSigning).unwrap().public_key(),
        b.plantd_account.signing_key
    );
    assert_eq!(b.load_key(Key::Operator).unwrap().public_key(), b.operator);
    // Nothing but the seeds dir and creds hold a seed.
    for file in [
        &b.operator_jwt,
        &b.server_config,
        &b.plantd_account.jwt_path,
    ] {
        let text = fs::read_to_string(file).unwrap();
        for key in Key::ALL {
            let seed = fs::read_to_string(b.key_path(key)).unwrap();
            assert!(!text.contains(seed.trim()), "{}", file.display());
        }
    }
}

#[test]
fn server_config_points_at_the_final_paths() {
    let dir = tempfile::tempdir().unwrap();
    let b = init(dir.path(), false).unwrap();
    let text = fs::read_to_string(&b.server_config).unwrap();
    let operator_line = format!("operator: \"{}\"", b.operator_jwt.display());
    assert!(text.contains(&operator_line), "{text}");
    assert!(text.contains(&format!("dir: \"{}\"", b.resolver_dir.display())));
    assert!(text.contains(&format!("system_account: {}", b.system_account.public_key)));
    for account in [&b.system_account, &b.plantd_account] {
        let jwt = fs::read_to_string(&account.jwt_path).unwrap();
        assert!(text.contains(&format!("{}: \"{jwt}\"", account.public_key)));
    }
    assert!(b.auth_dir.is_absolute());
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, [AUTH_DIR], "no staging dir left behind");
}

#[test]
fn refuses_to_overwrite_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let first = init(dir.path(), false).unwrap();
    let err = init(dir.path(), false).unwrap_err();
    assert!(matches!(err, BootstrapError::AlreadyInitialized { .. }));
    let unchanged = fs::read_to_string(&first.operator_jwt).unwrap();
    assert_eq!(
        jwt::decode::<OperatorNats>(&unchanged).unwrap().sub,
        first.operator
    );

    let second = init(dir.path(), true).unwrap();
    assert_ne!(second.operator, first.operator, "a new operator");
    let now = fs::read_to_string(&second.operator_jwt).unwrap();
    assert_eq!(
        jwt::decode::<OperatorNats>(&now).unwrap().sub,
        second.operator
    );
    let entries = fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(entries, 1, "old set-up and staging dir removed");
}

#[test]
fn login_and_identity_creds_carry_their_presets() {
    let dir = tempfile::tempdir().unwrap();
    let b = init(dir.path(), false).unwrap();
    assert_eq!(perms(&b.creds.login), permissions::login_only());
    assert_eq!(perms(&b.creds.web_api), permissions::web_api_bridge());
    assert_eq!(perms(&b.creds.identity), permissions::identity_service());
}

#[test]
fn open_finds_what_init_wrote_and_refuses_a_foreign_account() {
    let dir = tempfile::tempdir().unwrap();
    let b = init(dir.path(), false).unwrap();
    assert_eq!(Bootstrap::open(&b.auth_dir).unwrap(), b);

    // An account JWT signed by another operator is not part of this set-up.
    let rogue = KeyPair::new_operator();
    let claims = plantd_account_claims(&b.plantd_account.public_key, "AXXX");
    let forged = jwt::encode(&claims, &rogue).unwrap();
    fs::write(&b.plantd_account.jwt_path, forged).unwrap();
    let err = Bootstrap::open(&b.auth_dir).unwrap_err();
    assert!(matches!(err, BootstrapError::Corrupt { .. }), "{err}");
}

#[test]
fn refresh_reissues_only_service_creds_whose_permissions_changed() {
    let dir = tempfile::tempdir().unwrap();
    let b = init(dir.path(), false).unwrap();
    assert!(
        b.refresh_service_creds().unwrap().is_empty(),
        "fresh set-up"
    );

    // echo's creds as an older version issued them: replies only, no publish rights.
    let signing = b.load_key(Key::PlantdSigning).unwrap();
    let mut old = permissions::echo_service();
    old.publish.allow.clear();
    let user = issue_user("echo", old, &b.plantd_account.public_key, &signing).unwrap();
    fs::remove_file(&b.creds.echo).unwrap();
    write_new(&b.creds.echo, user.creds(), SECRET_FILE_MODE).unwrap();
    let state_before = fs::read_to_string(&b.creds.state).unwrap();

    assert_eq!(b.refresh_service_creds().unwrap(), ["echo"]);
    assert_eq!(perms(&b.creds.echo), permissions::echo_service());
    assert_eq!(mode(&b.creds.echo), SECRET_FILE_MODE);
    assert_eq!(
        fs::read_to_string(&b.creds.state).unwrap(),
        state_before,
        "untouched"
    );
    assert!(!b.creds.echo.with_extension("creds.new").exists());
    assert!(b.refresh_service_creds().unwrap().is_empty(), "now current");
}
