//! A person acting on its own session: refresh, logout, whoami, check-permission.
//!
//! Each request carries a [`UserProof`](plantd_schemas::identity::v1::UserProof) bound to the
//! request subject ([`crate::proof`]). The person's JWT lets it publish to these four subjects
//! and nothing else of identity's.
//!
//! Logout answers *before* the server has applied the revocation: the server closes the
//! person's connection as soon as it applies the new account JWT, and a reply sent after that
//! would never arrive. The revocation is committed before the reply, and the account updater
//! pushes it within milliseconds (and retries until the server confirms).

use plantd_schemas::identity::v1::{
    CheckPermissionRequest, CheckPermissionResponse, LogoutRequest, LogoutResponse, RefreshRequest,
    RefreshResponse, WhoamiRequest, WhoamiResponse,
};
use plantd_shared::{ErrorCode, ServiceError, micro::RequestContext};

use super::{App, bindings, store_error, timestamp};
use crate::authorize::{self, Action};
use crate::claims::unix_now;
use crate::proof::{Verified, now_ms};
use crate::roles::{self, Role};
use crate::store::{sessions, users};

/// `plantd.identity.refresh`: a new JWT for the same key, with the user's current roles.
pub async fn refresh(
    app: &App,
    ctx: RequestContext,
    req: RefreshRequest,
) -> Result<RefreshResponse, ServiceError> {
    let verified = verify(app, &ctx, req.proof.as_ref()).await?;
    let record = user_of(app, &verified).await?;
    if record.disabled {
        return Err(ServiceError::new(
            ErrorCode::Forbidden,
            "the user is disabled",
        ));
    }
    let bindings = bindings(&record);
    let issued = app.issuer.issue(
        &record.username,
        &verified.claims.sub,
        &bindings,
        unix_now(),
    )?;
    let session = sessions::Session {
        jti: issued.claims.jti.clone(),
        username: record.username.clone(),
        public_key: verified.claims.sub.clone(),
        issued_at: issued.claims.iat,
        expires_at: issued.claims.exp.unwrap_or(i64::MAX),
        revoked: false,
    };
    app.store
        .run(move |tx| sessions::record(tx, &session))
        .await
        .map_err(store_error)?;
    tracing::info!(username = %record.username, public_key = %verified.claims.sub, "refresh: jwt issued");
    Ok(RefreshResponse {
        grant: Some(app.issuer.grant(&issued, &bindings)),
    })
}

/// `plantd.identity.logout`: revokes the proof's key (this JWT and every earlier one).
pub async fn logout(
    app: &App,
    ctx: RequestContext,
    req: LogoutRequest,
) -> Result<LogoutResponse, ServiceError> {
    let verified = verify(app, &ctx, req.proof.as_ref()).await?;
    let key = verified.claims.sub.clone();
    app.store
        .run(move |tx| sessions::revoke_key(tx, &key, unix_now()))
        .await
        .map_err(store_error)?;
    app.updater.request();
    tracing::info!(username = %verified.session.username, public_key = %verified.claims.sub, "logout: key revoked");
    Ok(LogoutResponse { revoked: true })
}

/// `plantd.identity.whoami`.
pub async fn whoami(
    app: &App,
    ctx: RequestContext,
    req: WhoamiRequest,
) -> Result<WhoamiResponse, ServiceError> {
    let verified = verify(app, &ctx, req.proof.as_ref()).await?;
    let record = user_of(app, &verified).await?;
    Ok(WhoamiResponse {
        username: record.username.clone(),
        org: record.org.clone().unwrap_or_default(),
        roles: crate::grant::wire_bindings(&bindings(&record)),
        public_key: verified.claims.sub.clone(),
        expires: verified.claims.exp.map(timestamp),
        inbox_prefix: roles::inbox_prefix(&record.username),
    })
}

/// `plantd.identity.check-permission`: would the user (by default the caller; admins may ask
/// about anyone) be allowed to publish or subscribe to `subject`, with its *current* roles?
pub async fn check(
    app: &App,
    ctx: RequestContext,
    req: CheckPermissionRequest,
) -> Result<CheckPermissionResponse, ServiceError> {
    let action = Action::parse(&req.action).ok_or_else(|| {
        ServiceError::invalid_field("action", "action must be \"publish\" or \"subscribe\"")
    })?;
    if req.subject.is_empty() || req.subject.contains(char::is_whitespace) {
        return Err(ServiceError::invalid_field(
            "subject",
            "subject must be a non-empty subject without whitespace",
        ));
    }
    let verified = verify(app, &ctx, req.proof.as_ref()).await?;
    let caller = user_of(app, &verified).await?;
    let target = if req.username.is_empty() || req.username == caller.username {
        caller
    } else {
        if !bindings(&caller).iter().any(|b| b.role == Role::Admin) {
            return Err(ServiceError::new(
                ErrorCode::Forbidden,
                "only admins may check another user's permissions",
            )
            .with_field("username"));
        }
        let username = req.username.clone();
        app.store
            .run(move |tx| users::get_user(tx, &username))
            .await
            .map_err(store_error)?
    };
    let permissions = roles::permissions(&target.username, &bindings(&target), &app.state_bucket);
    let (allowed, reason) = authorize::check(&permissions, action, &req.subject);
    Ok(CheckPermissionResponse { allowed, reason })
}

async fn verify(
    app: &App,
    ctx: &RequestContext,
    proof: Option<&plantd_schemas::identity::v1::UserProof>,
) -> Result<Verified, ServiceError> {
    app.verifier
        .verify(&app.store, &ctx.subject, proof, now_ms())
        .await
}

/// The proof's user; a user deleted since is a 401 (its sessions were revoked anyway).
async fn user_of(app: &App, verified: &Verified) -> Result<users::UserRecord, ServiceError> {
    let username = verified.session.username.clone();
    app.store
        .run(move |tx| users::get_user(tx, &username))
        .await
        .map_err(|err| match err {
            crate::store::StoreError::NotFound(_) => {
                ServiceError::new(ErrorCode::Unauthorized, "the proof's user no longer exists")
            }
            other => store_error(other),
        })
}
