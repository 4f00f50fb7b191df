//! The router and the HTTP server around it: request ids, tracing spans, timeouts (not on
//! streams), body limits, CORS, `/healthz`, TLS when configured, and a graceful stop that
//! ends every live stream and session.

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use plantd_shared::ErrorCode;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use crate::error::ApiError;
use crate::routes::{auth, bus, logs, req, services, state, watch};

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application.
pub fn router(app: AppState) -> Router {
    // Streams (SSE) last as long as the client wants; everything else has a deadline.
    let streams = Router::new()
        .route("/api/v1/state/{scope}/watch", get(watch::state))
        .route("/api/v1/health/watch", get(watch::health))
        .route("/api/v1/bus/{bus}/tail", get(bus::tail));
    let mut calls = Router::new()
        .route("/api/v1/login", post(auth::login))
        .route("/api/v1/logout", post(auth::logout))
        .route("/api/v1/whoami", get(auth::whoami))
        .route("/api/v1/services", get(services::list))
        .route("/api/v1/services/{name}", get(services::info))
        .route("/api/v1/services/{name}/stats", get(services::stats))
        .route("/api/v1/services/{name}/health", get(services::health))
        .route("/api/v1/scopes", get(state::scopes))
        .route(
            "/api/v1/scopes/{scope}",
            put(state::create_scope).delete(state::delete_scope),
        )
        .route("/api/v1/state/{scope}", get(state::list))
        .route(
            "/api/v1/state/{scope}/keys/{key}",
            get(state::get).put(state::set).delete(state::delete),
        )
        .route("/api/v1/req/{*subject}", post(req::request))
        .route("/api/v1/logs", get(logs::query))
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/healthz", get(healthz));
    for path in crate::ui::paths() {
        calls = calls.route(path, get(move || async move { crate::ui::serve(path) }));
    }
    let calls = calls.layer(middleware::from_fn_with_state(app.clone(), deadline));
    // No origin configured: same origin only, so no CORS layer at all (it would answer every
    // request with nothing to add, at a cost).
    let origins = app.config.cors_origins();
    let cors = (!origins.is_empty()).then(|| cors(&origins));
    Router::new()
        .merge(streams)
        .merge(calls)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(app.config.max_body_bytes))
        .layer(tower::util::option_layer(cors))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            let id = request
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, SequentialIds::new()))
        .with_state(app)
}

/// Request ids for requests that bring none: a random prefix for this run of the bridge and
/// a counter, e.g. `3f9c2a71-000042`. Unique per bridge run and across restarts (the prefix),
/// ordered within a run, and cheaper than a random UUID per request (no `getrandom` call).
#[derive(Clone)]
struct SequentialIds {
    prefix: std::sync::Arc<str>,
    next: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl SequentialIds {
    fn new() -> SequentialIds {
        let prefix: u32 = rand::random();
        SequentialIds {
            prefix: format!("{prefix:08x}").into(),
            next: Default::default(),
        }
    }
}

impl MakeRequestId for SequentialIds {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n:06}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// Ends a request that outlives `http_timeout_ms` with 504 (in the usual error body).
async fn deadline(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let limit = Duration::from_millis(app.config.http_timeout_ms);
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            ErrorCode::Timeout,
            format!(
                "the request took longer than {} ms (http_timeout_ms); its outcome is unknown",
                limit.as_millis()
            ),
        )
        .into_response(),
    }
}

/// CORS for the configured origins; none configured: same origin only (no CORS headers).
fn cors(origins: &[String]) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            HeaderName::from_static("last-event-id"),
            REQUEST_ID,
        ])
        .expose_headers([header::ETAG, REQUEST_ID])
        .max_age(Duration::from_secs(600));
    if origins.iter().any(|o| o == "*") {
        return base.allow_origin(AllowOrigin::any());
    }
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    base.allow_origin(AllowOrigin::list(list))
}

async fn openapi_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        crate::openapi::json(),
    )
        .into_response()
}

/// The bridge's own health: its NATS connection for logins (or the open hub's).
async fn healthz(State(app): State<AppState>) -> Response {
    let (status, reason) = if app.sessions.nats_connected() {
        (
            plantd_shared::health::Status::Healthy,
            "connected".to_string(),
        )
    } else {
        (
            plantd_shared::health::Status::Unhealthy,
            "not connected to NATS".to_string(),
        )
    };
    app.health.set("nats", status, reason);
    app.health.set(
        "sessions",
        plantd_shared::health::Status::Healthy,
        format!("{} open", app.sessions.len()),
    );
    let code = if status == plantd_shared::health::Status::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, axum::Json(app.health.to_json())).into_response()
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "no such endpoint: {} {}",
        request.method(),
        request.uri().path()
    ))
}

/// 405, in the usual error body (its code is not one plantd uses over NATS).
async fn method_not_allowed(request: Request) -> Response {
    let body = serde_json::json!({
        "code": 405,
        "message": format!("{} is not allowed on {}", request.method(), request.uri().path()),
        "field": "",
    });
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}
