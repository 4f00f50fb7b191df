//! The client side of a login, for every program that logs a person in: `plant login` and the
//! web-api bridge.
//!
//! A login makes a fresh user nkey and a curve key in the caller's memory, sends only their
//! public halves with the password to `plantd.identity.login` (over the `login` user's
//! connection, which hears only `_INBOX_login.>`), opens the grant the service sealed to that
//! curve key, and checks that the granted JWT is bound to the key this login made. The seed
//! never leaves the caller; nothing here logs a password, a seed or a JWT.

use std::time::Duration;

use async_nats::Client;
use nkeys::{KeyPair, XKey};
use plantd_schemas::identity::v1::{Grant, LoginRequest, LoginResponse, UserProof};
use plantd_shared::call::{self, CallError};
use plantd_shared::codec::Encoding;
use plantd_shared::subjects;

use crate::claims::{Claims, UserNats};

/// A person logged in: the grant and the key its JWT is bound to.
pub struct LoggedIn {
    /// What identity granted (JWT, username, inbox prefix, roles, expiry).
    pub grant: Grant,
    /// The user key made for this login; its seed signs the NATS connection and proofs.
    pub key: KeyPair,
    /// Expiry of the JWT, Unix seconds (`None`: does not expire).
    pub expires_unix: Option<i64>,
}

impl std::fmt::Debug for LoggedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the JWT nor the seed goes into a debug print.
        f.debug_struct("LoggedIn")
            .field("username", &self.grant.username)
            .field("public_key", &self.key.public_key())
            .field("expires_unix", &self.expires_unix)
            .finish_non_exhaustive()
    }
}

impl LoggedIn {
    /// The nkey seed of the login's user key.
    pub fn seed(&self) -> Result<String, LoginError> {
        self.key
            .seed()
            .map_err(|_| LoginError::Invalid("the new user key has no seed".into()))
    }

    /// A proof that this session makes a request on `subject` now.
    pub fn proof(&self, subject: &str) -> UserProof {
        crate::proof::sign(&self.grant.jwt, &self.key, subject, crate::proof::now_ms())
    }
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The identity service refused or could not be reached.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The reply could not be trusted or used.
    #[error("{0}")]
    Invalid(String),
}

/// Logs `username` in over `login_client` (a connection made with the `login` creds and the
/// inbox prefix [`crate::permissions::LOGIN_INBOX_PREFIX`]).
pub async fn login(
    login_client: &Client,
    username: &str,
    password: &str,
    timeout: Duration,
) -> Result<LoggedIn, LoginError> {
    let key = KeyPair::new_user();
    let xkey = XKey::new();
    let reply: LoginResponse = call::request(
        login_client,
        &subjects::identity::op("login"),
        &LoginRequest {
            username: username.to_string(),
            password: password.to_string(),
            public_key: key.public_key(),
            xkey: xkey.public_key(),
        },
        Encoding::Protobuf,
        timeout,
    )
    .await?;
    let grant = crate::grant::open(&reply.sealed_grant, &xkey, &reply.server_xkey)
        .map_err(|e| LoginError::Invalid(format!("cannot open the sealed grant: {e}")))?;
    let claims: Claims<UserNats> = crate::jwt::decode(&grant.jwt)
        .map_err(|e| LoginError::Invalid(format!("the granted JWT is not valid: {e}")))?;
    if claims.sub != key.public_key() {
        return Err(LoginError::Invalid(format!(
            "the granted JWT is for another key ({}), not the one this login made",
            claims.sub
        )));
    }
    if grant.inbox_prefix.is_empty() {
        return Err(LoginError::Invalid("the grant has no inbox prefix".into()));
    }
    let expires_unix = grant.expires.as_ref().map(|t| t.seconds).or(claims.exp);
    Ok(LoggedIn {
        grant,
        key,
        expires_unix,
    })
}
