//! The `/api/v1` handlers, one module per resource, and what they share: the JSON body
//! and query extractors (errors name the field; too large is 413) and time formatting.

pub mod auth;
pub mod bus;
pub mod logs;
pub mod req;
pub mod services;
pub mod state;
pub mod watch;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use plantd_schemas::wkt::Timestamp;
use plantd_shared::ErrorCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use crate::error::ApiError;

/// The error body, the same as over NATS.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// HTTP-like code, equal to the response status.
    pub code: u32,
    /// What failed, lowercase, never a secret.
    pub message: String,
    /// The input that was wrong, when the error is about one; empty otherwise.
    pub field: String,
}

/// A JSON request body; a malformed body is a 400 naming the field, a body over
/// `max_body_bytes` a 413.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Query parameters; a malformed one is a 400 naming it.
pub struct QueryParams<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(QueryParams)
            .map_err(|err| {
                let path = err.path().to_string();
                let field = if path == "." || path.is_empty() {
                    "query".to_string()
                } else {
                    path
                };
                ApiError::field(&field, format!("invalid query parameter: {}", err.inner()))
            })
    }
}

/// Reads a whole body within the configured limit (413 past it).
pub async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::TooLarge,
                "the request body is too large (max_body_bytes)",
            )
            .with_field("body")
        } else {
            ApiError::field("body", format!("cannot read the request body: {rejection}"))
        }
    })
}

/// Parses JSON, naming the field that is wrong.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.inner().to_string();
        // A missing field is reported at its parent; name the field itself.
        let missing = inner
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        let field = match (path.as_str(), missing) {
            ("." | "" | "?", Some(name)) => name.to_string(),
            ("." | "" | "?", None) => "body".to_string(),
            (_, Some(name)) => format!("{path}.{name}"),
            (_, None) => path,
        };
        ApiError::field(&field, format!("invalid JSON body: {inner}"))
    })
}

impl ApiError {
    /// Names the field the error is about.
    pub fn with_field(self, field: &str) -> ApiError {
        ApiError(self.0.with_field(field))
    }
}

/// A protobuf timestamp as RFC 3339.
pub fn rfc3339(ts: Option<&Timestamp>) -> Option<String> {
    ts.and_then(plantd_shared::timestamp::rfc3339)
}

/// Unix seconds as RFC 3339.
pub fn rfc3339_unix(seconds: i64) -> String {
    rfc3339(Some(&Timestamp { seconds, nanos: 0 })).unwrap_or_default()
}
