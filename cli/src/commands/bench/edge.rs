//! `edge-catchup`: how fast a hub copies a site's backlog across a leaf node once the link is
//! back, vs the raw rate of a stream source on one server.
//!
//! The scenario runs two nats-servers of its own on loopback: a hub with a leaf-node listener
//! and a site (its own JetStream domain) linked to it, open mode. Each round is what happens
//! after an outage, at the stream level: the copy's sources are detached (the cut), `count`
//! messages are published at the upstream with acks (untimed: the backlog), then the sources
//! are re-attached and the round times until the copy holds them all.
//!
//! * plantd: the site's data bus stream → the hub's `PLANTD_SITE_<site>_BUS`, with plantd-edge's
//!   own stream configs and re-attach (`plantd_edge::streams`), across the leaf node and the
//!   `$JS.<site>.API` prefix;
//! * baseline: a stream and a stream sourcing it on the hub alone, the same re-attach.
//!
//! A message's latency is the time from the re-attach until the copy's count covered it, so
//! p50 is the time to copy half the backlog. The TCP reconnect itself is not in the round
//! (tests/tests/edge.rs times a real cut end to end).

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use async_nats::Client;
use plantd_edge::streams::{self, SourcedStream};
use plantd_shared::nats_server::{self, NatsServer};
use serde_json::json;
use tokio::time::Instant;

use super::{
    load::{Outcome, closed_loop, op, round},
    progress::Progress,
    scenarios::{Drive, Pair, Side},
    stats::RoundStats,
};

/// The bench site's name (its JetStream domain).
const SITE: &str = "bench-edge";
/// Acked publishes outstanding while the backlog is written.
const WINDOW: usize = 64;
/// How long the copy may take to catch up before the round fails.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(60);

/// The two servers, kept alive by the sides' rounds.
struct Servers {
    _hub: NatsServer,
    _site: NatsServer,
    _dir: tempfile::TempDir,
}

/// Builds both sides (and starts their servers).
pub async fn catchup_pair(label: String) -> anyhow::Result<Pair> {
    let dir = tempfile::Builder::new()
        .prefix("plant-bench-edge-")
        .tempdir()?;
    let leaf_port = nats_server::free_port()?;
    let mut hub_options = nats_server::Options::new(dir.path().join("hub"));
    hub_options.extra_config =
        format!("leafnodes {{\n  listen: \"127.0.0.1:{leaf_port}\"\n  no_advertise: true\n}}\n");
    let hub = NatsServer::start(hub_options).await?;
    let mut site_options = nats_server::Options::new(dir.path().join("site"));
    site_options.template = Some(
        nats_server::HUB_TEMPLATE
            .replace(
                "server_name: plantd-hub",
                &format!("server_name: plantd-{SITE}"),
            )
            .replace("domain: hub", &format!("domain: {SITE}")),
    );
    site_options.extra_config = format!(
        "leafnodes {{\n  reconnect: 1\n  remotes: [ {{ url: \"nats-leaf://127.0.0.1:{leaf_port}\" }} ]\n}}\n"
    );
    let site = NatsServer::start(site_options).await?;
    let hub_client = async_nats::connect(hub.url()).await?;
    let site_client = async_nats::connect(site.url()).await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !streams::reachable(&hub_client, SITE, Duration::from_millis(500)).await {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the bench site's leaf link did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (name, subjects) in [
        ("PLANTD_BUS_DATA", "plantd.bus.data.>"),
        ("PLANTD_BUS_EVENT", "plantd.bus.event.>"),
    ] {
        let upstream = SourcedStream {
            name: name.into(),
            config: json!({"name": name, "subjects": [subjects], "storage": "file"}),
        };
        streams::ensure(&site_client, &upstream)
            .await
            .map_err(anyhow::Error::msg)?;
    }
    let copy = streams::hub_streams(SITE)
        .into_iter()
        .next()
        .context("plantd-edge has a bus stream per site")?;
    streams::ensure(&hub_client, &copy)
        .await
        .map_err(anyhow::Error::msg)?;
    let raw_source = SourcedStream {
        name: "BENCH_RAW_UPSTREAM".into(),
        config: json!({"name": "BENCH_RAW_UPSTREAM", "subjects": ["bench.raw.>"], "storage": "file"}),
    };
    let raw_copy = SourcedStream {
        name: "BENCH_RAW_COPY".into(),
        config: json!({"name": "BENCH_RAW_COPY", "storage": "file", "sources": [{"name": "BENCH_RAW_UPSTREAM"}]}),
    };
    for stream in [&raw_source, &raw_copy] {
        streams::ensure(&hub_client, stream)
            .await
            .map_err(anyhow::Error::msg)?;
    }
    let servers = Arc::new(Servers {
        _hub: hub,
        _site: site,
        _dir: dir,
    });
    Ok(Pair {
        plantd: Side {
            label: "plantd".into(),
            drive: Drive::Round(catch_up(Backlog {
                upstream: site_client,
                subject: format!("plantd.bus.data.{SITE}.line1.temp"),
                copy_server: hub_client.clone(),
                copy,
                servers: Arc::clone(&servers),
            })),
            mirror: None,
        },
        baseline: Side {
            label,
            drive: Drive::Round(catch_up(Backlog {
                upstream: hub_client.clone(),
                subject: "bench.raw.line1.temp".into(),
                copy_server: hub_client,
                copy: raw_copy,
                servers,
            })),
            mirror: None,
        },
        created: Vec::new(),
    })
}

