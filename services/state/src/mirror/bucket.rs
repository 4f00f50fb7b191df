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

/// Opens the bucket, creating it (file storage) if missing.
pub async fn open(
    js: &jetstream::Context,
    settings: &BucketSettings,
) -> Result<Stream, MirrorError> {
    let store = match js.get_key_value(&settings.name).await {
        Ok(store) => store,
        Err(_) => js
            .create_key_value(kv::Config {
                bucket: settings.name.clone(),
                description: "plantd state, mirrored from the state service's SQLite".into(),
                history: settings.history,
                max_value_size: i32::try_from(settings.max_value_bytes).unwrap_or(i32::MAX),
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                MirrorError::publish(format!("cannot create KV bucket {}: {e}", settings.name))
            })?,
    };
    Ok(store.stream)
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
