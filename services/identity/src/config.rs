//! The identity service's settings (`PLANTD_IDENTITY_<SETTING>`), flat like every service's.
//!
//! Identity needs two directories: its own `data_dir` (the SQLite database of users, roles,
//! sessions and revocations) and the bootstrap's `auth_dir`, from which it reads the public
//! keys, the plantd account *signing* seed (to sign user JWTs), the operator *signing* seed (to
//! re-sign the account JWT with revocations) and `creds/sys.creds` (to push it with
//! `$SYS.REQ.CLAIMS.UPDATE`). The seeds are read once at start and never logged.

use std::time::Duration;

use plantd_shared::config::CommonConfig;
use serde::{Deserialize, Serialize};

/// Configuration of the identity service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct IdentityConfig {
    /// Settings every service has. `nats_creds` should be `<auth_dir>/creds/identity.creds`.
    #[serde(flatten)]
    pub common: CommonConfig,
    /// Directory of the SQLite database (`identity.db`); created if missing.
    pub data_dir: String,
    /// The bootstrap's `auth` directory (`plant admin init`): keys, accounts, creds.
    pub auth_dir: String,
    /// Lifetime of a person's user JWT, seconds (default 12 h). `refresh` renews it.
    pub user_jwt_ttl_secs: u64,
    /// Allowed difference between a proof's timestamp and the service clock, seconds.
    pub clock_skew_secs: u64,
    /// Login attempts per username per minute (also the burst).
    pub login_rate_per_user: u32,
    /// Login attempts per client key per minute (also the burst); see docs/identity.md for
    /// why this is weaker than it sounds.
    pub login_rate_per_client: u32,
    /// Shortest password accepted, characters.
    pub min_password_len: usize,
    /// The state service's KV bucket, whose watch permissions roles grant per scope.
    pub state_bucket: String,
    /// How often the account JWT on the server is compared with identity's (and re-pushed if
    /// it differs, e.g. after the resolver store was lost), seconds; 0 disables.
    pub account_check_secs: u64,
    /// Password hashes computed at once (argon2id needs ~19 MiB each).
    pub max_concurrent_hashes: usize,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            common: CommonConfig::default(),
            data_dir: ".plantd/identity".into(),
            auth_dir: ".plantd/auth".into(),
            user_jwt_ttl_secs: 12 * 3600,
            clock_skew_secs: 60,
            login_rate_per_user: 5,
            login_rate_per_client: 10,
            min_password_len: 8,
            state_bucket: crate::bootstrap::STATE_BUCKET.into(),
            account_check_secs: 60,
            max_concurrent_hashes: 2,
        }
    }
}

impl IdentityConfig {
    /// The user JWT lifetime.
    pub fn user_jwt_ttl(&self) -> Duration {
        Duration::from_secs(self.user_jwt_ttl_secs)
    }

    /// Settings that are well-typed but unusable, each with its name.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut require = |ok: bool, problem: &str| {
            if !ok {
                problems.push(problem.to_string());
            }
        };
        require(!self.data_dir.is_empty(), "data_dir must not be empty");
        require(!self.auth_dir.is_empty(), "auth_dir must not be empty");
        require(
            (60..=30 * 24 * 3600).contains(&self.user_jwt_ttl_secs),
            "user_jwt_ttl_secs must be 60..=2592000 (one minute to 30 days)",
        );
        require(
            (1..=3600).contains(&self.clock_skew_secs),
            "clock_skew_secs must be 1..=3600",
        );
        require(
            self.login_rate_per_user >= 1,
            "login_rate_per_user must be at least 1",
        );
        require(
            self.login_rate_per_client >= 1,
            "login_rate_per_client must be at least 1",
        );
        require(
            (1..=1024).contains(&self.min_password_len),
            "min_password_len must be 1..=1024",
        );
        require(
            !self.state_bucket.is_empty(),
            "state_bucket must not be empty",
        );
        require(
            self.max_concurrent_hashes >= 1,
            "max_concurrent_hashes must be at least 1",
        );
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_each_named() {
        assert!(IdentityConfig::default().problems().is_empty());
        let bad = IdentityConfig {
            user_jwt_ttl_secs: 1,
            clock_skew_secs: 0,
            login_rate_per_user: 0,
            auth_dir: String::new(),
            ..IdentityConfig::default()
        };
        let problems = bad.problems();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("user_jwt_ttl_secs")));
    }
}
