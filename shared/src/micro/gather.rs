//! Asking every instance a discovery verb (`$SRV.PING|INFO|STATS[.<name>]`) and gathering the
//! replies, for clients (`plant services`, the web-api bridge).
//!
//! A discovery request reaches every instance, and nothing says how many there are, so replies
//! are gathered until the timeout, or until no new reply came for [`QUIET`] after the first.

use std::time::Duration;

use futures::StreamExt as _;
use serde::de::DeserializeOwned;

use crate::subjects;

/// Quiet period after the last reply before gathering stops waiting.
pub const QUIET: Duration = Duration::from_millis(250);

/// Sends one discovery request and gathers every instance's reply (malformed ones skipped).
pub async fn gather<T: DeserializeOwned>(
    client: &async_nats::Client,
    verb: &str,
    name: Option<&str>,
    timeout: Duration,
) -> Result<Vec<T>, async_nats::Error> {
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await?;
    client
        .publish_with_reply(subjects::srv(verb, name, None), inbox, bytes::Bytes::new())
        .await?;
    client.flush().await?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut found = Vec::new();
    loop {
        let wait_until = if found.is_empty() {
            deadline
        } else {
            deadline.min(tokio::time::Instant::now() + QUIET)
        };
        match tokio::time::timeout_at(wait_until, replies.next()).await {
            // The server's "no responders" status when no instance runs: nothing to gather.
            Ok(Some(msg)) if msg.status.is_some() && msg.payload.is_empty() => break,
            Ok(Some(msg)) => match serde_json::from_slice::<T>(&msg.payload) {
                Ok(reply) => found.push(reply),
                Err(err) => tracing::warn!(error = %err, "ignoring malformed discovery reply"),
            },
            Ok(None) | Err(_) => break,
        }
    }
    Ok(found)
}
