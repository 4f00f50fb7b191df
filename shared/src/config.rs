//! Layered configuration: defaults → YAML file → `PLANTD_<SERVICE>_<SETTING>` env → flags.
//!
//! Every service's config is a plain serde struct with `Default`; its settings are flat
//! snake_case names (`nats_url`, `max_in_flight`, …) so each maps to one env var and one
//! `--set name=value` flag without a nesting convention to learn. The layers are merged as JSON
//! values, then *each* setting is checked on its own so that every bad one is reported at once
//! with its name and where it came from (linkerd's rule), and the process exits with 64
//! (`EX_USAGE`). Tests pass env as a map; nothing here mutates the process environment.

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

/// Exit code for a configuration error (`EX_USAGE`).
pub const EXIT_USAGE: i32 = 64;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// The YAML file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A `--set` flag or a dedicated flag.
    Flag,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Env(var) => write!(f, "env {var}"),
            Source::Flag => write!(f, "flag"),
        }
    }
}

/// One bad setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The setting's name (`max_in_flight`), or the file for file-level errors.
    pub setting: String,
    /// Where the bad value came from.
    pub source: Source,
    /// What is wrong with it.
    pub message: String,
}

/// Every bad setting found while loading a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// One entry per bad setting, in setting-name order.
    pub errors: Vec<SettingError>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration:")?;
        for e in &self.errors {
            write!(f, "\n  {} (from {}): {}", e.setting, e.source, e.message)?;
        }
        Ok(())
    }
}

/// Settings every service has. Service configs embed it with `#[serde(flatten)]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CommonConfig {
    /// NATS server URL(s), comma separated.
    pub nats_url: String,
    /// Path of a NATS creds file (JWT + nkey seed); empty for none. Read on every connect.
    pub nats_creds: String,
    /// Address of the `/healthz` HTTP listener; port 0 picks a free port, empty disables it.
    pub health_listen: String,
    /// `text` or `json` log lines.
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `plantd=debug,async_nats=warn`.
    pub log_level: String,
    /// Most requests handled at once by one instance; further requests wait in the
    /// subscription buffer (backpressure) rather than spawning without bound.
    pub max_in_flight: usize,
    /// How long a stopping service waits for in-flight requests, in milliseconds.
    pub drain_timeout_ms: u64,
    /// How long one request's handler may run, in milliseconds; past it the caller gets a 504
    /// (outcome unknown) and the handler's in-flight slot is freed.
    pub handler_timeout_ms: u64,
    /// Ship this process's log events to the logger (`plantd.log.<service>.<level>`).
    pub log_ship: bool,
    /// Log records kept while NATS is unreachable; past that they are dropped and counted.
    pub log_ship_buffer: usize,
    /// OpenTelemetry collector to export spans to (OTLP/HTTP base URL such as
    /// `http://127.0.0.1:4318`); empty (the default) exports nothing.
    pub otlp_endpoint: String,
}

impl Default for CommonConfig {
    fn default() -> Self {
        CommonConfig {
            nats_url: "nats://127.0.0.1:4222".into(),
            nats_creds: String::new(),
            health_listen: "127.0.0.1:0".into(),
            log_format: LogFormat::Text,
            log_level: "info".into(),
            max_in_flight: 256,
            drain_timeout_ms: 10_000,
            handler_timeout_ms: 30_000,
            log_ship: true,
            log_ship_buffer: crate::log_ship::DEFAULT_BUFFER,
            otlp_endpoint: String::new(),
        }
    }
}

impl CommonConfig {
    /// The drain grace period.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }

    /// The per-request handler deadline (at least 1 ms).
    pub fn handler_timeout(&self) -> Duration {
        Duration::from_millis(self.handler_timeout_ms.max(1))
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The inputs of a load, so tests can pass them explicitly.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    /// The YAML file, if any.
    pub file: Option<PathBuf>,
    /// The environment (only `PLANTD_<SERVICE>_*` entries are read).
    pub env: BTreeMap<String, String>,
    /// `name=value` flags, in order (later wins).
    pub flags: Vec<(String, String)>,
}

impl Layers {
    /// Layers from the process: its environment and the given file and flags.
    pub fn from_process(file: Option<PathBuf>, flags: Vec<(String, String)>) -> Layers {
        Layers {
            file,
            env: std::env::vars().collect(),
            flags,
        }
    }
}

/// Parses `name=value` as given to `--set`.
pub fn parse_flag(arg: &str) -> Result<(String, String), String> {
    arg.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .ok_or_else(|| format!("expected NAME=VALUE, got {arg:?}"))
}

/// The env var prefix of a service: `PLANTD_<SERVICE>_`.
pub fn env_prefix(service: &str) -> String {
    format!("PLANTD_{}_", service.to_ascii_uppercase().replace('-', "_"))
}

/// Loads a service's configuration from its layers, reporting every bad setting at once.
pub fn load<T>(service: &str, layers: &Layers) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let defaults = match serde_json::to_value(T::default()) {
        Ok(Value::Object(map)) => map,
        _ => unreachable!("service configs are structs and serialize to JSON objects"),
    };
    let mut merged: BTreeMap<String, (Value, Source)> = defaults
        .iter()
        .map(|(k, v)| (k.clone(), (v.clone(), Source::Default)))
        .collect();
    let mut errors = Vec::new();
    let mut set =
        |name: String, value: Value, source: Source, errors: &mut Vec<SettingError>| match defaults
            .get(&name)
        {
            None => errors.push(SettingError {
                setting: name,
                source,
                message: "unknown setting".into(),
            }),
            Some(default) => {
                let value = coerce_like(default, value);
                merged.insert(name, (value, source));
            }
        };

