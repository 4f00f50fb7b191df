//! Turns items that gave out into dead letters.
//!
//! nats-server stops delivering an item once its pipe's max deliveries are used up, publishes
//! a max-deliveries advisory and leaves the item in the work-queue stream. Advisories are core
//! NATS messages, at most once, so they are captured by a stream
//! ([`ADVISORY_STREAM`](pipe::ADVISORY_STREAM)) and read here with a durable consumer: an item
//! that gives out while this service is down is dead-lettered when it is back. For each
//! advisory the item is copied into the dead-letter stream (with a message id, so a repeat
//! writes nothing new), then deleted from the pipe, then the advisory is acknowledged. A crash
//! anywhere in between repeats the step, never loses the item.
//!
//! An item a worker dead-lettered itself ([`plantd_shared::pipe::Item::fail`]) has left the
//! pipe before any advisory, so the advisory finds nothing to do.

use std::time::Duration;

use async_nats::jetstream::{
    self, ErrorCode, consumer::PullConsumer, stream::DeleteMessageErrorKind,
    stream::DirectGetErrorKind,
};
use futures::StreamExt;
use plantd_shared::{
    pipe::{DeadLetterInfo, write_dead_letter},
    shutdown::Shutdown,
    subjects::pipe,
};
use serde::Deserialize;

/// Pause before reading the advisories again after an error.
const RETRY: Duration = Duration::from_secs(1);

/// The part of `io.nats.jetstream.advisory.v1.max_deliver` used here.
#[derive(Debug, Deserialize)]
struct MaxDeliveries {
    stream: String,
    consumer: String,
    stream_seq: u64,
    deliveries: u64,
}

/// Reads advisories until `shutdown`.
pub async fn run(js: jetstream::Context, shutdown: Shutdown) {
    while !shutdown.is_triggered() {
        tokio::select! {
            () = shutdown.wait() => break,
            result = read_advisories(&js) => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "dead-lettering paused; retrying");
                }
            }
        }
        tokio::select! {
            () = shutdown.wait() => break,
            () = tokio::time::sleep(RETRY) => {}
        }
    }
}

async fn read_advisories(js: &jetstream::Context) -> Result<(), String> {
    let consumer: PullConsumer = js
        .get_consumer_from_stream(pipe::ADVISORY_CONSUMER, pipe::ADVISORY_STREAM)
        .await
        .map_err(|e| format!("cannot open the advisory consumer: {e}"))?;
    let items = js
        .get_stream(pipe::STREAM)
        .await
        .map_err(|e| format!("cannot open stream {}: {e}", pipe::STREAM))?;
    let mut advisories = consumer
        .messages()
        .await
        .map_err(|e| format!("cannot read advisories: {e}"))?;
    while let Some(advisory) = advisories.next().await {
        let advisory = advisory.map_err(|e| format!("reading advisories: {e}"))?;
        match dead_letter(js, &items, &advisory.payload).await {
            Ok(()) => {
                if let Err(e) = advisory.double_ack().await {
                    tracing::warn!(error = %e, "cannot acknowledge an advisory; it comes again");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot dead-letter an item yet; retrying");
                let _ = advisory
                    .ack_with(jetstream::AckKind::Nak(Some(RETRY)))
                    .await;
            }
        }
    }
    Err("the advisory stream ended".into())
}

/// Dead-letters the item one advisory names; `Ok` when there is nothing (more) to do.
async fn dead_letter(
    js: &jetstream::Context,
    items: &jetstream::stream::Stream,
    advisory: &[u8],
) -> Result<(), String> {
    let advisory: MaxDeliveries = match serde_json::from_slice(advisory) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "ignoring an advisory that does not parse");
            return Ok(());
        }
    };
    if advisory.stream != pipe::STREAM {
        return Ok(());
    }
    let item = match items.direct_get(advisory.stream_seq).await {
        Ok(item) => item,
        // Acknowledged late, or dead-lettered by its worker: nothing left to keep.
        Err(e) if e.kind() == DirectGetErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot read item {}: {e}", advisory.stream_seq)),
    };
    let reason = format!(
        "no worker acknowledged it in {} deliveries (max deliveries of pipe {})",
        advisory.deliveries, advisory.consumer
    );
    let info = DeadLetterInfo {
        pipe: &advisory.consumer,
        pipe_seq: advisory.stream_seq,
        deliveries: advisory.deliveries,
        reason: &reason,
    };
    let dead_seq = write_dead_letter(js, &info, Some(&item.headers), item.payload)
        .await
        .map_err(|e| e.to_string())?;
    match items.delete_message(advisory.stream_seq).await {
        Ok(_) => {}
        Err(e) if is_no_message(&e) => {}
        Err(e) => return Err(format!("cannot remove item {}: {e}", advisory.stream_seq)),
    }
    tracing::warn!(
        pipe = %advisory.consumer,
        seq = advisory.stream_seq,
        deliveries = advisory.deliveries,
        dead_letter = dead_seq,
        "item dead-lettered"
    );
    Ok(())
}

fn is_no_message(e: &jetstream::stream::DeleteMessageError) -> bool {
    matches!(e.kind(), DeleteMessageErrorKind::JetStream(js) if js.error_code() == ErrorCode::NO_MESSAGE_FOUND)
}