/// One path: where the backlog is written and which stream copies it.
#[derive(Clone)]
struct Backlog {
    upstream: Client,
    subject: String,
    copy_server: Client,
    copy: SourcedStream,
    servers: Arc<Servers>,
}

/// Messages `stream` holds.
async fn messages(client: &Client, stream: &str) -> Result<u64, String> {
    let info = streams::api(client, format!("$JS.API.STREAM.INFO.{stream}"), &json!({})).await?;
    Ok(info["state"]["messages"].as_u64().unwrap_or(0))
}

fn catch_up(path: Backlog) -> super::load::Round {
    round(move |count, limit, progress: Progress| {
        let path = path.clone();
        async move {
            let _alive = &path.servers;
            let failed = |err: String| Outcome {
                stats: RoundStats::from_samples(Vec::new(), count, Duration::ZERO, false),
                first_error: Some(err),
            };
            let mut detached = path.copy.config.clone();
            detached["sources"] = json!([]);
            let cut = format!("$JS.API.STREAM.UPDATE.{}", path.copy.name);
            if let Err(err) = streams::api(&path.copy_server, cut, &detached).await {
                return failed(err);
            }
            let js = async_nats::jetstream::new(path.upstream.clone());
            let subject: Arc<str> = path.subject.clone().into();
            let publish = op(move |n| {
                let (js, subject) = (js.clone(), Arc::clone(&subject));
                async move {
                    let ack = js
                        .publish(subject.to_string(), n.to_string().into())
                        .await
                        .map_err(|e| e.to_string())?;
                    ack.await.map(drop).map_err(|e| e.to_string())
                }
            });
            let written = closed_loop(&publish, count, WINDOW, limit, &Progress::hidden()).await;
            if let Some(err) = written.first_error {
                return failed(format!("writing the backlog: {err}"));
            }
            let before = match messages(&path.copy_server, &path.copy.name).await {
                Ok(n) => n,
                Err(err) => return failed(err),
            };
            let start = Instant::now();
            if let Err(err) = streams::reattach(&path.copy_server, &path.copy).await {
                return failed(err);
            }
            let target = before + count as u64;
            let mut latencies = Vec::with_capacity(count);
            loop {
                let held = messages(&path.copy_server, &path.copy.name)
                    .await
                    .unwrap_or(before);
                let copied = held.saturating_sub(before).min(count as u64) as usize;
                while latencies.len() < copied {
                    latencies.push(start.elapsed());
                    progress.tick();
                }
                if held >= target {
                    break;
                }
                if start.elapsed() > CATCH_UP_LIMIT {
                    let elapsed = start.elapsed();
                    return Outcome {
                        stats: RoundStats::from_samples(latencies, count - copied, elapsed, true),
                        first_error: Some(format!(
                            "copied {copied} of {count} within {CATCH_UP_LIMIT:?}"
                        )),
                    };
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Outcome {
                stats: RoundStats::from_samples(latencies, 0, start.elapsed(), false),
                first_error: None,
            }
        }
    })
}
