//! The JetStream side of the mirror: the bucket, publishing one change, and reading back
//! which change a key's last message came from.

use async_nats::{
    HeaderMap,
    jetstream::{self, context::PublishAckFuture, kv, message::PublishMessage, stream::Stream},
};

use super::MirrorError;
use crate::{
    kvkey,
    store::{OutboxOp, OutboxRow},
};

/// Header naming the change (outbox sequence) a KV message mirrors.
pub const CHANGE_SEQ_HEADER: &str = "Plantd-Change-Seq";

/// Header naming the database (`db_id`) whose change a KV message mirrors: change sequences
/// of two databases cannot be compared, so a message from another database never counts as
/// reflecting one of ours.
pub const DB_HEADER: &str = "Plantd-Db";

/// The bucket's name and limits.
#[derive(Debug, Clone)]
pub struct BucketSettings {
    /// Bucket name (`plantd-state`).
    pub name: String,
    /// Revisions kept per key.
    pub history: i64,
    /// Largest value.
    pub max_value_bytes: usize,
    /// Copies a NATS cluster keeps.
    pub replicas: usize,
}

/// Room for the mirror's headers (`Nats-Msg-Id`, `Plantd-Change-Seq`, `Plantd-Db`,
/// `KV-Operation`) on top of the largest value: the server checks headers plus payload against
/// the bucket's max_value_size and the connection's max_payload.
pub const HEADER_ROOM: usize = 4096;

/// Why the server cannot take the largest value this service accepts, if it cannot: a mirror
/// message is the value plus [`HEADER_ROOM`], and one over the connection's `max_payload` would
/// stop the mirror at that row for good. `max_payload` 0 means "not connected yet": unknown.
pub fn payload_problem(max_value_bytes: usize, max_payload: usize) -> Option<String> {
    let needed = max_value_bytes.saturating_add(HEADER_ROOM);
    (max_payload > 0 && needed > max_payload).then(|| {
        format!(
            "max_value_bytes ({max_value_bytes}) plus {HEADER_ROOM} bytes of mirror headers is \
             over the NATS server's max_payload ({max_payload}): set max_value_bytes to at most \
             {} or raise max_payload in the server's config",
            max_payload.saturating_sub(HEADER_ROOM)
        )
    })
}

/// Opens the bucket, creating it (file storage) if missing and updating its limits if the
/// settings changed (e.g. a larger `max_value_bytes` after a restart).
pub async fn open(
    js: &jetstream::Context,
    settings: &BucketSettings,
) -> Result<Stream, MirrorError> {
    let max_value_size = settings.max_value_bytes.saturating_add(HEADER_ROOM);
    let store = js
        .create_or_update_key_value(kv::Config {
            bucket: settings.name.clone(),
            description: "plantd state, mirrored from the state service's SQLite".into(),
            history: settings.history,
            max_value_size: i32::try_from(max_value_size).unwrap_or(i32::MAX),
            storage: jetstream::stream::StorageType::File,
            num_replicas: settings.replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| {
            MirrorError::publish(format!("cannot open KV bucket {}: {e}", settings.name))
        })?;
    Ok(store.stream)
}

/// Whether the bucket's stream still exists (a wiped or replaced server loses it).
pub async fn exists(stream: &Stream) -> Result<bool, MirrorError> {
    let mut stream = stream.clone();
    match stream.info().await {
        Ok(_) => Ok(true),
        Err(err) if err.to_string().contains("not found") => Ok(false),
        Err(err) => Err(MirrorError::publish(err)),
    }
}

/// `$KV.<bucket>.<encoded scope>.<encoded key>`.
fn subject(bucket: &str, row: &OutboxRow) -> String {
    format!("$KV.{bucket}.{}", kvkey::encode(&row.scope, &row.key))
}

fn message(db_id: &str, row: &OutboxRow) -> PublishMessage {
    let mut headers = HeaderMap::new();
    headers.insert(CHANGE_SEQ_HEADER, row.seq.to_string().as_str());
    headers.insert(DB_HEADER, db_id);
    if let Some(traceparent) = &row.trace {
        // Watchers can join the writer's trace.
        headers.insert("traceparent", traceparent.as_str());
    }
    let payload = match row.op {
        OutboxOp::Put => row.value.clone().unwrap_or_default().into_bytes().into(),
        OutboxOp::Del => {
            headers.insert("KV-Operation", "DEL");
            bytes::Bytes::new()
        }
    };
    PublishMessage::build().headers(headers).payload(payload)
}

/// Publishes one change with its deterministic `Nats-Msg-Id`; the returned future is the ack.
pub async fn publish(
    js: &jetstream::Context,
    bucket: &str,
    db_id: &str,
    row: &OutboxRow,
) -> Result<PublishAckFuture, MirrorError> {
    js.send_publish(
        subject(bucket, row),
        message(db_id, row).message_id(format!("{db_id}.{}", row.seq)),
    )
    .await
    .map_err(MirrorError::publish)
}

/// Publishes a reconcile correction (no msg id: the same change sequence labels many keys).
pub async fn publish_correction(
    js: &jetstream::Context,
    bucket: &str,
    db_id: &str,
    row: &OutboxRow,
) -> Result<PublishAckFuture, MirrorError> {
    js.send_publish(subject(bucket, row), message(db_id, row))
        .await
        .map_err(MirrorError::publish)
}

/// Which change of which database a stored message mirrors (from its headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// `Plantd-Db`, if present.
    pub db: Option<String>,
    /// `Plantd-Change-Seq`, if present and a number.
    pub seq: Option<u64>,
}

