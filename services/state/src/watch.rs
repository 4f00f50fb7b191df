//! Following state changes through the KV bucket, for any client (`plant state watch`,
//! tests, benchmarks), with no JetStream rights of its own.
//!
//! A person may not create consumers (a push consumer's deliver subject is not checked against
//! its creator's permissions, so that right would let anyone make the server publish onto any
//! subject; docs/identity.md). A watch is therefore asked of the state service
//! (`plantd.state.watch.<scope>`, allowed where the caller may read), which creates the consumer
//! and delivers it to `$PLANTD.watch.<scope>.<token>`; the watcher subscribes there first (the
//! server lets it only for scopes it may read), then asks.
//!
//! The watcher does what an ordered consumer does, itself: every delivery's reply subject
//! (`$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>…`) names the consumer
//! and both sequences. Anything else on the deliver subject — a message without such a reply,
//! or one of another consumer — is ignored (someone may have pointed a reply there). A gap in
//! the consumer sequence (a lost delivery, seen also through the heartbeat's
//! `Nats-Last-Consumer`), missed heartbeats (server restart, consumer gone) or a failed
//! request make it ask for a new consumer, on a new token, from the revision after the last
//! one it yielded; a bucket whose last revision is below that (recreated, revisions restarting
//! at 1) is followed from its current values instead. It drops every entry at or below the last
//! revision it yielded, so a replay never goes backwards (NATS-PITFALLS.md §4.2). Errors are
//! items, not the end of the stream.

use std::{pin::Pin, time::Duration};

use async_nats::{Client, Subscriber};
use futures::{Stream, StreamExt};
use plantd_schemas::state::v1::{WatchRequest, WatchResponse};
use plantd_shared::{
    call,
    codec::Encoding,
    delivery::{self, Checked},
    subjects,
};

use crate::kvkey;

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchFrom {
    /// Only changes made after the watch began.
    Now,
    /// The current value of every key (deletes included), then changes.
    Current,
    /// Every retained revision from this bucket revision on, then changes.
    Revision(u64),
}

/// Which keys to follow.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    /// The scope (its own keys, not sub-scopes') unless `subtree`.
    pub scope: String,
    /// Also follow every sub-scope.
    pub subtree: bool,
    /// Only keys starting with this.
    pub prefix: String,
    /// Start point.
    pub from: WatchFrom,
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    /// Set to a value.
    Put,
    /// Deleted.
    Delete,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// Scope of the key.
    pub scope: String,
    /// The key.
    pub key: String,
    /// Put or delete.
    pub op: ChangeOp,
    /// The value (empty for deletes).
    pub value: String,
    /// Bucket revision (stream sequence): grows with every change in the bucket.
    pub revision: u64,
}

/// A watch failure.
#[derive(Debug, thiserror::Error)]
#[error("watch of {bucket}: {message}")]
pub struct WatchError {
    /// Bucket.
    pub bucket: String,
    /// What failed.
    pub message: String,
}

/// How long the watcher waits for the state service to create a consumer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Heartbeats missed before the watcher asks for a new consumer.
const MISSED_HEARTBEATS: u32 = 3;

/// Pause before asking again after a failed request.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Starts a watch of `bucket` (the state service's KV bucket) through the state service on
/// `client`. Fails at once if the first watch cannot be created (no state service, no right to
/// read the scope); afterwards the stream ends only when the connection closes.
pub async fn watch(
    client: &Client,
    bucket: &str,
    spec: WatchSpec,
) -> Result<impl Stream<Item = Result<Change, WatchError>> + use<>, WatchError> {
    let err = |message: String| WatchError {
        bucket: bucket.to_string(),
        message,
    };
    crate::validate::scope(&spec.scope).map_err(|e| err(e.to_string()))?;
    let mut follower = Follower {
        client: client.clone(),
        stream: format!("KV_{bucket}"),
        subject_prefix: format!("$KV.{bucket}."),
        bucket: bucket.to_string(),
        spec,
        current: None,
        floor: 0,
    };
    let start = follower.spec.from;
    follower.open(start).await.map_err(err)?;
    Ok(futures::stream::unfold(follower, |mut f| async move {
        let item = f.next().await?;
        Some((item, f))
    }))
}

/// One consumer the watcher listens to.
struct Current {
    sub: Pin<Box<Subscriber>>,
    consumer: String,
    /// The consumer sequence the next delivery must carry.
    next_cseq: u64,
    heartbeat: Duration,
}

/// The watch's state between items.
struct Follower {
    client: Client,
    bucket: String,
    stream: String,
    subject_prefix: String,
    spec: WatchSpec,
    current: Option<Current>,
    /// The last revision yielded (or the one a `now` watch starts after).
    floor: u64,
}

