//! Live updates as Server-Sent Events: state changes and service health.
//!
//! A state watch is [`plantd_state::watch`] on the person's connection (the state service
//! creates the consumer and delivers into the subject only that person's readers may hear), so
//! what a browser sees is exactly what `plant state watch` would show that person. Each event's
//! `id` is the KV revision: a reconnecting client sends it back as `Last-Event-ID` and
//! continues from the revision after it — `EventSource` does this by itself — so a reconnect
//! loses nothing the bucket still holds and repeats nothing.
//!
//! Health has no change feed on NATS; the bridge asks every 2 s on the person's connection and
//! sends the list when it differs from the last one sent.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt as _};
use plantd_shared::ErrorCode;
use plantd_shared::shutdown::Shutdown;
use plantd_state::watch::{WatchFrom, WatchSpec};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::{AppState, Caller};
use crate::error::{ApiError, ApiResult};
use crate::routes::{ErrorBody, QueryParams};

/// How often the health watch asks.
const HEALTH_POLL: Duration = Duration::from_secs(2);

/// The keep-alive comment period of every stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The SSE stream type every live endpoint returns.
pub type EventStream = Sse<
    axum::response::sse::KeepAliveStream<
        futures::stream::BoxStream<'static, Result<Event, Infallible>>,
    >,
>;

/// Wraps a stream of events with the keep-alive comment; it ends when the bridge stops.
pub fn sse(stream: impl Stream<Item = Event> + Send + 'static, shutdown: &Shutdown) -> EventStream {
    let shutdown = shutdown.clone();
    let stopping = async move { shutdown.wait().await };
    Sse::new(stream.take_until(stopping).map(Ok).boxed())
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
}

/// A `warning` event: something went wrong in a running stream, which goes on.
pub fn warning(message: &str) -> Event {
    Event::default()
        .event("warning")
        .data(serde_json::json!({ "message": message }).to_string())
}

/// Where a state watch starts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WatchParams {
    /// `current` (default): every key's current value first, then changes; `now`: changes only.
    /// Ignored when `Last-Event-ID` is sent.
    #[serde(default)]
    pub from: Option<String>,
    /// Only keys starting with this.
    #[serde(default)]
    pub prefix: String,
    /// Also every sub-scope.
    #[serde(default)]
    pub subtree: bool,
}

/// One state change (the `data` of an event `change`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeEvent {
    /// Scope of the key.
    pub scope: String,
    /// The key.
    pub key: String,
    /// `put` or `delete`.
    pub op: String,
    /// The value (empty for deletes).
    pub value: String,
    /// KV revision; also the event's `id`.
    pub revision: u64,
}

/// Streams the changes of a scope (events `change`; `warning` when the watch hiccups).
#[utoipa::path(get, path = "/api/v1/state/{scope}/watch", operation_id = "watch_state", tag = "state", security(("bearer" = [])),
    params(
        ("scope" = String, Path, description = "Scope"), WatchParams,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this revision"),
    ),
    responses(
        (status = 200, description = "`text/event-stream` of events `change` (data: ChangeEvent, id: revision)", content_type = "text/event-stream", body = ChangeEvent),
        (status = 400, description = "Bad scope or parameter", body = ErrorBody),
        (status = 403, description = "Refused by the NATS server", body = ErrorBody),
        (status = 503, description = "The state service does not answer", body = ErrorBody),
    ))]
