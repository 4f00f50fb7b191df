//! `GET /api/v1/bus/{bus}/tail`: a live bus as Server-Sent Events (event `message`).
//!
//! The subscription is made on the person's connection, so nats-server grants it only for the
//! topics the person may read. The server refuses a subscription on the side, so the bridge
//! flushes and waits a moment for a refusal before it answers 200; one that arrives later
//! still ends the stream with a `denied` event carrying the same error body.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::Event;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::{AppState, Caller};
use crate::error::{ApiError, ApiResult};
use crate::routes::watch::{EventStream, sse};
use crate::routes::{ErrorBody, QueryParams};

/// How long after its flush a subscription waits for the server to refuse it.
const REFUSAL_WINDOW: Duration = Duration::from_millis(50);

/// Which topics to follow.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TailParams {
    /// Topic filter (`site1.>`, `*.oven.temp`); default `>` (every topic the person may read).
    #[serde(default)]
    pub topic: Option<String>,
}

/// One bus message (the `data` of an event `message`).
#[derive(Debug, Serialize, ToSchema)]
pub struct BusEvent {
    /// The bus.
    pub bus: String,
    /// The topic.
    pub topic: String,
    /// The payload as text (invalid UTF-8 replaced).
    pub data: String,
}

/// Streams a bus live.
#[utoipa::path(get, path = "/api/v1/bus/{bus}/tail", operation_id = "tail_bus", tag = "buses", security(("bearer" = [])),
    params(("bus" = String, Path, description = "Bus (`control`, `data`, `event`)"), TailParams),
    responses(
        (status = 200, description = "`text/event-stream` of events `message` (data: BusEvent)", content_type = "text/event-stream", body = BusEvent),
        (status = 400, description = "Bad bus or topic filter", body = ErrorBody),
        (status = 403, description = "Refused by the NATS server", body = ErrorBody),
    ))]
pub async fn tail(
    State(state): State<AppState>,
    Caller(session): Caller,
    Path(bus): Path<String>,
    params: QueryParams<TailParams>,
) -> ApiResult<EventStream> {
    let filter = params.0.topic.unwrap_or_else(|| ">".into());
    if let Err(err) = plantd_shared::subjects::bus::validate_name(&bus) {
        return Err(ApiError::field("bus", err));
    }
    plantd_shared::bus::check_filter(&filter)
        .map_err(|e| ApiError::field("topic", e.to_string()))?;
    let subject = plantd_shared::subjects::bus::topic(&bus, &filter);
    let client = session.client.clone();
    let messages = crate::nats::guarded(&session, &subject, async {
        let messages = plantd_shared::bus::subscribe(&client, &bus, &filter)
            .await
            .map_err(|e| unavailable(&bus, &e))?;
        client.flush().await.map_err(|e| unavailable(&bus, &e))?;
        tokio::time::sleep(REFUSAL_WINDOW).await;
        Ok::<_, ApiError>(messages)
    })
    .await?;
    let refusals = session.refusals.subscribe();
    let denied = futures::stream::once(crate::nats::refusal(refusals, subject)).map(|text| {
        let body = ApiError::refused(&text).0.to_json_body();
        Event::default()
            .event("denied")
            .data(String::from_utf8_lossy(&body))
    });
    let events = messages.map(|m| {
        let data = BusEvent {
            bus: m.bus.to_string(),
            topic: m.topic().to_string(),
            data: String::from_utf8_lossy(&m.payload).into_owned(),
        };
        Event::default()
            .event("message")
            .data(serde_json::to_string(&data).unwrap_or_default())
    });
    // The stream ends after a late refusal; otherwise it lasts as long as the connection.
    let merged = futures::stream::select(
        events.map(Some),
        denied
            .map(Some)
            .chain(futures::stream::once(async { None })),
    )
    .take_while(|e| std::future::ready(e.is_some()))
    .filter_map(std::future::ready);
    Ok(sse(merged, &state.shutdown))
}

/// NATS could not take the subscription (the connection is down): 503.
fn unavailable(bus: &str, err: &dyn std::fmt::Display) -> ApiError {
    ApiError::new(
        plantd_shared::ErrorCode::Unavailable,
        format!("cannot listen to bus {bus}: {err}"),
    )
}
