//! `POST /api/v1/req/{subject}`: a request to any subject the person may publish to, the
//! HTTP form of `nats req` / `plant req`.
//!
//! The body goes out as is and the reply comes back as is, with the reply's content type
//! guessed only as JSON or not. A reply carrying plantd's error headers becomes the HTTP
//! error with that code (`plantd_shared::call` reads them), the same body as every other error.

use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::app::{AppState, Caller};
use crate::error::{ApiError, ApiResult};
use crate::routes::{ErrorBody, QueryParams, read_body};

/// Longest timeout a request may ask for.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of a request.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReqParams {
    /// How long to wait for the reply, milliseconds (default: the bridge's request timeout;
    /// at most 60000).
    pub timeout_ms: Option<u64>,
}

/// Whether `subject` is one a request may go to: tokens of printable ASCII, no wildcards.
fn checked_subject(subject: &str) -> ApiResult<()> {
    let ok = !subject.is_empty()
        && subject.len() <= 1024
        && subject.split('.').all(|t| {
            !t.is_empty() && t != "*" && t != ">" && t.bytes().all(|b| b.is_ascii_graphic())
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::field(
            "subject",
            format!(
                "{subject:?} is not a subject to send to (dot-separated tokens, no wildcards, no spaces)"
            ),
        ))
    }
}

/// Sends the body to `subject` and answers with the reply.
#[utoipa::path(post, path = "/api/v1/req/{subject}", operation_id = "request", tag = "requests", security(("bearer" = [])),
    params(("subject" = String, Path, description = "NATS subject, e.g. `plantd.echo.echo`"), ReqParams),
    request_body(content = Vec<u8>, description = "Sent as is (JSON for plantd services)", content_type = "application/json"),
    responses(
        (status = 200, description = "The reply body as is", content_type = "application/octet-stream"),
        (status = 400, description = "Bad subject or timeout, or the service said so", body = ErrorBody),
        (status = 403, description = "Refused by the NATS server", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 503, description = "No service answers on the subject", body = ErrorBody),
        (status = 504, description = "No reply in time (the outcome is unknown)", body = ErrorBody),
    ))]
pub async fn request(
    State(state): State<AppState>,
    Caller(session): Caller,
    Path(subject): Path<String>,
    params: QueryParams<ReqParams>,
    req: Request,
) -> ApiResult<Response> {
    checked_subject(&subject)?;
    let timeout = match params.0.timeout_ms {
        None => state.config.request_timeout(),
        Some(0) => return Err(ApiError::field("timeout_ms", "must be at least 1")),
        Some(ms) => Duration::from_millis(ms).min(MAX_TIMEOUT),
    };
    let body = read_body(req, &()).await?;
    let reply = crate::nats::request_raw(
        &session,
        &subject,
        async_nats::HeaderMap::new(),
        body,
        timeout,
    )
    .await?;
    let json = matches!(reply.payload.first(), Some(b'{' | b'['))
        && serde_json::from_slice::<serde_json::Value>(&reply.payload).is_ok();
    let content_type = if json {
        "application/json"
    } else {
        "application/octet-stream"
    };
    let mut response = (StatusCode::OK, reply.payload).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_concrete_subjects_are_sent_to() {
        assert!(checked_subject("plantd.echo.echo").is_ok());
        for bad in ["", "a..b", "a.*", "a.>", "a b", ".a"] {
            assert_eq!(
                checked_subject(bad).unwrap_err().0.field.as_deref(),
                Some("subject"),
                "{bad:?}"
            );
        }
    }
}
