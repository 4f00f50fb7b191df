//! Requests on a person's connection, with nats-server's refusals turned into 403.
//!
//! A refused publish never gets a reply; the server says so on the side (see
//! [`crate::session`]). Each call listens to its session's refusals from before it sends, and
//! ends with 403 as soon as one names its subject (or the session's reply inbox), instead of
//! waiting out the timeout and saying "outcome unknown" about something that never ran.

use std::future::Future;
use std::time::Duration;

use async_nats::{HeaderMap, Message};
use bytes::Bytes;
use plantd_shared::call;
use plantd_shared::codec::{Encoding, WireMessage};
use tokio::sync::broadcast;

use crate::error::{ApiError, ApiResult};
use crate::session::Session;

/// Whether a refusal text is about `subject` (or any subscription, e.g. the reply inbox).
/// The delete of a replaced ordered consumer is refused to people by design and harmless.
fn concerns(text: &str, subject: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    if lower.contains("\"$js.api.consumer.delete.") {
        return false;
    }
    text.contains(&format!("\"{subject}\"")) || lower.contains("for subscription to")
}

/// Waits for a refusal about `subject` on `refusals`.
pub async fn refusal(mut refusals: broadcast::Receiver<String>, subject: String) -> String {
    loop {
        match refusals.recv().await {
            Ok(text) if concerns(&text, &subject) => return text,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

/// Runs `call` (which publishes on `subject` over `session`'s connection), ending with 403
/// when the server refuses it.
pub async fn guarded<T, E, F>(session: &Session, subject: &str, call: F) -> ApiResult<T>
where
    E: Into<ApiError>,
    F: Future<Output = Result<T, E>>,
{
    let refusals = session.refusals.subscribe();
    tokio::select! {
        result = call => result.map_err(Into::into),
        text = refusal(refusals, subject.to_string()) => Err(ApiError::refused(&text)),
    }
}

/// A typed request (protobuf on the wire) on the person's connection.
pub async fn request<Req: WireMessage, Resp: WireMessage>(
    session: &Session,
    subject: &str,
    request: &Req,
    timeout: Duration,
) -> ApiResult<Resp> {
    guarded(
        session,
        subject,
        call::request(
            &session.client,
            subject,
            request,
            Encoding::Protobuf,
            timeout,
        ),
    )
    .await
}

/// A raw request on the person's connection.
pub async fn request_raw(
    session: &Session,
    subject: &str,
    headers: HeaderMap,
    payload: Bytes,
    timeout: Duration,
) -> ApiResult<Message> {
    guarded(
        session,
        subject,
        call::request_raw(&session.client, subject, headers, payload, timeout),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_matched_to_their_subject() {
        let text = r#"nats: Permissions Violation for Publish to "plantd.state.set.site2""#;
        assert!(concerns(text, "plantd.state.set.site2"));
        assert!(!concerns(text, "plantd.state.set.site1"));
        let sub = r#"nats: Permissions Violation for Subscription to "_INBOX_bob.x.*""#;
        assert!(concerns(sub, "anything"));
        let delete =
            r#"Permissions Violation for Publish to "$JS.API.CONSUMER.DELETE.KV_plantd-state.w""#;
        assert!(!concerns(
            delete,
            "$JS.API.CONSUMER.DELETE.KV_plantd-state.w"
        ));
    }
}
