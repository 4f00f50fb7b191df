//! Server errors as a test sees them.
//!
//! nats-server reports a refused publish or subscription only as an `-ERR` on the connection
//! (`Permissions Violation for Publish to "…"`), which async-nats hands to the event callback,
//! never to the call that caused it. Authorization tests therefore forward every event to a
//! channel and wait for the refusal they expect; this is the one waiter they share.

use std::time::Duration;

use async_nats::{Event, ServerError};
use tokio::sync::mpsc;

/// The events of one connection, forwarded by its event callback.
pub type Events = mpsc::UnboundedReceiver<Event>;

/// The text of the first server error within `wait` containing `needle` (case-insensitive);
/// `None` if none came (or the connection's events ended).
pub async fn server_error(events: &mut Events, needle: &str, wait: Duration) -> Option<String> {
    let needle = needle.to_lowercase();
    tokio::time::timeout(wait, async {
        while let Some(event) = events.recv().await {
            if let Event::ServerError(ServerError::Other(text)) = &event
                && text.to_lowercase().contains(&needle)
            {
                return Some(text.clone());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}
