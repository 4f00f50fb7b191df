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

/// The bucket's name and limits.
#[derive(Debug, Clone)]
pub struct BucketSettings {
    /// Bucket name (`plantd-state`).
    pub name: String,
    /// Revisions kept per key.
    pub history: i64,
    /// Largest value.
    pub max_value_bytes: usize,
}

/// Room for the mirror's headers (`Nats-Msg-Id`, `Plantd-Change-Seq`, `KV-Operation`) on
/// top of the largest value: the server checks headers plus payload against the bucket's
/// max_value_size.
const HEADER_ROOM: usize = 4096;

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

/// Whether the bucket's stream holds no message.
pub async fn is_empty(stream: &Stream) -> Result<bool, MirrorError> {
    let mut stream = stream.clone();
    let info = stream.info().await.map_err(MirrorError::publish)?;
    Ok(info.state.messages == 0)
}

/// `$KV.<bucket>.<encoded scope>.<encoded key>`.
fn subject(bucket: &str, row: &OutboxRow) -> String {
    format!("$KV.{bucket}.{}", kvkey::encode(&row.scope, &row.key))
}

fn message(row: &OutboxRow) -> PublishMessage {
    let mut headers = HeaderMap::new();
    headers.insert(CHANGE_SEQ_HEADER, row.seq.to_string().as_str());
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
        message(row).message_id(format!("{db_id}.{}", row.seq)),
    )
    .await
    .map_err(MirrorError::publish)
}

/// Publishes a resync put (no msg id: the same change sequence labels many keys).
pub async fn publish_resync(
    js: &jetstream::Context,
    bucket: &str,
    row: &OutboxRow,
) -> Result<PublishAckFuture, MirrorError> {
    js.send_publish(subject(bucket, row), message(row))
        .await
        .map_err(MirrorError::publish)
}

/// The change sequence of the last message stored for the row's key; `None` if the key has
/// no message (or one without the header, written by someone else).
pub async fn last_change_seq(
    stream: &Stream,
    bucket: &str,
    row: &OutboxRow,
) -> Result<Option<u64>, MirrorError> {
    match stream
        .direct_get_last_for_subject(subject(bucket, row))
        .await
    {
        Ok(msg) => Ok(msg
            .headers
            .get(CHANGE_SEQ_HEADER)
            .and_then(|v| v.as_str().parse::<u64>().ok())),
        Err(err) if err.kind() == async_nats::jetstream::stream::DirectGetErrorKind::NotFound => {
            Ok(None)
        }
        Err(err) => Err(MirrorError::publish(err)),
    }
}
