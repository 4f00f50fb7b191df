//! The client side of the request contract: send a request, tell the outcomes apart.
//!
//! Callers need three different answers (NATS-PITFALLS.md §2.1): *nobody serves this*
//! (`no responders`, instant: safe to retry elsewhere), *timed out* (unknown outcome: the
//! request may have been applied), and *the service said no* (a [`ServiceError`] rebuilt from
//! the ADR-32 headers and JSON body). The `plant` CLI, tests and benchmarks all use this.

use std::time::Duration;

use async_nats::{Client, HeaderMap, Message, RequestErrorKind};
use bytes::Bytes;

use crate::{
    codec::{Encoding, WireMessage},
    error::ServiceError,
};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No instance listens on the subject.
    #[error("no responders on {subject}: is the service running?")]
    NoResponders {
        /// The subject.
        subject: String,
    },
    /// No reply within the timeout; the request may or may not have been applied.
    #[error("no reply on {subject} within {timeout:?} (the request may still have been applied)")]
    TimedOut {
        /// The subject.
        subject: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The service answered with an error.
    #[error("{0}")]
    Service(ServiceError),
    /// The reply could not be decoded.
    #[error("cannot decode reply from {subject}: {message}")]
    Decode {
        /// The subject.
        subject: String,
        /// What was wrong.
        message: String,
    },
    /// The caller's circuit breaker for this capability is open: nothing was sent
    /// ([`crate::module::breaker`]).
    #[error("circuit open for {capability}: it failed repeatedly; next try in {retry_in:?}")]
    CircuitOpen {
        /// The capability.
        capability: String,
        /// When the breaker lets a trial call through.
        retry_in: Duration,
    },
    /// Any other client failure (invalid subject, payload too large, connection closed).
    #[error("request to {subject} failed: {message}")]
    Other {
        /// The subject.
        subject: String,
        /// What failed.
        message: String,
    },
}

/// Sends a raw request; an error reply becomes [`CallError::Service`].
pub async fn request_raw(
    client: &Client,
    subject: &str,
    headers: HeaderMap,
    payload: Bytes,
    timeout: Duration,
) -> Result<Message, CallError> {
    let mut headers = headers;
    crate::trace::inject_current(&mut headers);
    let request = async_nats::Request::new()
        .headers(headers)
        .payload(payload)
        .timeout(Some(timeout));
    let reply = client
        .send_request(subject.to_string(), request)
        .await
        .map_err(|err| match err.kind() {
            RequestErrorKind::NoResponders => CallError::NoResponders {
                subject: subject.to_string(),
            },
            RequestErrorKind::TimedOut => CallError::TimedOut {
                subject: subject.to_string(),
                timeout,
            },
            _ => CallError::Other {
                subject: subject.to_string(),
                message: err.to_string(),
            },
        })?;
    if let Some(err) = ServiceError::from_reply(reply.headers.as_ref(), &reply.payload) {
        return Err(CallError::Service(err));
    }
    Ok(reply)
}

/// Sends a typed request in `encoding` and decodes the typed reply.
pub async fn request<Req: WireMessage, Resp: WireMessage>(
    client: &Client,
    subject: &str,
    request: &Req,
    encoding: Encoding,
    timeout: Duration,
) -> Result<Resp, CallError> {
    let reply = request_raw(
        client,
        subject,
        encoding.headers(),
        encoding.encode(request),
        timeout,
    )
    .await?;
    Encoding::from_headers(reply.headers.as_ref())
        .decode(&reply.payload)
        .map_err(|err| CallError::Decode {
            subject: subject.to_string(),
            message: err.message,
        })
}
