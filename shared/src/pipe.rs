//! Pipelines for modules: push work items, take them as a worker, and dead-letter what fails.
//!
//! The old plantd's PUSH/PULL pipelines lost whatever was in flight when a worker died. Here a
//! pipe is a durable pull consumer (named after the pipe) on the work-queue stream
//! [`STREAM`](subjects::pipe::STREAM): an item stays in the stream until a worker acknowledges
//! it, each delivery goes to exactly one worker, an item not acknowledged within the pipe's ack
//! wait (a worker killed, hung or partitioned) goes to another one, and after the pipe's max
//! deliveries it becomes a dead letter in [`DLQ_STREAM`](subjects::pipe::DLQ_STREAM) with the
//! reason, from which `plant pipe dlq retry` puts it back. The bus service creates the streams
//! and consumers from its config (docs/pipelines.md); this module is the producer's and the
//! worker's side.
//!
//! * [`push`] stores an item and returns its sequence once the stream has it (with an optional
//!   id, a repeated push within the stream's duplicate window is stored once).
//! * [`Worker::next`] waits for the next item; [`Item::ack`] waits for the server to confirm the
//!   ack, so an acknowledged item is never redelivered; [`Item::retry_after`] asks for a
//!   redelivery after a delay; [`Item::fail`] does that too, unless this was the last delivery,
//!   in which case it dead-letters the item with the worker's own reason rather than leaving
//!   the server to say only "max deliveries".
//! * A dead letter is written *before* the item is acknowledged, with a message id derived
//!   from the item's sequence, so a crash between the two repeats neither the item's work nor
//!   its dead letter.

use std::time::Duration;

use async_nats::{
    HeaderMap,
    jetstream::{self, AckKind, consumer::PullConsumer, message::PublishMessage as Publish},
};
use bytes::Bytes;
use futures::StreamExt;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::subjects::pipe;

/// Header of a dead letter: the pipe it failed on.
pub const HEADER_PIPE: &str = "Plantd-Pipe";
/// Header of a dead letter: the item's sequence in the pipe.
pub const HEADER_PIPE_SEQ: &str = "Plantd-Pipe-Seq";
/// Header of a dead letter: how many times the item was delivered.
pub const HEADER_DELIVERIES: &str = "Plantd-Deliveries";
/// Header of a dead letter: why it failed.
pub const HEADER_REASON: &str = "Plantd-Reason";
/// Header of a dead letter: when it was dead-lettered (RFC 3339).
pub const HEADER_DEAD_AT: &str = "Plantd-Dead-At";

/// Headers the dead-letter machinery adds; a retried item is pushed without them.
pub const DEAD_LETTER_HEADERS: &[&str] = &[
    HEADER_PIPE,
    HEADER_PIPE_SEQ,
    HEADER_DELIVERIES,
    HEADER_REASON,
    HEADER_DEAD_AT,
    "Nats-Msg-Id",
];

/// Headers nats-server adds to a message read by direct get; not the item's own.
const DIRECT_GET_HEADERS: &[&str] = &[
    "Nats-Stream",
    "Nats-Sequence",
    "Nats-Time-Stamp",
    "Nats-Subject",
    "Nats-Last-Sequence",
    "Nats-Num-Pending",
];

/// The item's own headers: `headers` without what dead-lettering added
/// ([`DEAD_LETTER_HEADERS`]) or a direct get adds.
pub fn own_headers(headers: &HeaderMap) -> HeaderMap {
    let mut own = HeaderMap::new();
    for (name, values) in headers.iter() {
        let added = DEAD_LETTER_HEADERS
            .iter()
            .chain(DIRECT_GET_HEADERS)
            .any(|d| d.eq_ignore_ascii_case(name.as_ref()));
        if !added {
            for value in values {
                own.append(name.clone(), value.clone());
            }
        }
    }
    own
}

/// Longest reason kept with a dead letter (longer ones are cut at a character boundary).
pub const MAX_REASON_BYTES: usize = 1024;

/// A pipeline operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    /// A pipe name that cannot be used.
    #[error("pipe: {0}")]
    InvalidName(String),
    /// No stream takes items for this pipe: it is not in the bus service's config, or the bus
    /// service has not created it yet.
    #[error("no pipe {0:?}: it is not configured (bus service config `pipes`) or not created yet")]
    NoSuchPipe(String),
    /// NATS refused or failed the operation.
    #[error("{0}")]
    Nats(String),
}

fn check_name(name: &str) -> Result<(), PipeError> {
    pipe::validate_name(name).map_err(PipeError::InvalidName)
}

