//! The bus service's settings (`PLANTD_BUSES_<SETTING>`): which buses exist and how much each
//! capture stream keeps; which pipes exist, how often an item is tried and how long its dead
//! letter is kept.

use plantd_shared::{
    config::CommonConfig,
    subjects::{bus, pipe},
};
use serde::{Deserialize, Serialize};

/// Configuration of the bus service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct BusConfig {
    /// Settings every service has.
    #[serde(flatten)]
    pub common: CommonConfig,
    /// The buses, each captured by its own stream (default `control`, `data`, `event`).
    pub buses: Vec<BusDef>,
    /// The pipes (work queues), each a consumer of the one work-queue stream.
    pub pipes: Vec<PipeDef>,
    /// Oldest unfinished item kept in any pipe, seconds (0 = no limit).
    pub pipe_max_age_secs: u64,
    /// Most bytes of unfinished items kept over all pipes (0 = no limit). When full, a push
    /// is refused: a work queue must not silently forget work.
    pub pipe_max_bytes: i64,
    /// How long a dead letter is kept, seconds (0 = until retried).
    pub dead_letter_max_age_secs: u64,
}

/// One pipe: a durable pull consumer named after it on `plantd.pipe.<name>`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PipeDef {
    /// Pipe name: one token of lower-case letters, digits or `-`.
    pub name: String,
    /// Deliveries of an item before it becomes a dead letter (at least 1).
    pub max_deliver: i64,
    /// How long a worker has to acknowledge (or extend) a delivery before it goes to another
    /// worker, seconds.
    pub ack_wait_secs: u64,
}

impl Default for PipeDef {
    fn default() -> Self {
        PipeDef {
            name: String::new(),
            max_deliver: 5,
            ack_wait_secs: 30,
        }
    }
}

/// One bus and the limits of its capture stream (0 = no limit). When a limit is reached the
/// oldest messages go (discard old): a bus never refuses a publish for being full.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BusDef {
    /// Bus name: one token of lower-case letters, digits or `-`.
    pub name: String,
    /// Oldest message kept, seconds.
    pub max_age_secs: u64,
    /// Most bytes kept.
    pub max_bytes: i64,
    /// Most messages kept.
    pub max_msgs: i64,
    /// Most messages kept per topic (subject).
    pub max_msgs_per_subject: i64,
}

impl Default for BusDef {
    fn default() -> Self {
        BusDef {
            name: String::new(),
            max_age_secs: 7 * 24 * 3600,
            max_bytes: 256 * 1024 * 1024,
            max_msgs: 0,
            max_msgs_per_subject: 0,
        }
    }
}

impl BusDef {
    fn named(name: &str, max_age_secs: u64, max_bytes: i64, max_msgs_per_subject: i64) -> Self {
        BusDef {
            name: name.to_string(),
            max_age_secs,
            max_bytes,
            max_msgs: 0,
            max_msgs_per_subject,
        }
    }
}

impl Default for BusConfig {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        const MIB: i64 = 1024 * 1024;
        BusConfig {
            common: CommonConfig::default(),
            buses: vec![
                // Commands and setpoints: kept a week, every one of them.
                BusDef::named("control", 7 * DAY, 256 * MIB, 0),
                // Telemetry: a day, and at most 100k samples per topic.
                BusDef::named("data", DAY, 1024 * MIB, 100_000),
                // Alarms and events: a month.
                BusDef::named("event", 30 * DAY, 256 * MIB, 0),
            ],
            // One pipe, so `plant pipe push jobs …` works on a new set-up.
            pipes: vec![PipeDef {
                name: "jobs".into(),
                ..PipeDef::default()
            }],
            pipe_max_age_secs: 7 * DAY,
            pipe_max_bytes: 1024 * MIB,
            dead_letter_max_age_secs: 30 * DAY,
        }
    }
}

impl BusConfig {
    /// Every problem with the settings, each naming the setting.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.buses.is_empty() {
            problems.push("buses: configure at least one bus".to_string());
        }
        for (i, def) in self.buses.iter().enumerate() {
            if let Err(message) = bus::validate_name(&def.name) {
                problems.push(format!("buses[{i}].name: {message}"));
            }
            if self.buses[..i].iter().any(|d| d.name == def.name) {
                problems.push(format!(
                    "buses[{i}].name: bus {:?} is defined twice",
                    def.name
                ));
            }
            for (field, value) in [
                ("max_bytes", def.max_bytes),
                ("max_msgs", def.max_msgs),
                ("max_msgs_per_subject", def.max_msgs_per_subject),
            ] {
                if value < 0 {
                    problems.push(format!(
                        "buses[{i}].{field}: {value} is negative; use 0 for no limit"
                    ));
                }
            }
        }
        for (i, def) in self.pipes.iter().enumerate() {
            if let Err(message) = pipe::validate_name(&def.name) {
                problems.push(format!("pipes[{i}].name: {message}"));
            }
            if self.pipes[..i].iter().any(|d| d.name == def.name) {
                problems.push(format!(
                    "pipes[{i}].name: pipe {:?} is defined twice",
                    def.name
                ));
            }
            if def.max_deliver < 1 {
                problems.push(format!(
                    "pipes[{i}].max_deliver: {} must be at least 1",
                    def.max_deliver
                ));
            }
            if def.ack_wait_secs == 0 {
                problems.push(format!("pipes[{i}].ack_wait_secs: must be at least 1"));
            }
        }
        if self.pipe_max_bytes < 0 {
            problems.push(format!(
                "pipe_max_bytes: {} is negative; use 0 for no limit",
                self.pipe_max_bytes
            ));
        }
        problems
    }

    /// The pipe named `name`, if configured.
    pub fn pipe(&self, name: &str) -> Option<&PipeDef> {
        self.pipes.iter().find(|d| d.name == name)
    }

    /// The bus named `name`, if configured.
    pub fn bus(&self, name: &str) -> Option<&BusDef> {
        self.buses.iter().find(|d| d.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_buses_are_named() {
        assert!(BusConfig::default().problems().is_empty());
        let config = BusConfig {
            buses: vec![
                BusDef::named("Data", 1, 1, 1),
                BusDef::named("x", 1, -1, 1),
                BusDef::named("x", 1, 1, 1),
            ],
            ..BusConfig::default()
        };
        let problems = config.problems().join("\n");
        assert!(problems.contains("buses[0].name"), "{problems}");
        assert!(problems.contains("buses[1].max_bytes"), "{problems}");
        assert!(
            problems.contains("buses[2].name: bus \"x\" is defined twice"),
            "{problems}"
        );
        let config = BusConfig {
            pipes: vec![
                PipeDef {
                    name: "a.b".into(),
                    max_deliver: 0,
                    ack_wait_secs: 0,
                },
                PipeDef {
                    name: "jobs".into(),
                    ..PipeDef::default()
                },
                PipeDef {
                    name: "jobs".into(),
                    ..PipeDef::default()
                },
            ],
            pipe_max_bytes: -2,
            ..BusConfig::default()
        };
        let problems = config.problems().join("\n");
        for expected in [
            "pipes[0].name: pipe name",
            "pipes[0].max_deliver",
            "pipes[0].ack_wait_secs",
            "pipes[2].name: pipe \"jobs\" is defined twice",
            "pipe_max_bytes",
        ] {
            assert!(problems.contains(expected), "{expected}: {problems}");
        }
    }
}
