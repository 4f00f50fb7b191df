//! Benching a running plantd (`--server`): which services answer, and with what settings.
//!
//! The state service announces its KV bucket and durability in its `$SRV.INFO` metadata. A
//! remote server runs one durability, so the set scenarios that need the other one are
//! skipped with the reason rather than measured against the wrong configuration.
//!
//! The bus scenarios need the bus service (its streams and the `jobs` pipe). `pipe-64` pushes
//! items onto `jobs` and takes and acks whatever that pipe holds, so on a shared server it
//! runs only while nobody else uses the pipe: nothing pending, nothing in progress, no worker
//! pulling.

use async_nats::jetstream::{self, consumer::PullConsumer};
use plantd_shared::{
    micro::protocol::{InfoResponse, PingResponse},
    subjects,
};
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
    buses: bool,
    /// Why the `jobs` pipe is not free for the bench, if it is not.
    pipe_busy: Option<String>,
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
        let buses = discovery::ask::<PingResponse>(client, "PING", subjects::bus::SERVICE)
            .await
            .is_some();
        let pipe_busy = if buses {
            pipe_in_use(client).await
        } else {
            None
        };
        Remote {
            server: server.to_string(),
            echo,
            buses,
            pipe_busy,
            state,
        }
    }

    /// Why `scenario` cannot run against this server, if it cannot.
    pub fn skip_reason(&self, scenario: Scenario) -> Option<String> {
        if scenario.over_http() {
            return Some("needs --local, which starts a web-api bridge of its own".into());
        }
        match scenario.target() {
            Target::Echo if !self.echo => Some(format!(
                "no echo service answers $SRV.PING.echo at {}",
                self.server
            )),
            Target::Echo => None,
            Target::Bus if !self.buses => Some(format!(
                "no bus service answers $SRV.PING.{} at {}",
                subjects::bus::SERVICE,
                self.server
            )),
            Target::Bus if scenario == Scenario::Pipe64 => self.pipe_busy.clone(),
            Target::Bus => None,
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

/// Why `pipe-64` may not use the `jobs` pipe of a shared server, if it may not.
async fn pipe_in_use(client: &async_nats::Client) -> Option<String> {
    let pipe = super::buses::PIPE;
    let js = jetstream::new(client.clone());
    let consumer: PullConsumer = match js
        .get_consumer_from_stream(pipe, subjects::pipe::STREAM)
        .await
    {
        Ok(c) => c,
        Err(e) => return Some(format!("cannot read the consumer of pipe {pipe}: {e}")),
    };
    match consumer.get_info().await {
        Ok(info) if info.num_pending == 0 && info.num_ack_pending == 0 && info.num_waiting == 0 => {
            None
        }
        Ok(info) => Some(format!(
            "pipe {pipe} is in use ({} pending, {} in progress, {} pulls waiting): the bench \
             would take its items (use --local)",
            info.num_pending, info.num_ack_pending, info.num_waiting
        )),
        Err(e) => Some(format!("cannot read the consumer of pipe {pipe}: {e}")),
    }
}
