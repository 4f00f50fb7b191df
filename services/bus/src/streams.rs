//! The capture streams: one JetStream stream per bus, created or brought up to date at start.
//!
//! One stream per bus, not one for all: a stream is one ordered log with one writer goroutine
//! in the server, so telemetry flooding `data` would otherwise sit in front of every `control`
//! message; separate streams also keep separate limits (a day of telemetry, a month of events).
//! File storage, discard old: a full bus forgets its oldest messages and never refuses a
//! publish. Direct get is on, so a message can be read by sequence without a consumer.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    stream::{Config, DiscardPolicy, StorageType},
};
use plantd_shared::subjects::bus;

use crate::config::BusDef;

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
}
