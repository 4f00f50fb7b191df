//! The logger's settings (`PLANTD_LOGGER_<SETTING>`): how much of the log it keeps.

use plantd_shared::config::CommonConfig;
use serde::{Deserialize, Serialize};

/// Configuration of the logger.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LoggerConfig {
    /// Settings every service has.
    #[serde(flatten)]
    pub common: CommonConfig,
    /// Oldest record kept, seconds (0 = no limit).
    pub max_age_secs: u64,
    /// Most bytes kept (0 = no limit); the oldest records go first.
    pub max_bytes: i64,
    /// How late a record may arrive and still be found by a query from its own time, seconds:
    /// a query `since` T starts reading at what arrived from T minus this. Records shipped
    /// after a longer outage are found by time only from when they arrived.
    pub late_arrival_secs: u64,
}

impl Default for LoggerConfig {
    fn default() -> Self {
        LoggerConfig {
            common: CommonConfig::default(),
            max_age_secs: 7 * 24 * 3600,
            max_bytes: 1024 * 1024 * 1024,
            late_arrival_secs: 600,
        }
    }
}

impl LoggerConfig {
    /// Every problem with the settings, each naming the setting.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.max_bytes < 0 {
            problems.push(format!(
                "max_bytes: {} is negative; use 0 for no limit",
                self.max_bytes
            ));
        }
        problems
    }
}