    if let Some(path) = &layers.file {
        match read_yaml(path) {
            Ok(map) => {
                for (k, v) in map {
                    set(k, v, Source::File(path.clone()), &mut errors);
                }
            }
            Err(message) => errors.push(SettingError {
                setting: "config file".into(),
                source: Source::File(path.clone()),
                message,
            }),
        }
    }
    let prefix = env_prefix(service);
    for (var, raw) in &layers.env {
        if let Some(name) = var.strip_prefix(&prefix) {
            set(
                name.to_ascii_lowercase(),
                scalar(raw),
                Source::Env(var.clone()),
                &mut errors,
            );
        }
    }
    for (name, raw) in &layers.flags {
        set(name.clone(), scalar(raw), Source::Flag, &mut errors);
    }

    // Check each non-default setting alone against the defaults, so one bad value does not
    // hide another.
    for (name, (value, source)) in &merged {
        if *source == Source::Default {
            continue;
        }
        let mut probe = defaults.clone();
        probe.insert(name.clone(), value.clone());
        if let Err(err) = serde_json::from_value::<T>(Value::Object(probe)) {
            errors.push(SettingError {
                setting: name.clone(),
                source: source.clone(),
                message: err.to_string(),
            });
        }
    }
    if !errors.is_empty() {
        errors.sort_by(|a, b| a.setting.cmp(&b.setting));
        return Err(ConfigError { errors });
    }
    let all: Map<String, Value> = merged.into_iter().map(|(k, (v, _))| (k, v)).collect();
    serde_json::from_value(Value::Object(all)).map_err(|err| ConfigError {
        errors: vec![SettingError {
            setting: "configuration".into(),
            source: Source::Default,
            message: err.to_string(),
        }],
    })
}

fn read_yaml(path: &Path) -> Result<Map<String, Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_norway::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(_) => Err("expected a mapping of setting: value".into()),
        Err(e) => Err(format!("invalid YAML: {e}")),
    }
}

/// Parses an env or flag value as a YAML scalar, so `8`, `true` and `nats://h:1` all work.
fn scalar(raw: &str) -> Value {
    serde_norway::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

/// Keeps a value a string where the default is a string (`log_level: 1` stays `"1"`).
fn coerce_like(default: &Value, value: Value) -> Value {
    match (default, value) {
        (Value::String(_), Value::Number(n)) => Value::String(n.to_string()),
        (Value::String(_), Value::Bool(b)) => Value::String(b.to_string()),
        (Value::String(_), Value::Null) => Value::String(String::new()),
        (_, value) => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default)]
    struct TestConfig {
        #[serde(flatten)]
        common: CommonConfig,
        max_slow_ms: u64,
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("echo.yaml");
        std::fs::write(
            &file,
            "max_slow_ms: 5\nlog_level: debug\nmax_in_flight: 3\n",
        )
        .unwrap();
        let layers = Layers {
            file: Some(file),
            env: env(&[("PLANTD_ECHO_MAX_SLOW_MS", "7"), ("PLANTD_OTHER_X", "1")]),
            flags: vec![("max_in_flight".into(), "9".into())],
        };
        let cfg: TestConfig = load("echo", &layers).unwrap();
        assert_eq!(cfg.max_slow_ms, 7);
        assert_eq!(cfg.common.log_level, "debug");
        assert_eq!(cfg.common.max_in_flight, 9);
        assert_eq!(cfg.common.nats_url, CommonConfig::default().nats_url);
    }

    #[test]
    fn every_bad_setting_is_reported_with_its_source() {
        let layers = Layers {
            file: None,
            env: env(&[
                ("PLANTD_ECHO_MAX_SLOW_MS", "soon"),
                ("PLANTD_ECHO_NO_SUCH", "1"),
            ]),
            flags: vec![("log_format".into(), "xml".into())],
        };
        let err = load::<TestConfig>("echo", &layers).unwrap_err();
        let names: Vec<_> = err.errors.iter().map(|e| e.setting.as_str()).collect();
        assert_eq!(names, ["log_format", "max_slow_ms", "no_such"]);
        assert_eq!(
            err.errors[1].source,
            Source::Env("PLANTD_ECHO_MAX_SLOW_MS".into())
        );
        assert_eq!(err.errors[0].source, Source::Flag);
        let text = err.to_string();
        assert!(
            text.contains("max_slow_ms (from env PLANTD_ECHO_MAX_SLOW_MS)"),
            "{text}"
        );
    }

    #[test]
    fn string_settings_stay_strings_and_bad_files_are_named() {
        let layers = Layers {
            flags: vec![("log_level".into(), "1".into())],
            ..Layers::default()
        };
        let cfg: TestConfig = load("echo", &layers).unwrap();
        assert_eq!(cfg.common.log_level, "1");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.yaml");
        std::fs::write(&file, "- a list\n").unwrap();
        let err = load::<TestConfig>(
            "echo",
            &Layers {
                file: Some(file),
                ..Layers::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.errors[0].setting, "config file");
        assert_eq!(parse_flag("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_flag("abc").is_err());
    }
}