/// Pushes `payload` onto `pipe` and returns its sequence once the stream stored it. With `id`,
/// a second push of the same id within the stream's duplicate window is not stored again (the
/// first one's sequence is returned).
pub async fn push(
    js: &jetstream::Context,
    pipe_name: &str,
    id: Option<&str>,
    headers: Option<HeaderMap>,
    payload: Bytes,
) -> Result<u64, PipeError> {
    check_name(pipe_name)?;
    let mut publish = Publish::build().payload(payload);
    if let Some(h) = headers {
        publish = publish.headers(h);
    }
    if let Some(id) = id {
        publish = publish.message_id(id);
    }
    let subject = pipe::items(pipe_name);
    let ack = js
        .send_publish(subject, publish)
        .await
        .map_err(|e| PipeError::Nats(format!("cannot push onto pipe {pipe_name}: {e}")))?
        .await
        .map_err(|e| match e.kind() {
            jetstream::context::PublishErrorKind::StreamNotFound => {
                PipeError::NoSuchPipe(pipe_name.to_string())
            }
            _ => PipeError::Nats(format!("pipe {pipe_name} did not store the item: {e}")),
        })?;
    Ok(ack.sequence)
}

/// What a dead letter records besides the item itself.
#[derive(Debug, Clone)]
pub struct DeadLetterInfo<'a> {
    /// The pipe.
    pub pipe: &'a str,
    /// The item's sequence in the pipe.
    pub pipe_seq: u64,
    /// Deliveries so far.
    pub deliveries: u64,
    /// Why it failed.
    pub reason: &'a str,
}

/// Writes a dead letter: the item's payload and headers plus [`DEAD_LETTER_HEADERS`], with a
/// message id made from the pipe and sequence so writing it twice keeps one. Returns its
/// sequence in the dead-letter stream.
pub async fn write_dead_letter(
    js: &jetstream::Context,
    info: &DeadLetterInfo<'_>,
    item_headers: Option<&HeaderMap>,
    payload: Bytes,
) -> Result<u64, PipeError> {
    let mut headers = item_headers.map(own_headers).unwrap_or_default();
    let dead_at = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default();
    headers.insert(HEADER_PIPE, info.pipe);
    headers.insert(HEADER_PIPE_SEQ, info.pipe_seq.to_string().as_str());
    headers.insert(HEADER_DELIVERIES, info.deliveries.to_string().as_str());
    headers.insert(HEADER_REASON, header_safe(info.reason).as_str());
    headers.insert(HEADER_DEAD_AT, dead_at.as_str());
    let publish = Publish::build()
        .payload(payload)
        .headers(headers)
        .message_id(format!("dlq:{}:{}", info.pipe, info.pipe_seq));
    let ack = js
        .send_publish(pipe::dead_letters(info.pipe), publish)
        .await
        .map_err(|e| PipeError::Nats(format!("cannot write dead letter: {e}")))?
        .await
        .map_err(|e| PipeError::Nats(format!("dead letter not stored: {e}")))?;
    Ok(ack.sequence)
}

/// A reason fit for one header value: one line, at most [`MAX_REASON_BYTES`].
fn header_safe(reason: &str) -> String {
    let one_line: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut end = one_line.len().min(MAX_REASON_BYTES);
    while !one_line.is_char_boundary(end) {
        end -= 1;
    }
    let cut = one_line[..end].trim();
    if cut.is_empty() {
        "no reason given".to_string()
    } else {
        cut.to_string()
    }
}

/// How a worker takes items.
#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    /// Items fetched ahead of the one being worked on. Every fetched item's ack wait is
    /// running, so keep this at 1 (the default) unless items are short and many.
    pub prefetch: usize,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions { prefetch: 1 }
    }
}

/// A worker of one pipe. Every worker of a pipe shares the pipe's consumer, so each item goes
/// to exactly one of them.
pub struct Worker {
    pipe: String,
    max_deliver: i64,
    js: jetstream::Context,
    messages: jetstream::consumer::pull::Stream,
}

