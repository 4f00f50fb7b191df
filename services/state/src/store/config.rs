//! Settings of the SQLite store: durability, scope creation, pool and batch sizes, limits.
//!
//! A plain struct with `Default` and serde, as the workspace conventions ask; the service config
//! embeds it. [`StoreConfig::check`] reports a setting that cannot work (a zero-sized pool or
//! queue) as a 400 naming the setting instead of letting it panic deep inside tokio.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::validate::Limits;

/// How hard a commit waits for the disk (SQLite `PRAGMA synchronous` in WAL mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `synchronous=NORMAL`: a commit survives a crash of the process; a power loss may lose
    /// the last acknowledged commits (never corrupts). Faster; an opt-in trade-off.
    Normal,
    /// `synchronous=FULL` (the default): the WAL is synced at every commit, so an acknowledged
    /// write also survives a power loss, as etcd and Consul promise. Group commit amortises
    /// the sync over a batch.
    #[default]
    Full,
}

impl Durability {
    /// The value for `PRAGMA synchronous`.
    pub fn pragma_value(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

/// Settings for [`super::Store::open`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Whether a commit is synced to disk (`full`) or only to the OS (`normal`).
    pub durability: Durability,
    /// Whether `set` in a scope that does not exist creates the scope instead of failing with 404.
    pub auto_create_scopes: bool,
    /// Number of read-only connections readers share (default 4).
    pub read_pool_size: usize,
    /// Most bytes of keys and values the get cache holds (default 8 MiB; 0 = no cache).
    pub read_cache_bytes: usize,
    /// Writes that may wait for the writer before `submit` waits too (backpressure).
    pub queue_capacity: usize,
    /// Most writes applied in one transaction (one group commit).
    pub max_batch: usize,
    /// How long a connection waits for a lock held by another process, in milliseconds.
    pub busy_timeout_ms: u64,
    /// Size limits for keys and values.
    pub limits: Limits,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            durability: Durability::default(),
            auto_create_scopes: false,
            read_pool_size: 4,
            read_cache_bytes: 8 * 1024 * 1024,
            queue_capacity: 1024,
            max_batch: 512,
            busy_timeout_ms: 5000,
            limits: Limits::default(),
        }
    }
}

impl StoreConfig {
    /// The busy timeout as a [`Duration`].
    pub fn busy_timeout(&self) -> Duration {
        Duration::from_millis(self.busy_timeout_ms)
    }

    /// Rejects settings the store cannot run with.
    pub fn check(&self) -> Result<(), StoreError> {
        for (field, value) in [
            ("read_pool_size", self.read_pool_size),
            ("queue_capacity", self.queue_capacity),
            ("max_batch", self.max_batch),
        ] {
            if value == 0 {
                return Err(StoreError::invalid(
                    field,
                    format!("{field} must be at least 1"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_is_lowercase_in_config() {
        use serde::de::IntoDeserializer;
        use serde::de::value::Error;
        let parse = |s: &str| {
            Durability::deserialize(
                s.into_deserializer() as serde::de::value::StrDeserializer<'_, Error>
            )
        };
        assert_eq!(parse("full"), Ok(Durability::Full));
        assert_eq!(parse("normal"), Ok(Durability::Normal));
        assert!(parse("Full").is_err());
        assert_eq!(Durability::Full.pragma_value(), "FULL");
    }

    #[test]
    fn full_is_the_default_everywhere() {
        assert_eq!(Durability::default(), Durability::Full);
        assert_eq!(StoreConfig::default().durability, Durability::Full);
        assert_eq!(
            crate::config::StateConfig::default().store().durability,
            Durability::Full
        );
    }

    #[test]
    fn zero_sizes_are_rejected_by_name() {
        let config = StoreConfig {
            read_pool_size: 0,
            ..StoreConfig::default()
        };
        let err = config.check().unwrap_err();
        assert_eq!((err.code(), err.field()), (400, Some("read_pool_size")));
        assert!(StoreConfig::default().check().is_ok());
    }
}
