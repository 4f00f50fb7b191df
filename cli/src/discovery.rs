//! Asking one service a micro discovery verb (`$SRV.PING|INFO.<name>`), for commands that need
//! to know whether it runs or what it announces in its metadata (`plant up` prints the state
//! durability, `plant bench --server` picks the state bucket and durability).

use std::time::Duration;

use bytes::Bytes;
use plantd_shared::subjects;
use serde::de::DeserializeOwned;

/// How long a discovery question waits for its answer.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// The reply of one instance of `name` to `verb`, decoded as `T`; `None` when none answers in
/// [`TIMEOUT`] or the reply is not a `T`.
pub async fn ask<T: DeserializeOwned>(
    client: &async_nats::Client,
    verb: &str,
    name: &str,
) -> Option<T> {
    let subject = subjects::srv(verb, Some(name), None);
    let reply = tokio::time::timeout(TIMEOUT, client.request(subject, Bytes::new()))
        .await
        .ok()?
        .ok()?;
    serde_json::from_slice(&reply.payload).ok()
}
