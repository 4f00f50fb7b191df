//! The metric module's settings: the common and module ones, what to sample and where to send it.

use plantd_shared::{config::CommonConfig, module::ModuleConfig, subjects};
use serde::{Deserialize, Serialize};

/// Configuration of the metric module (`PLANTD_METRIC_<SETTING>`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MetricConfig {
    /// Settings every service has.
    #[serde(flatten)]
    pub common: CommonConfig,
    /// Settings every module has.
    #[serde(flatten)]
    pub module: ModuleConfig,
    /// Time between samples, in milliseconds.
    pub interval_ms: u64,
    /// The path whose file system is measured.
    pub disk_path: String,
    /// The bus samples are published on; empty publishes none.
    pub bus: String,
    /// The scope that starts the samples' topic (`<scope>.metric.<host>`). One token, so the
    /// metric creds (`plantd.bus.data.*.metric.>`) cover it.
    pub scope: String,
}

impl Default for MetricConfig {
    fn default() -> Self {
        MetricConfig {
            common: CommonConfig::default(),
            module: ModuleConfig::default(),
            interval_ms: 5_000,
            disk_path: "/".into(),
            bus: "data".into(),
            scope: "plant".into(),
        }
    }
}

impl MetricConfig {
    /// Every bad setting, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = self.module.problems();
        if self.interval_ms < 100 {
            problems.push(format!(
                "interval_ms: {} is too short, use at least 100",
                self.interval_ms
            ));
        }
        if self.disk_path.is_empty() {
            problems.push("disk_path: must not be empty".into());
        }
        if let Err(message) = subjects::bus::validate_name(&self.bus)
            && !self.bus.is_empty()
        {
            problems.push(format!("bus: {message}"));
        }
        if subjects::validate_scope(&self.scope).is_err() || self.scope.contains('.') {
            problems.push(format!(
                "scope: {:?} must be one token (letters, digits, '-', '_')",
                self.scope
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_all_named() {
        assert!(MetricConfig::default().problems().is_empty());
        let bad = MetricConfig {
            interval_ms: 5,
            disk_path: String::new(),
            bus: "no.dots".into(),
            scope: "site1.line2".into(),
            ..MetricConfig::default()
        };
        let problems = bad.problems();
        let fields: Vec<&str> = problems
            .iter()
            .map(|p| p.split(':').next().unwrap_or_default())
            .collect();
        assert_eq!(fields, ["interval_ms", "disk_path", "bus", "scope"]);
    }
}
