//! `login`, `logout`, `whoami`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::{AppState, Caller, SESSION_COOKIE};
use crate::error::{ApiError, ApiResult};
use crate::routes::{ErrorBody, JsonBody, rfc3339_unix};
use crate::session::RoleView;

/// A login request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A session that started.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginReply {
    /// The bearer token (the bridge's own; not a NATS credential).
    pub token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// When the session ends (RFC 3339).
    pub expires_at: String,
    /// Seconds until then.
    pub expires_in: i64,
    /// Who logged in.
    pub username: String,
    /// Their roles.
    pub roles: Vec<RoleView>,
}

/// The caller's session.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoamiReply {
    /// Who.
    pub username: String,
    /// Their roles.
    pub roles: Vec<RoleView>,
    /// When the session ends (RFC 3339); absent on a hub without authentication.
    pub expires_at: Option<String>,
    /// Whether this hub authenticates people.
    pub auth: bool,
}

/// Logs a person in through the identity service and opens their NATS connection.
#[utoipa::path(post, path = "/api/v1/login", tag = "session", request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in", body = LoginReply),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        (status = 404, description = "This hub has no authentication", body = ErrorBody),
        (status = 503, description = "Identity unreachable", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<LoginBody>,
) -> ApiResult<Response> {
    if body.username.is_empty() {
        return Err(ApiError::field("username", "username is empty"));
    }
    if body.password.is_empty() {
        return Err(ApiError::field("password", "password is empty"));
    }
    let issued = state.sessions.login(&body.username, &body.password).await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expires_in = (issued.session.expires_unix - now).max(0);
    let reply = LoginReply {
        token: issued.token.clone(),
        token_type: "Bearer".into(),
        expires_at: rfc3339_unix(issued.session.expires_unix),
        expires_in,
        username: issued.session.username.clone(),
        roles: issued.session.roles.clone(),
    };
    let secure = if state.config.tls_cert.is_empty() {
        ""
    } else {
        "; Secure"
    };
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/api/v1; HttpOnly; SameSite=Strict; Max-Age={expires_in}{secure}",
        issued.token
    );
    let mut response = Json(reply).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// Ends the session: revokes the person's JWT and closes their connection.
#[utoipa::path(post, path = "/api/v1/logout", tag = "session", security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "No valid session", body = ErrorBody),
    ))]
pub async fn logout(State(state): State<AppState>, Caller(session): Caller) -> Response {
    state.sessions.logout(&session).await;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "plantd_session=; Path=/api/v1; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    response
}

/// Who the session is.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "session", security(("bearer" = [])),
    responses(
        (status = 200, description = "The session", body = WhoamiReply),
        (status = 401, description = "No valid session", body = ErrorBody),
    ))]
pub async fn whoami(State(state): State<AppState>, Caller(session): Caller) -> Json<WhoamiReply> {
    let auth = state.sessions.auth();
    Json(WhoamiReply {
        username: session.username.clone(),
        roles: session.roles.clone(),
        expires_at: auth.then(|| rfc3339_unix(session.expires_unix)),
        auth,
    })
}
