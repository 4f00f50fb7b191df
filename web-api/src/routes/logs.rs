//! `GET /api/v1/logs`: the logger's query (`plantd.logger.query`) over HTTP, on the person's
//! connection (only unscoped roles may query logs; the server refuses the rest).

use axum::Json;
use axum::extract::State;
use plantd_schemas::logger::v1::{QueryRequest, QueryResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::{AppState, Caller};
use crate::error::{ApiError, ApiResult};
use crate::routes::{ErrorBody, QueryParams, rfc3339};

/// Which records.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogsParams {
    /// Only this service.
    #[serde(default)]
    pub service: String,
    /// This level or more severe: `error`, `warn`, `info`, `debug`, `trace`.
    #[serde(default)]
    pub level: String,
    /// Not before this time (RFC 3339).
    pub since: Option<String>,
    /// Not after this time (RFC 3339).
    pub until: Option<String>,
    /// Only messages containing this text.
    #[serde(default)]
    pub contains: String,
    /// At most this many (default 100, at most 1000).
    #[serde(default)]
    pub limit: u32,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: u64,
}

/// One log record.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogRecordView {
    /// When (RFC 3339).
    pub time: Option<String>,
    /// Service.
    pub service: String,
    /// `host/pid`.
    pub instance: String,
    /// Level.
    pub level: String,
    /// Module path that logged it.
    pub target: String,
    /// The message.
    pub message: String,
    /// Structured fields.
    pub fields: std::collections::BTreeMap<String, String>,
    /// Trace id, if any.
    pub trace_id: String,
    /// Sequence in the log stream.
    pub seq: u64,
}

/// A page of records.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogsReply {
    /// Records, oldest first.
    pub records: Vec<LogRecordView>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: u64,
    /// Whether more records match.
    pub more: bool,
}

fn time_param(
    field: &str,
    value: Option<&str>,
) -> ApiResult<Option<plantd_schemas::wkt::Timestamp>> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
                .map(plantd_shared::timestamp::of)
                .map_err(|_| {
                    ApiError::field(
                        field,
                        format!("{v:?} is not an RFC 3339 time such as 2026-12-04T10:00:00Z"),
                    )
                })
        })
        .transpose()
}

/// Queries the logger.
#[utoipa::path(get, path = "/api/v1/logs", operation_id = "query_logs", tag = "logs", security(("bearer" = [])),
    params(LogsParams),
    responses(
        (status = 200, description = "Matching records", body = LogsReply),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 403, description = "Refused by the NATS server", body = ErrorBody),
        (status = 503, description = "The logger does not answer", body = ErrorBody),
    ))]
pub async fn query(
    State(state): State<AppState>,
    Caller(session): Caller,
    params: QueryParams<LogsParams>,
) -> ApiResult<Json<LogsReply>> {
    let p = params.0;
    let req = QueryRequest {
        service: p.service,
        min_level: p.level,
        since: time_param("since", p.since.as_deref())?,
        until: time_param("until", p.until.as_deref())?,
        contains: p.contains,
        limit: p.limit,
        cursor: p.cursor,
    };
    let subject = plantd_shared::subjects::log::query();
    let resp: QueryResponse =
        crate::nats::request(&session, &subject, &req, state.config.request_timeout()).await?;
    Ok(Json(LogsReply {
        records: resp
            .records
            .into_iter()
            .map(|r| LogRecordView {
                time: rfc3339(r.time.as_ref()),
                service: r.service,
                instance: r.instance,
                level: r.level,
                target: r.target,
                message: r.message,
                fields: r.fields.into_iter().collect(),
                trace_id: r.trace_id,
                seq: r.seq,
            })
            .collect(),
        next_cursor: resp.next_cursor,
        more: resp.more,
    }))
}
