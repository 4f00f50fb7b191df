//! The echo module's settings: the common ones plus the bound on `slow`.

use plantd_shared::{config::CommonConfig, module::ModuleConfig};
use serde::{Deserialize, Serialize};

/// Configuration of the echo module (`PLANTD_ECHO_<SETTING>`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EchoConfig {
    /// Settings every service has.
    #[serde(flatten)]
    pub common: CommonConfig,
    /// Settings every module has (registry, requirements, clients).
    #[serde(flatten)]
    pub module: ModuleConfig,
    /// Longest sleep `plantd.echo.slow` accepts, in milliseconds; longer requests get a 400.
    /// Keep it below `handler_timeout_ms`, or slow requests past the deadline get a 504.
    pub max_slow_ms: u32,
    /// Longest message `plantd.echo.echo` accepts, in bytes; longer ones get a 413.
    pub max_message_bytes: usize,
}

impl Default for EchoConfig {
    fn default() -> Self {
        EchoConfig {
            common: CommonConfig::default(),
            module: ModuleConfig::default(),
            max_slow_ms: 20_000,
            max_message_bytes: 64 * 1024,
        }
    }
}
