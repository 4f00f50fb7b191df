//! Following state changes through the KV bucket, for any client (`plant state watch`,
//! tests, benchmarks).
//!
//! What a watcher needs from NATS, so identity can grant it per scope: the KV API on the
//! bucket (`$JS.API.STREAM.INFO.KV_plantd-state`, `$JS.API.CONSUMER.CREATE.KV_plantd-state.>`,
//! `$JS.API.DIRECT.GET.KV_plantd-state.>`), delivery to its own inbox, and the subjects
//! `$KV.plantd-state.<encoded scope>.*` as the consumer's filter (see [`crate::kvkey`]).
//!
//! The watch is an ordered push consumer on the bucket's stream, like async-nats' `kv.watch*()`,
//! but created here with a **name**: async-nats creates its first watch consumer with the
//! unnamed subject `$JS.API.CONSUMER.CREATE.KV_<bucket>`, which carries no filter and so
//! cannot be granted per scope. With a name the request goes to
//! `$JS.API.CONSUMER.CREATE.KV_<bucket>.<name>.$KV.<bucket>.<filter>`, which identity grants
//! for the scopes a role covers (nats-server refuses a body whose filter differs from the
//! subject's), so a viewer of `site1` can watch `site1` and not `site2` (docs/identity.md).
//!
//! An ordered consumer may replay revisions after a reconnect or server restart
//! (NATS-PITFALLS.md §4.2). This wrapper therefore drops every entry at or below the last
//! revision it delivered, and, for "updates only", at or below the bucket's last sequence when
//! the watch began. Errors are items, not the end of the stream.

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, ReplayPolicy, push},
};
use futures::{Stream, StreamExt};

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

/// Starts a watch; the stream ends only when the connection closes.
pub async fn watch(
    js: &jetstream::Context,
    bucket: &str,
    spec: WatchSpec,
) -> Result<impl Stream<Item = Result<Change, WatchError>> + use<>, WatchError> {
    let err = |message: String| WatchError {
        bucket: bucket.to_string(),
        message,
    };
    crate::validate::scope(&spec.scope).map_err(|e| err(e.to_string()))?;
    let store = js.get_key_value(bucket).await.map_err(|e| {
        err(format!(
            "cannot open bucket (is the state service running?): {e}"
        ))
    })?;
    let filter = if spec.subtree {
        kvkey::subtree_filter(&spec.scope)
    } else {
        kvkey::scope_filter(&spec.scope)
    };
    let mut floor = 0;
    let deliver_policy = match spec.from {
        // From the revision after the last one stored, not "updates only": nothing committed
        // between reading the last revision and the consumer's creation is missed.
        WatchFrom::Now => {
            floor = store
                .status()
                .await
                .map_err(|e| err(e.to_string()))?
                .info
                .state
                .last_sequence;
            DeliverPolicy::ByStartSequence {
                start_sequence: floor + 1,
            }
        }
        WatchFrom::Current => DeliverPolicy::LastPerSubject,
        // The floor guards against the replay-from-start after a reconnect (PITFALLS §4.2).
        WatchFrom::Revision(rev) => {
            floor = rev.saturating_sub(1);
            DeliverPolicy::ByStartSequence {
                start_sequence: rev.max(1),
            }
        }
    };
    let subject_prefix = format!("$KV.{bucket}.");
    let config = push::OrderedConfig {
        deliver_subject: js.client().new_inbox(),
        name: Some(consumer_name()),
        description: Some("plantd state watch".to_string()),
        filter_subject: format!("{subject_prefix}{filter}"),
        replay_policy: ReplayPolicy::Instant,
        deliver_policy,
        ..Default::default()
    };
    let messages = js
        .create_consumer_on_stream(config, format!("KV_{bucket}"))
        .await
        .map_err(|e| err(format!("cannot create the watch consumer: {e}")))?
        .messages()
        .await
        .map_err(|e| err(format!("cannot subscribe to the watch: {e}")))?;
    let bucket = bucket.to_string();
    let prefix = spec.prefix;
    Ok(messages.filter_map(move |item| {
        let out = match item {
            Err(e) => Some(Err(WatchError {
                bucket: bucket.clone(),
                message: e.to_string(),
            })),
            Ok(message) => match message.info().map(|info| info.stream_sequence) {
                Err(e) => Some(Err(WatchError {
                    bucket: bucket.clone(),
                    message: format!("message without JetStream metadata: {e}"),
                })),
                Ok(revision) if revision <= floor => None,
                Ok(revision) => {
                    floor = revision;
                    change(&message, &subject_prefix, revision)
                        .filter(|c| c.key.starts_with(&prefix))
                        .map(Ok)
                }
            },
        };
        futures::future::ready(out)
    }))
}

/// A consumer name no other watch uses (the server keys consumers by name).
fn consumer_name() -> String {
    format!("plantd_watch_{}", nuid::next())
}

/// The change a KV message records, or `None` for a subject outside the key encoding.
fn change(message: &jetstream::Message, subject_prefix: &str, revision: u64) -> Option<Change> {
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
