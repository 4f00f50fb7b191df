//! The capture streams: one JetStream stream per bus, created or brought up to date at start.
//!
//! One stream per bus, not one for all: a stream is one ordered log with one writer goroutine
//! in the server, so telemetry flooding `data` would otherwise sit in front of every `control`
//! message; separate streams also keep separate limits (a day of telemetry, a month of events).
//! File storage, discard old: a full bus forgets its oldest messages and never refuses a
//! publish. Direct get is on, so a message can be read by sequence without a consumer.
//!
//! Pipes are the opposite: one work-queue stream for all of them (its subjects are the
//! configured pipes, so a push to an unknown pipe is refused at once), one durable pull
//! consumer per pipe, discard *new* when full (a work queue must refuse work rather than
//! forget it), a dead-letter stream, and a stream that captures the server's max-deliveries
//! advisories so dead-lettering survives the bus service being down when an item gives out.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{self, AckPolicy},
    stream::{Config, DiscardPolicy, RetentionPolicy, StorageType},
};
use plantd_shared::subjects::{bus, pipe};

use crate::config::{BusConfig, BusDef, PipeDef};

/// The stream configuration of `def`.
pub fn config(def: &BusDef) -> Config {
    Config {
        name: bus::stream(&def.name),
        description: Some(format!(
            "plantd bus {}: everything published on it",
            def.name
        )),
        subjects: vec![bus::all(&def.name)],
        max_age: Duration::from_secs(def.max_age_secs),
        max_bytes: limit(def.max_bytes),
        max_messages: limit(def.max_msgs),
        max_messages_per_subject: limit(def.max_msgs_per_subject),
        discard: DiscardPolicy::Old,
        storage: StorageType::File,
        num_replicas: 1,
        allow_direct: true,
        ..Default::default()
    }
}

/// JetStream spells "no limit" -1.
fn limit(value: i64) -> i64 {
    if value == 0 { -1 } else { value }
}

/// Creates the stream of every bus, or updates it to the configured limits.
pub async fn ensure(js: &jetstream::Context, defs: &[BusDef]) -> Result<(), String> {
    for def in defs {
        let config = config(def);
        let name = config.name.clone();
        js.create_or_update_stream(config).await.map_err(|e| {
            format!(
                "cannot create or update stream {name} of bus {}: {e}",
                def.name
            )
        })?;
        tracing::info!(bus = %def.name, stream = %name, "bus capture stream ready");
    }
    Ok(())
}

/// Advisories are kept a day: long enough for a bus service to come back and dead-letter.
const ADVISORY_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The work-queue stream holding every pipe's items.
pub fn pipe_stream(config: &BusConfig) -> Config {
    Config {
        name: pipe::STREAM.to_string(),
        description: Some("plantd pipes: items not yet acknowledged by a worker".into()),
        subjects: config.pipes.iter().map(|p| pipe::items(&p.name)).collect(),
        retention: RetentionPolicy::WorkQueue,
        max_age: Duration::from_secs(config.pipe_max_age_secs),
        max_bytes: limit(config.pipe_max_bytes),
        discard: DiscardPolicy::New,
        storage: StorageType::File,
        num_replicas: 1,
        allow_direct: true,
        ..Default::default()
    }
}

/// The dead-letter stream.
pub fn dead_letter_stream(config: &BusConfig) -> Config {
    Config {
        name: pipe::DLQ_STREAM.to_string(),
        description: Some("plantd pipes: dead letters, the failed item and why".into()),
        subjects: vec![pipe::every_dead_letter()],
        max_age: Duration::from_secs(config.dead_letter_max_age_secs),
        discard: DiscardPolicy::Old,
        storage: StorageType::File,
        num_replicas: 1,
        allow_direct: true,
        ..Default::default()
    }
}

