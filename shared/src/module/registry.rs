//! The module registry: one JetStream KV entry per running instance, `plantd-registry`.
//!
//! `$SRV` discovery says who answers right now; the registry adds what discovery cannot carry:
//! each instance's current health with its reasons, what it is still missing, and an entry that
//! *disappears by itself* when the instance dies without saying goodbye. Each instance writes
//! its [`Declaration`] at start, rewrites it every heartbeat with a per-message TTL
//! (`Nats-TTL`, ADR-43; the bucket is created with `limit_markers`) and purges it when it stops.
//! After a `kill -9` nobody rewrites it, so the server removes it when the TTL runs out and
//! leaves a delete marker that watchers see.
//!
//! Writes are plain JetStream publishes on `$KV.plantd-registry.<module>.<instance>`: an
//! instance needs no JetStream API rights for them (its creds may publish only under its own
//! module name, services/identity/src/permissions.rs). The bucket lives in memory: after a
//! server restart it is empty for at most one heartbeat. Reading it (`plant modules`) needs
//! consumer rights, which only admins have; everyone else sees providers through `$SRV`.

use std::time::Duration;

use async_nats::{HeaderMap, jetstream};
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};

/// The registry bucket.
pub const BUCKET: &str = "plantd-registry";

/// How long the server keeps the marker it leaves when an entry's TTL runs out, and the
/// purge marker a stopping instance leaves.
pub const MARKER_TTL: Duration = Duration::from_secs(60);

/// The registry key of one instance: `<module>.<instance id>`.
pub fn key(module: &str, instance: &str) -> String {
    format!("{module}.{instance}")
}

/// The subject an instance's entry is written to.
pub fn subject(module: &str, instance: &str) -> String {
    format!("$KV.{BUCKET}.{}", key(module, instance))
}

/// One instance's entry: who it is, what it provides and needs, how it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Declaration {
    /// Module name (`$SRV` name).
    pub name: String,
    /// Instance id (`$SRV` id).
    pub id: String,
    /// Module version.
    pub version: String,
    /// Provided capabilities, `name@version`.
    pub provides: Vec<String>,
    /// Requirements, `name@range`.
    pub requires: Vec<String>,
    /// Requirements no healthy provider meets right now.
    #[serde(default)]
    pub missing: Vec<String>,
    /// `pass`, `warn` or `fail`, as on `/healthz`.
    pub health: String,
    /// Why, when not `pass` (`requires: waiting for state@^0.1`).
    #[serde(default)]
    pub reason: String,
    /// Where its `/healthz` is served, if anywhere.
    #[serde(default)]
    pub health_url: String,
    /// Host name and process id, for people looking for the process.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// When the instance started, RFC 3339 UTC.
    pub started: String,
    /// When this entry was written, RFC 3339 UTC.
    pub updated: String,
    /// The entry's TTL in seconds: it vanishes that long after the last heartbeat.
    pub ttl_s: u64,
    /// `serving`, `waiting` (for requirements, before serving) or `draining`.
    pub phase: String,
}

/// A registry operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The bucket does not exist (and could not be created).
    #[error("registry bucket {BUCKET} is missing: {0}")]
    Missing(String),
    /// Any other JetStream failure.
    #[error("registry: {0}")]
    Nats(String),
}

/// Creates the bucket, or checks it (idempotent): in memory, one value per key, per-message
/// TTLs allowed. `plant up` does this with admin rights before modules start.
pub async fn ensure_bucket(js: &jetstream::Context) -> Result<jetstream::kv::Store, RegistryError> {
    js.create_or_update_key_value(jetstream::kv::Config {
        bucket: BUCKET.to_string(),
        description: "plantd module instances: declaration, health, heartbeat TTL".into(),
        history: 1,
        storage: jetstream::stream::StorageType::Memory,
        limit_markers: Some(MARKER_TTL),
        ..Default::default()
    })
    .await
    .map_err(|err| RegistryError::Missing(err.to_string()))
}

/// Writes `declaration` with a TTL of `ttl` (whole seconds, at least one) and waits for the
/// server's ack.
pub async fn write(
    js: &jetstream::Context,
    declaration: &Declaration,
    ttl: Duration,
) -> Result<(), RegistryError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        async_nats::header::NATS_MESSAGE_TTL,
        format!("{}s", ttl.as_secs().max(1)).as_str(),
    );
    let payload = serde_json::to_vec(declaration)
        .expect("a declaration of strings and numbers always serializes");
    publish(
        js,
        subject(&declaration.name, &declaration.id),
        headers,
        payload,
    )
    .await
}

/// Removes an instance's entry (a purge marker that itself expires after [`MARKER_TTL`]).
pub async fn remove(
    js: &jetstream::Context,
    module: &str,
    instance: &str,
) -> Result<(), RegistryError> {
    let mut headers = HeaderMap::new();
    headers.insert("KV-Operation", "PURGE");
    headers.insert("Nats-Rollup", "sub");
    headers.insert(
        async_nats::header::NATS_MESSAGE_TTL,
        format!("{}s", MARKER_TTL.as_secs()).as_str(),
    );
    publish(js, subject(module, instance), headers, Vec::new()).await
}

async fn publish(
    js: &jetstream::Context,
    subject: String,
    headers: HeaderMap,
    payload: Vec<u8>,
) -> Result<(), RegistryError> {
    use jetstream::context::PublishErrorKind;
    let ack = js
        .publish_with_headers(subject, headers, payload.into())
        .await
        .map_err(|err| RegistryError::Nats(err.to_string()))?;
    ack.await.map(|_| ()).map_err(|err| match err.kind() {
        PublishErrorKind::StreamNotFound => RegistryError::Missing(err.to_string()),
        _ => RegistryError::Nats(err.to_string()),
    })
}

/// Every live entry, sorted by module then instance. Entries that cannot be decoded are
/// skipped with a warning (another version may have written them).
pub async fn list(js: &jetstream::Context) -> Result<Vec<Declaration>, RegistryError> {
    let kv = js
        .get_key_value(BUCKET)
        .await
        .map_err(|err| RegistryError::Missing(err.to_string()))?;
    let mut keys = kv
        .keys()
        .await
        .map_err(|err| RegistryError::Nats(err.to_string()))?;
    let mut found = Vec::new();
    while let Some(key) = keys.next().await {
        let key = key.map_err(|err| RegistryError::Nats(err.to_string()))?;
        // An entry may expire between the listing and the read.
        let Some(value) = kv
            .get(&key)
            .await
            .map_err(|err| RegistryError::Nats(err.to_string()))?
        else {
            continue;
        };
        match serde_json::from_slice::<Declaration>(&value) {
            Ok(declaration) => found.push(declaration),
            Err(err) => tracing::warn!(key, error = %err, "skipping unreadable registry entry"),
        }
    }
    found.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    Ok(found)
}
