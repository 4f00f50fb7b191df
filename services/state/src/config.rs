//! The state service's settings (`PLANTD_STATE_<SETTING>`), flat like every service's, and
//! the store configuration derived from them.

use plantd_shared::config::CommonConfig;
use serde::{Deserialize, Serialize};

use crate::{
    store::{Durability, StoreConfig},
    validate::Limits,
};

/// Configuration of the state service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct StateConfig {
    /// Settings every service has.
    #[serde(flatten)]
    pub common: CommonConfig,
    /// Directory of the SQLite database (`state.db`); created if missing.
    pub data_dir: String,
    /// `full` (default: fsync per commit group; an acknowledged write survives power loss) or
    /// `normal` (survives a process crash only). See docs/performance.md for the measured cost.
    pub durability: Durability,
    /// Create a scope on its first `set` instead of answering 404.
    pub auto_create_scopes: bool,
    /// Largest value, bytes (default 1 MiB). Must leave room under the server's max_payload.
    pub max_value_bytes: usize,
    /// Largest key, bytes (default 1 KiB).
    pub max_key_bytes: usize,
    /// Read-only SQLite connections shared by get/list.
    pub read_pool_size: usize,
    /// Most bytes of keys and values the get cache holds (0 = no cache).
    pub read_cache_bytes: usize,
    /// Most writes committed in one transaction.
    pub max_batch: usize,
    /// JetStream KV bucket the state is mirrored into.
    pub kv_bucket: String,
    /// Revisions the bucket keeps per key (1..=64).
    pub kv_history: i64,
    /// Copies of the bucket a NATS cluster keeps (1, 3 or 5; 3 survives losing one server).
    pub kv_replicas: usize,
    /// Most outbox rows the mirror publishes before waiting for their acks.
    pub mirror_window: usize,
}

impl Default for StateConfig {
    fn default() -> Self {
        let store = StoreConfig::default();
        StateConfig {
            common: CommonConfig::default(),
            data_dir: ".plantd/state".into(),
            durability: Durability::Full,
            auto_create_scopes: false,
            max_value_bytes: store.limits.max_value_bytes,
            max_key_bytes: store.limits.max_key_bytes,
            read_pool_size: store.read_pool_size,
            read_cache_bytes: store.read_cache_bytes,
            max_batch: store.max_batch,
            kv_bucket: "plantd-state".into(),
            kv_history: 10,
            kv_replicas: 1,
            mirror_window: 256,
        }
    }
}

impl StateConfig {
    /// The store settings.
    pub fn store(&self) -> StoreConfig {
        StoreConfig {
            durability: self.durability,
            auto_create_scopes: self.auto_create_scopes,
            read_pool_size: self.read_pool_size,
            read_cache_bytes: self.read_cache_bytes,
            max_batch: self.max_batch,
            limits: Limits {
                max_key_bytes: self.max_key_bytes,
                max_value_bytes: self.max_value_bytes,
            },
            ..StoreConfig::default()
        }
    }

    /// Settings that are well-typed but unusable, each with its name.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(1..=64).contains(&self.kv_history) {
            problems.push(format!(
                "kv_history is {}, it must be 1..=64",
                self.kv_history
            ));
        }
        if ![1, 3, 5].contains(&self.kv_replicas) {
            problems.push(format!(
                "kv_replicas is {}, it must be 1, 3 or 5",
                self.kv_replicas
            ));
        }
        if self.mirror_window == 0 {
            problems.push("mirror_window must be at least 1".into());
        }
        if self.data_dir.is_empty() {
            problems.push("data_dir must not be empty".into());
        }
        if let Err(err) = self.store().check() {
            problems.push(err.to_string());
        }
        problems
    }
}
