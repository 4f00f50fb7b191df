//! What every handler shares ([`AppState`]) and who is calling ([`Caller`]).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::{Method, header, request::Parts};
use plantd_shared::health::Health;

use crate::config::WebApiConfig;
use crate::error::ApiError;
use crate::session::{Session, Sessions};

/// The name of the session cookie (accepted for GET only).
pub const SESSION_COOKIE: &str = "plantd_session";

/// Shared by every handler. axum clones the state for every request (and every middleware
/// that reads it), so it is one `Arc`: a clone is one atomic increment, not one per field
/// (cloning the shutdown token alone takes a lock).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Wraps what the handlers share.
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    /// Sessions and logins.
    pub sessions: Arc<Sessions>,
    /// The settings.
    pub config: Arc<WebApiConfig>,
    /// The bridge's own health (`/healthz`).
    pub health: Health,
    /// The KV bucket the state service mirrors into (watches read it).
    pub state_bucket: String,
    /// Fires when the bridge stops (ends every live stream).
    pub shutdown: plantd_shared::shutdown::Shutdown,
}

/// The session a request runs as.
pub struct Caller(pub Arc<Session>);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let token = bearer(parts).or_else(|| {
            // A browser's EventSource cannot send headers; a cookie is good for reads only,
            // so a cross-site form can never write with it.
            (parts.method == Method::GET || parts.method == Method::HEAD)
                .then(|| cookie(parts, SESSION_COOKIE))
                .flatten()
        });
        if token.is_none()
            && parts.headers.contains_key(header::AUTHORIZATION)
            && state.sessions.auth()
        {
            return Err(ApiError::unauthorized(
                "the Authorization header must be `Bearer <token>`",
            ));
        }
        state.sessions.authenticate(token.as_deref()).map(Caller)
    }
}

/// The bearer token of the request, if any.
fn bearer(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .then(|| token.trim().to_string())
}

/// The value of cookie `name`, if sent.
fn cookie(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}