impl Follower {
    /// Subscribes a new deliver subject and asks the state service for a consumer on it;
    /// returns the bucket's last revision at that moment.
    async fn open(&mut self, from: WatchFrom) -> Result<u64, String> {
        self.current = None;
        let token = nuid::next().to_string();
        let deliver = subjects::state::watch_deliver(&self.spec.scope, &token);
        let sub = self
            .client
            .subscribe(deliver)
            .await
            .map_err(|e| format!("cannot subscribe to the watch: {e}"))?;
        let (from_name, from_revision) = match from {
            WatchFrom::Now => ("now", 0),
            WatchFrom::Current => ("current", 0),
            WatchFrom::Revision(rev) => ("revision", rev.max(1)),
        };
        let reply: WatchResponse = call::request(
            &self.client,
            &subjects::state::key_op("watch", &self.spec.scope),
            &WatchRequest {
                token,
                subtree: self.spec.subtree,
                from: from_name.into(),
                from_revision,
            },
            Encoding::Protobuf,
            REQUEST_TIMEOUT,
        )
        .await
        .map_err(|e| format!("cannot start the watch (is the state service running?): {e}"))?;
        self.floor = match from {
            WatchFrom::Now => reply.last_revision,
            WatchFrom::Current => 0,
            WatchFrom::Revision(rev) => rev.saturating_sub(1),
        };
        self.current = Some(Current {
            sub: Box::pin(sub),
            consumer: reply.consumer,
            next_cseq: 1,
            heartbeat: Duration::from_secs(u64::from(reply.heartbeat_secs.max(1))),
        });
        Ok(reply.last_revision)
    }

    /// Asks for a new consumer after the last revision yielded (or from the current values if
    /// the bucket's revisions restarted below it: it was recreated).
    async fn reopen(&mut self) -> Result<(), String> {
        let floor = self.floor;
        let last = self.open(WatchFrom::Revision(floor + 1)).await?;
        if last < floor {
            tracing::info!(bucket = %self.bucket, "KV bucket was recreated; following its current values");
            self.open(WatchFrom::Current).await?;
        }
        Ok(())
    }

    /// The next change, error, or `None` once the connection is closed.
    async fn next(&mut self) -> Option<Result<Change, WatchError>> {
        loop {
            let Some(current) = self.current.as_mut() else {
                if let Err(message) = self.reopen().await {
                    tokio::time::sleep(RETRY_PAUSE).await;
                    return Some(Err(self.error(message)));
                }
                continue;
            };
            let patience = current.heartbeat * MISSED_HEARTBEATS;
            let message = match tokio::time::timeout(patience, current.sub.next()).await {
                Err(_) => {
                    self.current = None; // heartbeats missed: the consumer is gone
                    continue;
                }
                Ok(None) => return None,
                Ok(Some(message)) => message,
            };
            match self.accept(message) {
                Delivery::Change(change) => return Some(Ok(change)),
                Delivery::Skip => {}
                Delivery::Gap => self.current = None,
            }
        }
    }

    /// What one message on the deliver subject means.
    fn accept(&mut self, message: async_nats::Message) -> Delivery {
        let Some(current) = self.current.as_mut() else {
            return Delivery::Skip;
        };
        let stream_seq = match delivery::check(
            &message,
            &self.stream,
            &current.consumer,
            &mut current.next_cseq,
        ) {
            Checked::Next { stream_seq, .. } => stream_seq,
            Checked::Skip => return Delivery::Skip,
            Checked::Gap => return Delivery::Gap,
        };
        if stream_seq <= self.floor {
            return Delivery::Skip;
        }
        self.floor = stream_seq;
        match change(&message, &self.subject_prefix, stream_seq) {
            Some(c) if c.key.starts_with(&self.spec.prefix) => Delivery::Change(c),
            _ => Delivery::Skip,
        }
    }

    fn error(&self, message: String) -> WatchError {
        WatchError {
            bucket: self.bucket.clone(),
            message,
        }
    }
}

/// What a message on the deliver subject was.
enum Delivery {
    Change(Change),
    Skip,
    Gap,
}

/// The change a KV message records, or `None` for a subject outside the key encoding.
fn change(message: &async_nats::Message, subject_prefix: &str, revision: u64) -> Option<Change> {
    let kv_key = message.subject.strip_prefix(subject_prefix)?;
    let (scope, key) = kvkey::decode(kv_key).ok()?;
    // The KV API marks deletes and purges with a header; a put has none.
    let op = match message
        .headers
        .as_ref()
        .and_then(|h| h.get("KV-Operation"))
        .map(|v| v.as_str())
    {
        Some("DEL") | Some("PURGE") => ChangeOp::Delete,
        _ => ChangeOp::Put,
    };
    let value = match op {
        ChangeOp::Put => String::from_utf8_lossy(&message.payload).into_owned(),
        ChangeOp::Delete => String::new(),
    };
    Some(Change {
        scope,
        key,
        op,
        value,
        revision,
    })
}