/// The stream capturing max-deliveries advisories of every pipe's consumer.
pub fn advisory_stream(config: &BusConfig) -> Config {
    Config {
        name: pipe::ADVISORY_STREAM.to_string(),
        description: Some("plantd pipes: items that reached max deliveries".into()),
        subjects: config
            .pipes
            .iter()
            .map(|p| pipe::max_deliveries_advisory(&p.name))
            .collect(),
        max_age: ADVISORY_MAX_AGE,
        storage: StorageType::File,
        num_replicas: 1,
        ..Default::default()
    }
}

/// The consumer of one pipe, shared by all its workers.
pub fn pipe_consumer(def: &PipeDef) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(def.name.clone()),
        description: Some(format!("workers of pipe {}", def.name)),
        filter_subject: pipe::items(&def.name),
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(def.ack_wait_secs),
        max_deliver: def.max_deliver,
        ..Default::default()
    }
}

/// The bus service's consumer of the advisory stream.
pub fn advisory_consumer() -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(pipe::ADVISORY_CONSUMER.to_string()),
        description: Some("dead-letters items that reached max deliveries".into()),
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(30),
        ..Default::default()
    }
}

/// Creates or updates the pipe streams and consumers (nothing when no pipe is configured).
pub async fn ensure_pipes(js: &jetstream::Context, config: &BusConfig) -> Result<(), String> {
    if config.pipes.is_empty() {
        return Ok(());
    }
    for stream in [
        pipe_stream(config),
        dead_letter_stream(config),
        advisory_stream(config),
    ] {
        let name = stream.name.clone();
        js.create_or_update_stream(stream)
            .await
            .map_err(|e| format!("cannot create or update stream {name}: {e}"))?;
    }
    let items = js
        .get_stream(pipe::STREAM)
        .await
        .map_err(|e| format!("cannot open stream {}: {e}", pipe::STREAM))?;
    for def in &config.pipes {
        items
            .create_consumer(pipe_consumer(def))
            .await
            .map_err(|e| {
                format!(
                    "cannot create or update the consumer of pipe {}: {e}",
                    def.name
                )
            })?;
        tracing::info!(pipe = %def.name, max_deliver = def.max_deliver, ack_wait_secs = def.ack_wait_secs, "pipe ready");
    }
    js.get_stream(pipe::ADVISORY_STREAM)
        .await
        .map_err(|e| format!("cannot open stream {}: {e}", pipe::ADVISORY_STREAM))?
        .create_consumer(advisory_consumer())
        .await
        .map_err(|e| format!("cannot create the dead-letter consumer: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_no_limit_and_the_stream_captures_the_bus() {
        let def = BusDef {
            name: "data".into(),
            max_age_secs: 60,
            max_bytes: 0,
            max_msgs: 10,
            max_msgs_per_subject: 0,
        };
        let c = config(&def);
        assert_eq!(c.name, "PLANTD_BUS_DATA");
        assert_eq!(c.subjects, ["plantd.bus.data.>"]);
        assert_eq!(
            (c.max_bytes, c.max_messages, c.max_messages_per_subject),
            (-1, 10, -1)
        );
        assert_eq!(c.discard, DiscardPolicy::Old);
    }

    #[test]
    fn pipes_share_one_work_queue_that_refuses_rather_than_forgets() {
        let config = BusConfig::default();
        let items = pipe_stream(&config);
        assert_eq!(items.subjects, ["plantd.pipe.jobs"]);
        assert_eq!(items.retention, RetentionPolicy::WorkQueue);
        assert_eq!(items.discard, DiscardPolicy::New);
        assert_eq!(
            advisory_stream(&config).subjects,
            ["$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.PLANTD_PIPES.jobs"]
        );
        let c = pipe_consumer(&config.pipes[0]);
        assert_eq!(c.durable_name.as_deref(), Some("jobs"));
        assert_eq!(
            (c.max_deliver, c.filter_subject.as_str()),
            (5, "plantd.pipe.jobs")
        );
    }
}
