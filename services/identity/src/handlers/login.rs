//! `plantd.identity.login`: password in, sealed grant out.
//!
//! Order matters for what an attacker can learn: the request's keys are checked first (400s
//! that say nothing about users), then the per-username and per-client rate limits (429, also
//! for unknown names), then the password — verified against the user's argon2id hash, or
//! against a dummy hash when the user does not exist, so both failures take the same time and
//! get the same 401 message. Only after the password matched does the reply reveal anything
//! about the account (403 if disabled). The grant is sealed to the client's curve key because
//! every login client can read every login reply ([`crate::grant`]).

use std::time::Instant;

use plantd_schemas::identity::v1::{LoginRequest, LoginResponse};
use plantd_shared::{ErrorCode, ServiceError, micro::RequestContext};

use super::{App, bindings, check_username, store_error};
use crate::claims::unix_now;
use crate::grant::{check_user_key, check_xkey};
use crate::store::{sessions, users};

/// The one message for a wrong password and an unknown user.
pub const BAD_CREDENTIALS: &str = "invalid username or password";

/// `plantd.identity.login`.
pub async fn login(
    app: &App,
    _ctx: RequestContext,
    req: LoginRequest,
) -> Result<LoginResponse, ServiceError> {
    check_user_key(&req.public_key)?;
    check_xkey(&req.xkey)?;
    check_username(&req.username)
        .map_err(|_| ServiceError::new(ErrorCode::Unauthorized, BAD_CREDENTIALS))?;
    let now = Instant::now();
    for (limiter, key, what) in [
        (&app.user_limiter, &req.username, "for this user"),
        (&app.client_limiter, &req.public_key, "from this client"),
    ] {
        if let Err(wait) = limiter.take(key, now) {
            tracing::warn!(username = %req.username, "login rate limited {what}");
            return Err(ServiceError::new(
                ErrorCode::TooManyRequests,
                format!(
                    "too many login attempts {what}; retry in {} s",
                    wait.as_secs().max(1)
                ),
            ));
        }
    }

    let username = req.username.clone();
    let credentials = app
        .store
        .run(move |tx| users::credentials(tx, &username))
        .await
        .map_err(store_error)?;
    let disabled = credentials.as_ref().is_some_and(|c| c.disabled);
    let hash = credentials.map(|c| c.password_hash);
    if !app.passwords.verify(req.password, hash).await? {
        tracing::info!(username = %req.username, "login refused: bad credentials");
        return Err(ServiceError::new(ErrorCode::Unauthorized, BAD_CREDENTIALS));
    }
    if disabled {
        tracing::info!(username = %req.username, "login refused: user disabled");
        return Err(ServiceError::new(
            ErrorCode::Forbidden,
            "the user is disabled",
        ));
    }

    let username = req.username.clone();
    let record = app
        .store
        .run(move |tx| users::get_user(tx, &username))
        .await
        .map_err(store_error)?;
    let bindings = bindings(&record);
    let issued = app
        .issuer
        .issue(&record.username, &req.public_key, &bindings, unix_now())?;
    let session = sessions::Session {
        jti: issued.claims.jti.clone(),
        username: record.username.clone(),
        public_key: req.public_key.clone(),
        issued_at: issued.claims.iat,
        expires_at: issued.claims.exp.unwrap_or(i64::MAX),
        revoked: false,
    };
    app.store
        .run(move |tx| sessions::record(tx, &session))
        .await
        .map_err(|e| store_error(e).with_field("public_key"))?;
    let grant = app.issuer.grant(&issued, &bindings);
    tracing::info!(
        username = %record.username,
        public_key = %req.public_key,
        expires = issued.claims.exp.unwrap_or_default(),
        "login: jwt issued"
    );
    Ok(LoginResponse {
        sealed_grant: app.issuer.seal(&grant, &req.xkey)?,
        server_xkey: app.issuer.server_xkey(),
    })
}
