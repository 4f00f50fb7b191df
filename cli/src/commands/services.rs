//! `plant services ls|info|stats [NAME]`: service discovery over `$SRV` (ADR-32).
//!
//! A discovery request reaches every instance, so replies are gathered until the timeout or
//! until no new reply came for a short quiet period after the first.

use std::{io::Write, time::Duration};

use futures::StreamExt;
use plantd_shared::{
    micro::protocol::{InfoResponse, PingResponse, StatsResponse},
    subjects,
};
use serde::de::DeserializeOwned;

use crate::{context::GlobalArgs, output};

/// Arguments of `plant services`.
#[derive(Debug, clap::Args)]
pub struct ServicesArgs {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    /// List running instances ($SRV.PING).
    Ls {
        /// Only this service.
        name: Option<String>,
    },
    /// Endpoints of each instance ($SRV.INFO).
    Info {
        /// Only this service.
        name: Option<String>,
    },
    /// Request counters of each instance ($SRV.STATS).
    Stats {
        /// Only this service.
        name: Option<String>,
    },
}

/// Quiet period after the last reply before discovery stops waiting.
const QUIET: Duration = Duration::from_millis(250);

impl ServicesArgs {
    /// Runs the discovery verb and prints the instances.
    pub async fn run(self, global: &GlobalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
        let client = global.connect().await?;
        match self.verb {
            Verb::Ls { name } => {
                let mut pings: Vec<PingResponse> =
                    gather(&client, "PING", name.as_deref(), global.timeout).await?;
                pings.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
                let rows = pings
                    .iter()
                    .map(|p| vec![p.name.clone(), p.version.clone(), p.id.clone()])
                    .collect();
                output::render(out, global.output, &pings, &["NAME", "VERSION", "ID"], rows)?;
            }
            Verb::Info { name } => {
                let mut infos: Vec<InfoResponse> =
                    gather(&client, "INFO", name.as_deref(), global.timeout).await?;
                infos.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
                let rows = infos
                    .iter()
                    .flat_map(|i| {
                        i.endpoints.iter().map(move |e| {
                            vec![
                                i.name.clone(),
                                i.id.clone(),
                                e.name.clone(),
                                e.subject.clone(),
                                e.queue_group.clone(),
                            ]
                        })
                    })
                    .collect();
                output::render(
                    out,
                    global.output,
                    &infos,
                    &["SERVICE", "ID", "ENDPOINT", "SUBJECT", "QUEUE"],
                    rows,
                )?;
            }
            Verb::Stats { name } => {
                let mut stats: Vec<StatsResponse> =
                    gather(&client, "STATS", name.as_deref(), global.timeout).await?;
                stats.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
                let rows = stats
                    .iter()
                    .flat_map(|s| {
                        s.endpoints.iter().map(move |e| {
                            vec![
                                s.name.clone(),
                                s.id.clone(),
                                e.name.clone(),
                                e.num_requests.to_string(),
                                e.num_errors.to_string(),
                                format!("{:.3}ms", e.average_processing_time as f64 / 1e6),
                                e.last_error.clone(),
                            ]
                        })
                    })
                    .collect();
                output::render(
                    out,
                    global.output,
                    &stats,
                    &[
                        "SERVICE",
                        "ID",
                        "ENDPOINT",
                        "REQUESTS",
                        "ERRORS",
                        "AVG",
                        "LAST ERROR",
                    ],
                    rows,
                )?;
            }
        }
        Ok(())
    }
}

/// Sends one discovery request and gathers every instance's reply.
pub async fn gather<T: DeserializeOwned>(
    client: &async_nats::Client,
    verb: &str,
    name: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<Vec<T>> {
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await?;
    client
        .publish_with_reply(subjects::srv(verb, name, None), inbox, bytes::Bytes::new())
        .await?;
    client.flush().await?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut found = Vec::new();
    loop {
        let wait_until = if found.is_empty() {
            deadline
        } else {
            deadline.min(tokio::time::Instant::now() + QUIET)
        };
        match tokio::time::timeout_at(wait_until, replies.next()).await {
            Ok(Some(msg)) => match serde_json::from_slice::<T>(&msg.payload) {
                Ok(reply) => found.push(reply),
                Err(err) => tracing::warn!(error = %err, "ignoring malformed discovery reply"),
            },
            Ok(None) | Err(_) => break,
        }
    }
    Ok(found)
}
