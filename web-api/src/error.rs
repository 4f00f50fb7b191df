//! HTTP errors with the body plantd uses over NATS (`{"code","message","field"}`), so a
//! person sees the same error whichever way they came in; the status is the code.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plantd_shared::call::CallError;
use plantd_shared::{ErrorCode, ServiceError};

/// An error reply of the bridge.
#[derive(Debug)]
pub struct ApiError(pub ServiceError);

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError(ServiceError::new(code, message))
    }

    /// A 400 naming `field`.
    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError(ServiceError::invalid_field(field, message))
    }

    /// 401 with `message`.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unauthorized, message)
    }

    /// 404 with `message`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }

    /// 403 for a refusal by nats-server: its own text, and what it means.
    pub fn refused(server_text: &str) -> ApiError {
        ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "permission denied by the NATS server ({}): your roles do not grant this",
                server_text.trim().trim_start_matches("nats: ")
            ),
        )
    }

    /// The HTTP status of the error.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.code.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> ApiError {
        ApiError(err)
    }
}

impl From<CallError> for ApiError {
    fn from(err: CallError) -> ApiError {
        match err {
            CallError::Service(e) => ApiError(e),
            CallError::NoResponders { subject } => ApiError::new(
                ErrorCode::Unavailable,
                format!("no responders on {subject}: is the service running?"),
            ),
            e @ CallError::TimedOut { .. } => ApiError::new(ErrorCode::Timeout, e.to_string()),
            e @ CallError::CircuitOpen { .. } => {
                ApiError::new(ErrorCode::Unavailable, e.to_string())
            }
            e @ (CallError::Decode { .. } | CallError::Other { .. }) => {
                ApiError::new(ErrorCode::Internal, e.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, self.0.to_json_body()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"plantd\""),
            );
        }
        response
    }
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
