//! The JSON documents of the micro v1 protocol (ADR-32), as in nats-io/jsm.go
//! `schemas/micro/v1/*.json`. These are NATS' protocol types, not plantd wire messages, so
//! they live here rather than in `schemas/`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `type` of a PING reply.
pub const PING_TYPE: &str = "io.nats.micro.v1.ping_response";
/// `type` of an INFO reply.
pub const INFO_TYPE: &str = "io.nats.micro.v1.info_response";
/// `type` of a STATS reply.
pub const STATS_TYPE: &str = "io.nats.micro.v1.stats_response";

/// `$SRV.PING` reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PingResponse {
    /// Always [`PING_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Service name.
    pub name: String,
    /// Instance id.
    pub id: String,
    /// SemVer version.
    pub version: String,
    /// Service metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// One endpoint in an INFO reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EndpointInfo {
    /// Endpoint name (`^[a-zA-Z0-9_-]+$`).
    pub name: String,
    /// Subject it listens on.
    pub subject: String,
    /// Its queue group.
    #[serde(default)]
    pub queue_group: String,
    /// Endpoint metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// `$SRV.INFO` reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InfoResponse {
    /// Always [`INFO_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Service name.
    pub name: String,
    /// Instance id.
    pub id: String,
    /// SemVer version.
    pub version: String,
    /// Service metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// What the service does.
    #[serde(default)]
    pub description: String,
    /// Its endpoints.
    #[serde(default)]
    pub endpoints: Vec<EndpointInfo>,
}

/// One endpoint in a STATS reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EndpointStats {
    /// Endpoint name.
    pub name: String,
    /// Subject it listens on.
    pub subject: String,
    /// Its queue group.
    #[serde(default)]
    pub queue_group: String,
    /// Requests answered, errors included.
    pub num_requests: u64,
    /// Requests answered with an error.
    pub num_errors: u64,
    /// `"<code>:<message>"` of the last error, empty if none.
    #[serde(default)]
    pub last_error: String,
    /// Total handling time, nanoseconds.
    pub processing_time: u64,
    /// Mean handling time, nanoseconds.
    pub average_processing_time: u64,
}

/// `$SRV.STATS` reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatsResponse {
    /// Always [`STATS_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Service name.
    pub name: String,
    /// Instance id.
    pub id: String,
    /// SemVer version.
    pub version: String,
    /// Service metadata (async-nats omits it; ADR-32 lists it for every reply).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// When the instance started, RFC 3339 UTC.
    pub started: String,
    /// Per-endpoint counters.
    #[serde(default)]
    pub endpoints: Vec<EndpointStats>,
    /// plantd extension: the state of each circuit breaker of the instance's clients, by
    /// capability (absent when it has none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub breakers: BTreeMap<String, crate::module::breaker::BreakerSnapshot>,
}

/// Whether a service or endpoint name matches `^[a-zA-Z0-9_-]+$`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `version` is SemVer 2.0 (`MAJOR.MINOR.PATCH[-pre][+build]`).
pub fn valid_semver(version: &str) -> bool {
    let (core, _build) = version.split_once('+').unwrap_or((version, ""));
    let (core, pre) = core
        .split_once('-')
        .map_or((core, None), |(c, p)| (c, Some(p)));
    let numeric = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    let parts: Vec<&str> = core.split('.').collect();
    let ident_ok =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(|p| p.split('.').all(ident_ok))
        && (!version.contains('+')
            || version
                .split_once('+')
                .is_some_and(|(_, b)| b.split('.').all(ident_ok)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions() {
        assert!(valid_name("state"));
        assert!(valid_name("echo_2-a"));
        assert!(!valid_name("orders.get"));
        assert!(!valid_name(""));
        assert!(valid_semver("0.1.0"));
        assert!(valid_semver("1.2.3-rc.1+build.5"));
        assert!(!valid_semver("1.0"));
        assert!(!valid_semver("01.0.0"));
        assert!(!valid_semver("1.0.0-"));
    }
}
