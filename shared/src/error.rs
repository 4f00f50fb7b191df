//! The error contract of every plantd reply (DESIGN.md, "Errors").
//!
//! A failed request gets the ADR-32 headers `Nats-Service-Error` (text) and
//! `Nats-Service-Error-Code` (an HTTP-like number) *and* a JSON body
//! `{"code":…,"message":"…","field":"…"}` ([`plantd_schemas::common::v1::ErrorReply`]), so
//! header-aware micro clients and plain `nats req` users both see what went wrong. Services
//! build a [`ServiceError`] from their own error enums in one place (`From` impls), never by
//! hand at each call site.

use std::fmt;

use plantd_schemas::common::v1::ErrorReply;

/// ADR-32 header carrying the error text.
pub const ERROR_HEADER: &str = "Nats-Service-Error";
/// ADR-32 header carrying the numeric error code.
pub const ERROR_CODE_HEADER: &str = "Nats-Service-Error-Code";

/// The error codes plantd uses on the wire, HTTP-like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 400: the request was malformed or a field was invalid.
    BadRequest,
    /// 401: the caller is not authenticated.
    Unauthorized,
    /// 403: the caller may not do this.
    Forbidden,
    /// 404: the addressed resource does not exist.
    NotFound,
    /// 409: a conflict (compare-and-set failed, already exists).
    Conflict,
    /// 413: a field or the payload is too large.
    TooLarge,
    /// 429: too many requests.
    TooManyRequests,
    /// 500: a bug or an unexpected failure inside the service.
    Internal,
    /// 503: a dependency is unavailable right now; retrying later may succeed.
    Unavailable,
    /// 504: the handler did not finish within the endpoint's deadline; the outcome of a write
    /// is unknown (it may still complete), so read before retrying one.
    Timeout,
}

impl ErrorCode {
    /// Every code, in numeric order.
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::TooLarge,
        ErrorCode::TooManyRequests,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
        ErrorCode::Timeout,
    ];

    /// The numeric code sent in `Nats-Service-Error-Code`.
    pub fn as_u16(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
            ErrorCode::Timeout => 504,
        }
    }

    /// The code for a number; unknown numbers map to [`ErrorCode::Internal`].
    pub fn from_u16(code: u16) -> ErrorCode {
        match code {
            400 => ErrorCode::BadRequest,
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            409 => ErrorCode::Conflict,
            413 => ErrorCode::TooLarge,
            429 => ErrorCode::TooManyRequests,
            503 => ErrorCode::Unavailable,
            504 => ErrorCode::Timeout,
            _ => ErrorCode::Internal,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_u16())
    }
}

/// A request failure as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// The wire code.
    pub code: ErrorCode,
    /// Lowercase, says what failed and with which input; never holds secrets.
    pub message: String,
    /// The request field that was wrong, if the error is about one.
    pub field: Option<String>,
}

impl ServiceError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ServiceError {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// A 400 about one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        ServiceError::new(ErrorCode::BadRequest, message).with_field(field)
    }

    /// Names the field the error is about.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The JSON body of the error reply.
    pub fn to_json_body(&self) -> Vec<u8> {
        let reply = ErrorReply {
            code: u32::from(self.code.as_u16()),
            message: self.message.clone(),
            field: self.field.clone().unwrap_or_default(),
        };
        serde_json::to_vec(&reply).expect("an ErrorReply of strings and numbers always serializes")
    }

    /// Rebuilds an error from a reply's headers and body (client side). `None` when the reply
    /// carries no `Nats-Service-Error-Code` header, i.e. is not an error.
    pub fn from_reply(headers: Option<&async_nats::HeaderMap>, body: &[u8]) -> Option<Self> {
        let headers = headers?;
        let code = headers
            .get(ERROR_CODE_HEADER)?
            .as_str()
            .trim()
            .parse::<u16>()
            .ok();
        let text = headers
            .get(ERROR_HEADER)
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        let body: Option<ErrorReply> = serde_json::from_slice(body).ok();
        let code = code.or_else(|| body.as_ref().and_then(|b| u16::try_from(b.code).ok()))?;
        let (message, field) = match body {
            Some(b) if !b.message.is_empty() => {
                (b.message, (!b.field.is_empty()).then_some(b.field))
            }
            _ => (text, None),
        };
        Some(ServiceError {
            code: ErrorCode::from_u16(code),
            message,
            field,
        })
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.message)
    }
}

impl std::error::Error for ServiceError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_body_has_code_message_and_field() {
        let err = ServiceError::invalid_field("key", "key must not be empty");
        let body: serde_json::Value = serde_json::from_slice(&err.to_json_body()).unwrap();
        assert_eq!(body["code"], 400);
        assert_eq!(body["message"], "key must not be empty");
        assert_eq!(body["field"], "key");
    }

    #[test]
    fn from_reply_reads_headers_and_body() {
        let err = ServiceError::new(ErrorCode::Conflict, "version mismatch");
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(ERROR_CODE_HEADER, "409");
        headers.insert(ERROR_HEADER, "version mismatch");
        let back = ServiceError::from_reply(Some(&headers), &err.to_json_body()).unwrap();
        assert_eq!(back, err);
        assert!(ServiceError::from_reply(None, b"{}").is_none());
        // Header-only error (another micro implementation): text from the header.
        let back = ServiceError::from_reply(Some(&headers), b"").unwrap();
        assert_eq!(back.message, "version mismatch");
    }

    #[test]
    fn codes_round_trip() {
        for code in [400, 401, 403, 404, 409, 413, 429, 500, 503] {
            assert_eq!(ErrorCode::from_u16(code).as_u16(), code);
        }
    }
}