impl Worker {
    /// Binds to `pipe`'s consumer (created by the bus service) and starts pulling.
    pub async fn bind(
        js: &jetstream::Context,
        pipe_name: &str,
        options: WorkerOptions,
    ) -> Result<Worker, PipeError> {
        check_name(pipe_name)?;
        let consumer: PullConsumer = js
            .get_consumer_from_stream(pipe_name, pipe::STREAM)
            .await
            .map_err(|e| {
                PipeError::Nats(format!(
                    "no consumer for pipe {pipe_name} (is it in the bus service's config?): {e}"
                ))
            })?;
        let max_deliver = consumer.cached_info().config.max_deliver;
        let messages = consumer
            .stream()
            .max_messages_per_batch(options.prefetch.max(1))
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| PipeError::Nats(format!("cannot pull from pipe {pipe_name}: {e}")))?;
        Ok(Worker {
            pipe: pipe_name.to_string(),
            max_deliver,
            js: js.clone(),
            messages,
        })
    }

    /// The next item; `None` once the pull stream has ended for good.
    pub async fn next(&mut self) -> Option<Result<Item, PipeError>> {
        loop {
            let message = match self.messages.next().await? {
                Ok(message) => message,
                Err(e) => {
                    return Some(Err(PipeError::Nats(format!(
                        "pulling from pipe {}: {e}",
                        self.pipe
                    ))));
                }
            };
            let Ok(info) = message.info() else {
                // Not a delivery of this consumer (no ack subject): nothing to work on.
                tracing::warn!(pipe = %self.pipe, subject = %message.subject, "skipping a message without delivery info");
                continue;
            };
            let (seq, deliveries) = (info.stream_sequence, info.delivered.max(1) as u64);
            return Some(Ok(Item {
                pipe: self.pipe.clone(),
                seq,
                deliveries,
                last_delivery: self.max_deliver > 0 && deliveries >= self.max_deliver as u64,
                js: self.js.clone(),
                message,
            }));
        }
    }
}

/// One delivery of an item to this worker. Finish it with exactly one of [`Item::ack`],
/// [`Item::retry_after`], [`Item::fail`] or [`Item::dead_letter`]; dropping it unfinished
/// leaves the item to be redelivered after the pipe's ack wait.
pub struct Item {
    pipe: String,
    seq: u64,
    deliveries: u64,
    last_delivery: bool,
    js: jetstream::Context,
    message: jetstream::Message,
}

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Item")
            .field("pipe", &self.pipe)
            .field("seq", &self.seq)
            .field("deliveries", &self.deliveries)
            .finish_non_exhaustive()
    }
}

impl Item {
    /// The item's sequence in the pipe (stable across redeliveries).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// How many times it has been delivered, this time included.
    pub fn deliveries(&self) -> u64 {
        self.deliveries
    }

    /// Whether this is the pipe's last delivery of it.
    pub fn is_last_delivery(&self) -> bool {
        self.last_delivery
    }

    /// The payload as pushed.
    pub fn payload(&self) -> &Bytes {
        &self.message.payload
    }

    /// The headers as pushed.
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.message.headers.as_ref()
    }

    /// Work is going on: restart the ack wait.
    pub async fn in_progress(&self) -> Result<(), PipeError> {
        self.message
            .ack_with(AckKind::Progress)
            .await
            .map_err(|e| self.nats("cannot extend", e))
    }

    /// Done: the item leaves the pipe. Returns once the server confirmed it.
    pub async fn ack(self) -> Result<(), PipeError> {
        self.message
            .double_ack()
            .await
            .map_err(|e| self.nats("cannot acknowledge", e))
    }

    /// Not now: deliver it again (to any worker) after `delay`.
    pub async fn retry_after(self, delay: Duration) -> Result<(), PipeError> {
        self.message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(|e| self.nats("cannot hand back", e))
    }

    /// Failed: retry after `delay`, or, if this was the last delivery, dead-letter it with
    /// `reason`. Returns whether it was dead-lettered.
    pub async fn fail(self, reason: &str, delay: Duration) -> Result<bool, PipeError> {
        if self.last_delivery {
            self.dead_letter(reason).await.map(|_| true)
        } else {
            self.retry_after(delay).await.map(|()| false)
        }
    }

    /// Gives up at once: writes the dead letter with `reason`, then removes the item from the
    /// pipe. Returns the dead letter's sequence.
    pub async fn dead_letter(self, reason: &str) -> Result<u64, PipeError> {
        let info = DeadLetterInfo {
            pipe: &self.pipe,
            pipe_seq: self.seq,
            deliveries: self.deliveries,
            reason,
        };
        let seq = write_dead_letter(
            &self.js,
            &info,
            self.message.headers.as_ref(),
            self.message.payload.clone(),
        )
        .await?;
        self.message
            .double_ack()
            .await
            .map_err(|e| self.nats("dead letter written but cannot acknowledge", e))?;
        Ok(seq)
    }

    fn nats(&self, what: &str, e: impl std::fmt::Display) -> PipeError {
        PipeError::Nats(format!(
            "{what} item {} of pipe {}: {e}",
            self.seq, self.pipe
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_one_bounded_line() {
        assert_eq!(header_safe("bad\nvalue\r"), "bad value");
        assert_eq!(header_safe("  "), "no reason given");
        let long = "é".repeat(MAX_REASON_BYTES);
        let cut = header_safe(&long);
        assert!(cut.len() <= MAX_REASON_BYTES && cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn pipe_names_are_checked() {
        assert!(check_name("jobs").is_ok());
        let err = check_name("Jobs.x").unwrap_err().to_string();
        assert!(err.starts_with("pipe: pipe name"), "{err}");
    }
}
