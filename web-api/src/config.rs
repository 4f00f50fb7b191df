//! The bridge's settings (`PLANTD_WEB_API_<SETTING>`, `--set setting=value`).
//!
//! `nats_creds` (from [`CommonConfig`]) is the bridge's own user
//! (`<data>/auth/creds/web-api.creds`, which `plant up` gives it): the only NATS identity the
//! bridge has of its own, which can do nothing but ask identity to log a person in and ship the
//! bridge's log records (the shared `login.creds` also work, without the log shipping). Empty
//! means a hub without authentication (`plant up --no-auth`): no login, one anonymous
//! connection.

use std::time::Duration;

use plantd_shared::config::CommonConfig;
use serde::{Deserialize, Serialize};

/// Configuration of the web-api bridge.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct WebApiConfig {
    /// Settings every plantd process has (`nats_url`, `nats_creds` = the bridge's own creds, logging).
    #[serde(flatten)]
    pub common: CommonConfig,
    /// Address the HTTP(S) listener binds (`127.0.0.1:8080`; port 0 picks a free one).
    pub listen: String,
    /// Longest a session lives, seconds; never past the person's JWT expiry.
    pub session_ttl_secs: u64,
    /// Most sessions at once; a login past it gets 503 (each session is a NATS connection).
    pub max_sessions: usize,
    /// How long one NATS request may take, milliseconds (a request may ask for less).
    pub request_timeout_ms: u64,
    /// Longest one HTTP request may take (not SSE streams), milliseconds.
    pub http_timeout_ms: u64,
    /// Largest request body, bytes; larger → 413.
    pub max_body_bytes: usize,
    /// Origins allowed to call the API from a browser (CORS), comma separated; empty: only
    /// the bridge's own UI (same origin); `*`: any origin (bearer tokens only, no cookie).
    pub cors_allowed_origins: String,
    /// PEM certificate chain; with `tls_key`, the listener speaks HTTPS only.
    pub tls_cert: String,
    /// PEM private key of `tls_cert`.
    pub tls_key: String,
    /// How long a stopping bridge lets open requests finish, milliseconds.
    pub shutdown_grace_ms: u64,
    /// The KV bucket the state service mirrors into (its `kv_bucket`), which watches follow.
    pub state_bucket: String,
}

impl Default for WebApiConfig {
    fn default() -> Self {
        WebApiConfig {
            common: CommonConfig {
                // The bridge serves `/healthz` on its own listener.
                health_listen: String::new(),
                ..CommonConfig::default()
            },
            listen: "127.0.0.1:8080".into(),
            session_ttl_secs: 8 * 3600,
            max_sessions: 1000,
            request_timeout_ms: 5000,
            http_timeout_ms: 30_000,
            max_body_bytes: 1024 * 1024 + 64 * 1024,
            cors_allowed_origins: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            shutdown_grace_ms: 5000,
            state_bucket: "plantd-state".into(),
        }
    }
}

impl WebApiConfig {
    /// Every problem with the settings, each naming the setting.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!(
                "listen: {:?} is not an address such as 127.0.0.1:8080",
                self.listen
            ));
        }
        if self.session_ttl_secs == 0 {
            problems.push("session_ttl_secs: must be at least 1".into());
        }
        if self.max_sessions == 0 {
            problems.push("max_sessions: must be at least 1".into());
        }
        if self.request_timeout_ms == 0 {
            problems.push("request_timeout_ms: must be at least 1".into());
        }
        if self.http_timeout_ms == 0 {
            problems.push("http_timeout_ms: must be at least 1".into());
        }
        if self.max_body_bytes == 0 {
            problems.push("max_body_bytes: must be at least 1".into());
        }
        if self.state_bucket.is_empty() {
            problems.push("state_bucket: must not be empty".into());
        }
        if self.tls_cert.is_empty() != self.tls_key.is_empty() {
            problems.push("tls_cert, tls_key: set both for HTTPS, or neither".into());
        }
        for origin in self.cors_origins() {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                problems.push(format!(
                    "cors_allowed_origins: {origin:?} is not an origin such as https://scada.plant"
                ));
            }
        }
        problems
    }

    /// The CORS origins, trimmed, empty entries dropped.
    pub fn cors_origins(&self) -> Vec<String> {
        self.cors_allowed_origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Whether people log in (a login creds file is configured).
    pub fn auth(&self) -> bool {
        !self.common.nats_creds.is_empty()
    }

    /// [`WebApiConfig::request_timeout_ms`] as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_settings_are_named() {
        assert!(WebApiConfig::default().problems().is_empty());
        let bad = WebApiConfig {
            listen: "nowhere".into(),
            tls_cert: "/c.pem".into(),
            cors_allowed_origins: "https://ok.example, ftp://x".into(),
            max_body_bytes: 0,
            ..WebApiConfig::default()
        };
        let problems = bad.problems().join("\n");
        for setting in [
            "listen:",
            "tls_cert, tls_key:",
            "cors_allowed_origins:",
            "max_body_bytes:",
        ] {
            assert!(problems.contains(setting), "{setting} in {problems}");
        }
    }
}
