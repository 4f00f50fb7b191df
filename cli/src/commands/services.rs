//! `plant services ls|info|stats [NAME]`: service discovery over `$SRV` (ADR-32).
//!
//! A discovery request reaches every instance; `plantd_shared::micro::gather` collects them.

use std::io::Write;

use plantd_shared::micro::protocol::{InfoResponse, PingResponse, StatsResponse};

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

/// [`plantd_shared::micro::gather::gather`] with an `anyhow` error.
pub async fn gather<T: serde::de::DeserializeOwned>(
    client: &async_nats::Client,
    verb: &str,
    name: Option<&str>,
    timeout: std::time::Duration,
) -> anyhow::Result<Vec<T>> {
    plantd_shared::micro::gather::gather(client, verb, name, timeout)
        .await
        .map_err(|e| anyhow::anyhow!("discovery ${verb} failed: {e}"))
}