pub async fn state(
    State(state): State<AppState>,
    Caller(session): Caller,
    Path(scope): Path<String>,
    headers: HeaderMap,
    params: QueryParams<WatchParams>,
) -> ApiResult<EventStream> {
    let params = params.0;
    plantd_shared::subjects::validate_scope(&scope)
        .map_err(|e| ApiError::field("scope", e.to_string()))?;
    let from = match last_event_id(&headers)? {
        Some(revision) => WatchFrom::Revision(revision.saturating_add(1)),
        None => match params.from.as_deref() {
            None | Some("current") => WatchFrom::Current,
            Some("now") => WatchFrom::Now,
            Some(other) => {
                return Err(ApiError::field(
                    "from",
                    format!("{other:?}: use current or now"),
                ));
            }
        },
    };
    let spec = WatchSpec {
        scope: scope.clone(),
        subtree: params.subtree,
        prefix: params.prefix,
        from,
    };
    let subject = plantd_shared::subjects::state::key_op("watch", &scope);
    let bucket = state.state_bucket.clone();
    let changes = crate::nats::guarded(&session, &subject, async {
        plantd_state::watch::watch(&session.client, &bucket, spec)
            .await
            .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))
    })
    .await?;
    tracing::debug!(user = %session.username, scope, "state watch opened");
    let events = changes.map(|item| match item {
        Ok(change) => {
            let data = ChangeEvent {
                scope: change.scope,
                key: change.key,
                op: match change.op {
                    plantd_state::watch::ChangeOp::Put => "put".into(),
                    plantd_state::watch::ChangeOp::Delete => "delete".into(),
                },
                value: change.value,
                revision: change.revision,
            };
            Event::default()
                .event("change")
                .id(data.revision.to_string())
                .data(serde_json::to_string(&data).unwrap_or_default())
        }
        Err(err) => warning(&err.to_string()),
    });
    Ok(sse(events, &state.shutdown))
}

/// The revision in `Last-Event-ID`, if sent.
fn last_event_id(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        ApiError::field(
            "last-event-id",
            format!("{text:?} is not a revision (a number)"),
        )
    })
}

/// One instance's health in a `health` event.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ToSchema)]
pub struct HealthEntry {
    /// Service name.
    pub name: String,
    /// Instance id.
    pub id: String,
    /// `healthy`, `degraded` or `unhealthy`.
    pub status: String,
    /// Why.
    pub reason: String,
}

/// The `data` of a `health` event.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ToSchema)]
pub struct HealthEvent {
    /// Every instance, sorted by name then id.
    pub services: Vec<HealthEntry>,
}

/// Streams service health (event `health`) on connect and on every change.
#[utoipa::path(get, path = "/api/v1/health/watch", operation_id = "watch_health", tag = "services", security(("bearer" = [])),
    responses(
        (status = 200, description = "`text/event-stream` of events `health` (data: HealthEvent)", content_type = "text/event-stream", body = HealthEvent),
        (status = 401, description = "No valid session", body = ErrorBody),
    ))]
pub async fn health(State(state): State<AppState>, Caller(session): Caller) -> EventStream {
    let sessions = state.sessions.clone();
    let shutdown = state.shutdown.clone();
    let events = futures::stream::unfold(
        (state, session, None::<HealthEvent>, true),
        move |(state, session, last, first)| {
            let sessions = sessions.clone();
            async move {
                loop {
                    if !first || last.is_some() {
                        tokio::time::sleep(HEALTH_POLL).await;
                    }
                    if !sessions.is_open(&session) {
                        return None;
                    }
                    match crate::routes::services::instances(&state, &session, None).await {
                        Ok(found) => {
                            let now = HealthEvent {
                                services: found
                                    .into_iter()
                                    .map(|s| HealthEntry {
                                        name: s.name,
                                        id: s.id,
                                        status: s.health.status,
                                        reason: s.health.reason,
                                    })
                                    .collect(),
                            };
                            if last.as_ref() != Some(&now) {
                                let event = Event::default()
                                    .event("health")
                                    .data(serde_json::to_string(&now).unwrap_or_default());
                                return Some((event, (state, session, Some(now), false)));
                            }
                        }
                        Err(err) => {
                            let event = warning(&err.0.message);
                            return Some((event, (state, session, last, false)));
                        }
                    }
                }
            }
        },
    );
    sse(events, &shutdown)
}
