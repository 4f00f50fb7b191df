//! The bus service's settings (`PLANTD_BUSES_<SETTING>`): which buses exist and how much each
//! capture stream keeps.

use plantd_shared::{config::CommonConfig, subjects::bus};
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
        problems
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
    }
}
