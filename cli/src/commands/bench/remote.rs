//! Benching a running plantd (`--server`): which services answer, and with what settings.
//!
//! The state service announces its KV bucket and durability in its `$SRV.INFO` metadata. A
//! remote server runs one durability, so the set scenarios that need the other one are
//! skipped with the reason rather than measured against the wrong configuration.

use plantd_shared::micro::protocol::{InfoResponse, PingResponse};
use plantd_state::store::Durability;

use super::{
    args::{Scenario, Target},
    naive::durability_name,
};
use crate::discovery;

/// The state service found on the server.
#[derive(Debug, Clone)]
pub struct RemoteState {
    /// Its KV bucket.
    pub bucket: String,
    /// Its durability, if it says.
    pub durability: Option<Durability>,
}

/// What runs on the server.
#[derive(Debug, Clone)]
pub struct Remote {
    server: String,
    echo: bool,
    /// The state service, if one answers.
    pub state: Option<RemoteState>,
}

impl Remote {
    /// Asks the server which services run.
    pub async fn discover(client: &async_nats::Client, server: &str) -> Remote {
        let echo = discovery::ask::<PingResponse>(client, "PING", "echo")
            .await
            .is_some();
        let state = discovery::ask::<InfoResponse>(client, "INFO", "state")
            .await
            .map(|info| RemoteState {
                bucket: info
                    .metadata
                    .get("kv_bucket")
                    .cloned()
                    .unwrap_or_else(|| "plantd-state".into()),
                durability: match info.metadata.get("durability").map(String::as_str) {
                    Some("normal") => Some(Durability::Normal),
                    Some("full") => Some(Durability::Full),
                    _ => None,
                },
            });
        Remote {
            server: server.to_string(),
            echo,
            state,
        }
    }

    /// Why `scenario` cannot run against this server, if it cannot.
    pub fn skip_reason(&self, scenario: Scenario) -> Option<String> {
        match scenario.target() {
            Target::Echo if !self.echo => Some(format!(
                "no echo service answers $SRV.PING.echo at {}",
                self.server
            )),
            Target::Echo => None,
            Target::State => {
                let Some(state) = &self.state else {
                    return Some(format!(
                        "no state service answers $SRV.INFO.state at {}",
                        self.server
                    ));
                };
                match (scenario.durability(), state.durability) {
                    (Some(needed), Some(running)) if needed != running => Some(format!(
                        "the state service at {} runs durability={}, this scenario needs {} \
                         (use --local, which runs both)",
                        self.server,
                        durability_name(running),
                        durability_name(needed)
                    )),
                    _ => None,
                }
            }
        }
    }
}
