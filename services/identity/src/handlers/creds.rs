//! `plantd.identity.admin.creds`: long-lived, revocable creds for a service or an edge link.
//!
//! Services and edge links use creds files rather than passwords (DESIGN.md, "Security
//! model"): a fresh user nkey, a JWT without expiry signed by the account signing key, with the
//! least-privilege preset of [`crate::permissions`] for `kind`. The key is recorded so it can
//! be revoked later (the revocation row never expires, since the JWT does not). The reply holds
//! the seed: it goes only to the requesting admin's inbox, and is never logged.

use plantd_schemas::identity::v1::{
    AccountJwtRequest, AccountJwtResponse, ServiceCredsRequest, ServiceCredsResponse,
};
use plantd_shared::{ErrorCode, ServiceError, micro::RequestContext, subjects};

use super::{App, check_name, store_error};
use crate::claims::{UserNats, unix_now};
use crate::permissions;
use crate::store::sessions;

/// The kinds `creds` knows.
pub const KINDS: &[&str] = &[
    "echo",
    "metric",
    "module",
    "state",
    "identity",
    "buses",
    "logger",
    "edge",
    "edge-agent",
];

/// `…admin.creds`.
pub async fn issue(
    app: &App,
    _ctx: RequestContext,
    req: ServiceCredsRequest,
) -> Result<ServiceCredsResponse, ServiceError> {
    check_name("name", &req.name)?;
    let nats = preset(&req.kind, &req.name, &app.state_bucket)?.issued_by(&app.issuer.account);
    let issued = app.issuer.issue_service(&req.name, nats)?;
    let (key, name, kind) = (
        issued.public_key.clone(),
        req.name.clone(),
        req.kind.clone(),
    );
    app.store
        .run(move |tx| sessions::record_service_creds(tx, &key, &name, &kind, unix_now()))
        .await
        .map_err(store_error)?;
    tracing::info!(name = %req.name, kind = %req.kind, public_key = %issued.public_key, "service creds issued");
    Ok(ServiceCredsResponse {
        creds: issued.creds().to_string(),
        public_key: issued.public_key,
    })
}

/// `…admin.account`: the plantd account JWT the server holds (with identity's revocations), for
/// edge sites to push into their own server. 503 until the first push was confirmed.
pub async fn account(
    app: &App,
    _ctx: RequestContext,
    _req: AccountJwtRequest,
) -> Result<AccountJwtResponse, ServiceError> {
    let jwt = app.updater.current_jwt().ok_or_else(|| {
        ServiceError::new(
            ErrorCode::Unavailable,
            "the account jwt has not been pushed to the server yet; retry shortly",
        )
    })?;
    Ok(AccountJwtResponse { jwt })
}

/// The claims preset of `kind`.
fn preset(kind: &str, name: &str, bucket: &str) -> Result<UserNats, ServiceError> {
    let permissions = match kind {
        "echo" => permissions::echo_service(),
        permissions::METRIC_USER => permissions::metric_service(),
        // A module of one's own, scoped to its name (`plant module new`).
        "module" => permissions::module_service(name),
        k if k == subjects::state::SERVICE => permissions::state_service(bucket),
        k if k == subjects::identity::SERVICE => permissions::identity_service(),
        k if k == subjects::bus::SERVICE => permissions::bus_service(subjects::bus::DEFAULT_BUSES),
        k if k == subjects::log::SERVICE => permissions::logger_service(),
        // An edge site's agent (plantd-edge at the site): it creates streams sourcing across
        // domains and pushes account JWTs into the site's own server, which needs all rights
        // in the plantd account there; issued per site, so it is revoked per site.
        "edge-agent" => permissions::admin(),
        "edge" => {
            let mut nats = UserNats::new(permissions::edge_link());
            nats.allowed_connection_types = vec![permissions::LEAFNODE_CONNECTION.to_string()];
            return Ok(nats);
        }
        other => {
            return Err(ServiceError::invalid_field(
                "kind",
                format!("unknown kind {other:?}; kinds are {}", KINDS.join(", ")),
            ));
        }
    };
    Ok(UserNats::new(permissions))
}