impl Label {
    fn of(headers: Option<&HeaderMap>) -> Label {
        let get = |name: &str| {
            headers
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
        };
        Label {
            db: get(DB_HEADER),
            seq: get(CHANGE_SEQ_HEADER).and_then(|v| v.parse().ok()),
        }
    }

    /// Whether this label says "change `seq` of database `db_id`, or a later one".
    pub fn covers(&self, db_id: &str, seq: u64) -> bool {
        self.db.as_deref() == Some(db_id) && self.seq.is_some_and(|s| s >= seq)
    }
}

/// The label of the last message stored for the row's key; `None` if the key has no message.
pub async fn last_label(
    stream: &Stream,
    bucket: &str,
    row: &OutboxRow,
) -> Result<Option<Label>, MirrorError> {
    match stream
        .direct_get_last_for_subject(subject(bucket, row))
        .await
    {
        Ok(msg) => Ok(Some(Label::of(Some(&msg.headers)))),
        Err(err) if err.kind() == async_nats::jetstream::stream::DirectGetErrorKind::NotFound => {
            Ok(None)
        }
        Err(err) => Err(MirrorError::publish(err)),
    }
}

/// The last message of one key in the bucket, as the reconcile compares it with SQLite.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its label.
    pub label: Label,
    /// Whether it is a put (not a delete or purge marker).
    pub put: bool,
    /// [`value_digest`] of its value: the reconcile holds one per key, not the values.
    pub digest: u64,
}

/// A 64-bit digest of a value (SipHash with fixed keys, stable within the process): what the
/// reconcile compares, so that holding a whole bucket's keys costs bytes per key, not the
/// bucket's size. Two different values agree by chance with probability 2^-64.
pub fn value_digest(value: &[u8]) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::hash::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// Every key's last message in the bucket, by KV key (`<scope>.<key>` encoded), read with an
/// ordered consumer (last per subject) that the server deletes when it is done.
pub async fn snapshot(
    js: &jetstream::Context,
    stream: &Stream,
    bucket: &str,
) -> Result<std::collections::HashMap<String, Stored>, MirrorError> {
    use futures::StreamExt as _;
    let prefix = format!("$KV.{bucket}.");
    let consumer = stream
        .create_consumer(jetstream::consumer::push::OrderedConfig {
            deliver_subject: js.client().new_inbox(),
            // Named, so the create request is `CONSUMER.CREATE.<stream>.<name>.<filter>`: the
            // only form the state service's creds allow (and recreations are named too).
            name: Some(format!("plantd_reconcile_{}", nuid::next())),
            description: Some("plantd state mirror reconcile".into()),
            filter_subject: format!("{prefix}>"),
            deliver_policy: jetstream::consumer::DeliverPolicy::LastPerSubject,
            replay_policy: jetstream::consumer::ReplayPolicy::Instant,
            ..Default::default()
        })
        .await
        .map_err(MirrorError::publish)?;
    let mut stored = std::collections::HashMap::new();
    if consumer.cached_info().num_pending == 0 {
        return Ok(stored);
    }
    let mut messages = consumer.messages().await.map_err(MirrorError::publish)?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(MirrorError::publish)?;
        let info = message.info().map_err(MirrorError::publish)?;
        let pending = info.pending;
        let Some(key) = message.subject.strip_prefix(prefix.as_str()) else {
            continue;
        };
        let marker = message
            .headers
            .as_ref()
            .and_then(|h| h.get("KV-Operation"))
            .is_some();
        stored.insert(
            key.to_owned(),
            Stored {
                label: Label::of(message.headers.as_ref()),
                put: !marker,
                digest: value_digest(&message.payload),
            },
        );
        if pending == 0 {
            break;
        }
    }
    Ok(stored)
}
