//! The identity endpoints, wired to the store, the issuer and the account updater.
//!
//! One file per family: [`login`] (the only endpoint the login-only credential reaches),
//! [`session`] (refresh, logout, whoami, check-permission: a person acting with a
//! [`UserProof`](plantd_schemas::identity::v1::UserProof)), [`users`] and [`orgs`] (admin
//! operations on `plantd.identity.admin.>`, guarded by subject permission: only admins may
//! publish there) and [`creds`] (service and edge creds). This module holds what they share:
//! the [`App`], name checks and the mapping of store records to wire messages.

mod creds;
mod login;
mod orgs;
mod session;
mod users;

use std::sync::Arc;
use std::time::Duration;

use pbjson_types::Timestamp;
use plantd_schemas::identity::v1::User;
use plantd_shared::{
    ErrorCode, ServiceError, app_endpoint,
    micro::ServiceBuilder,
    subjects::identity::{admin, op},
};

use crate::grant::Issuer;
use crate::password::Passwords;
use crate::proof::ProofVerifier;
use crate::ratelimit::RateLimiter;
use crate::revocation::AccountUpdater;
use crate::roles::Binding;
use crate::store::{Store, StoreError, users::UserRecord};

/// Longest user, org or creds name.
pub const MAX_NAME_LEN: usize = 64;

/// Names no person may take: `login` owns the shared `_INBOX_login` inbox.
pub const RESERVED_USERNAMES: &[&str] = &[crate::permissions::LOGIN_USER];

/// What every handler shares.
pub struct App {
    /// The database.
    pub store: Store,
    /// argon2id hashing.
    pub passwords: Passwords,
    /// Signs person JWTs and seals grants.
    pub issuer: Issuer,
    /// Checks user proofs.
    pub verifier: ProofVerifier,
    /// Pushes revocations to the server.
    pub updater: AccountUpdater,
    /// Login attempts per username.
    pub user_limiter: RateLimiter,
    /// Login attempts per client key.
    pub client_limiter: RateLimiter,
    /// Shortest password accepted.
    pub min_password_len: usize,
    /// The state KV bucket (for creds presets).
    pub state_bucket: String,
    /// How long an admin change waits for the server to confirm its revocations.
    pub revocation_wait: Duration,
}

impl App {
    /// After a committed change that revoked `revoked` keys: push, and wait for the server.
    async fn push_revocations(&self, revoked: usize) -> Result<(), ServiceError> {
        if revoked == 0 {
            return Ok(());
        }
        let generation = self.updater.request();
        self.updater.wait(generation, self.revocation_wait).await
    }
}

/// Adds every identity endpoint to `builder`.
pub fn register(builder: ServiceBuilder, app: Arc<App>) -> ServiceBuilder {
    let b = app_endpoint!(builder, &app, "login", op("login"), login::login);
    let b = app_endpoint!(b, &app, "refresh", op("refresh"), session::refresh);
    let b = app_endpoint!(b, &app, "logout", op("logout"), session::logout);
    let b = app_endpoint!(b, &app, "whoami", op("whoami"), session::whoami);
    let b = app_endpoint!(
        b,
        &app,
        "check-permission",
        op("check-permission"),
        session::check
    );
    let b = app_endpoint!(b, &app, "user-create", admin("user.create"), users::create);
    let b = app_endpoint!(b, &app, "user-get", admin("user.get"), users::get);
    let b = app_endpoint!(b, &app, "user-update", admin("user.update"), users::update);
    let b = app_endpoint!(b, &app, "user-delete", admin("user.delete"), users::delete);
    let b = app_endpoint!(b, &app, "user-list", admin("user.list"), users::list);
    let b = app_endpoint!(b, &app, "org-create", admin("org.create"), orgs::create);
    let b = app_endpoint!(b, &app, "org-get", admin("org.get"), orgs::get);
    let b = app_endpoint!(b, &app, "org-list", admin("org.list"), orgs::list);
    let b = app_endpoint!(b, &app, "role-assign", admin("role.assign"), orgs::assign);
    let b = app_endpoint!(
        b,
        &app,
        "role-unassign",
        admin("role.unassign"),
        orgs::unassign
    );
    let b = app_endpoint!(b, &app, "account", admin("account"), creds::account);
    app_endpoint!(b, &app, "creds", admin("creds"), creds::issue)
}

/// Maps a store error to the wire.
pub(crate) fn store_error(err: StoreError) -> ServiceError {
    let code = match err {
        StoreError::NotFound(_) => ErrorCode::NotFound,
        StoreError::Conflict(_) => ErrorCode::Conflict,
        StoreError::Internal(_) => ErrorCode::Internal,
    };
    ServiceError::new(code, err.to_string())
}

/// Checks a user, org or creds name: 1–64 of `[a-z0-9_-]`, starting with a letter or digit.
/// Lowercase only, so `Alice` and `alice` cannot be two people, and every character is valid
/// in a subject token (a username becomes the inbox prefix `_INBOX_<username>`).
pub(crate) fn check_name(field: &str, name: &str) -> Result<(), ServiceError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if valid {
        Ok(())
    } else {
        Err(ServiceError::invalid_field(
            field,
            format!(
                "{field} must be 1-{MAX_NAME_LEN} characters of a-z, 0-9, '_' or '-', \
                 starting with a letter or digit"
            ),
        ))
    }
}

/// [`check_name`] plus the reserved names.
pub(crate) fn check_username(name: &str) -> Result<(), ServiceError> {
    check_name("username", name)?;
    if RESERVED_USERNAMES.contains(&name) {
        return Err(ServiceError::invalid_field(
            "username",
            format!("username {name:?} is reserved"),
        ));
    }
    Ok(())
}

/// The bindings stored for a user, checked again (they were normalized when stored).
pub(crate) fn bindings(record: &UserRecord) -> Vec<Binding> {
    record
        .roles
        .iter()
        .filter_map(|(role, scope)| match Binding::parse(role, scope) {
            Ok(binding) => Some(binding),
            Err(err) => {
                tracing::warn!(username = %record.username, role, scope, error = %err, "ignoring an invalid stored role binding");
                None
            }
        })
        .collect()
}

/// A store record as the wire `User`.
pub(crate) fn user_to_wire(record: &UserRecord) -> User {
    User {
        username: record.username.clone(),
        org: record.org.clone().unwrap_or_default(),
        disabled: record.disabled,
        roles: crate::grant::wire_bindings(&bindings(record)),
        created: Some(timestamp(record.created)),
    }
}

/// Unix seconds as a protobuf timestamp.
pub(crate) fn timestamp(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_tokens_and_login_is_reserved() {
        for good in ["alice", "a", "j-doe_2", "0ps"] {
            assert!(check_username(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Alice",
            "j.doe",
            "a b",
            "_x",
            "-x",
            "ü",
            &"a".repeat(65),
        ] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
        let err = check_username("login").unwrap_err();
        assert!(err.message.contains("reserved"));
    }
}
