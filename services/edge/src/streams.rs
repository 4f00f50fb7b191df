//! The streams that cross an edge link, and the JetStream API calls that keep them sourcing.
//!
//! Each side *sources* from the other across JetStream domains, with the `external` API prefix
//! `$JS.<domain>.API` (async-nats' `Source.domain` is refused by nats-server 2.15, so the
//! stream configs are written as JSON here, NATS-PITFALLS.md §6.2):
//!
//! | at | stream | sources |
//! |---|---|---|
//! | hub | `PLANTD_SITE_<site>_BUS` | the site's `PLANTD_BUS_DATA` and `PLANTD_BUS_EVENT`: telemetry and events, lossless |
//! | hub | `KV_plantd-site-<site>` | the site's `KV_plantd-state`, keys renamed into bucket `plantd-site-<site>`: a read-only copy of the site's state |
//! | site | `PLANTD_HUB_CONTROL` | the hub's `PLANTD_BUS_CONTROL`, only `plantd.bus.control.<site>.>`: commands and setpoints for this site |
//!
//! None has subjects of its own, so nobody can publish into a copy. A source resumes from the
//! last upstream sequence it stored, so an outage loses nothing as long as the upstream keeps
//! its messages (edge retention must outlast outages).
//!
//! After a link outage nats-server retries a source on a backoff that took 25–40 s to catch up
//! in probes. [`reattach`] removes and re-adds a stream's sources (the server then computes
//! each one's resume point from what the stream holds), which starts the catch-up at once.

use std::time::Duration;

use plantd_schemas::edge::v1::StreamStatus;
use serde_json::{Value, json};

/// How long a JetStream API call may take.
pub const API_TIMEOUT: Duration = Duration::from_secs(5);

/// Nanoseconds in a day, for `max_age`.
const DAY_NANOS: u64 = 24 * 3600 * 1_000_000_000;

/// A stream that sources across the link: its name and whole config.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcedStream {
    /// Stream name.
    pub name: String,
    /// Its config, `sources` included.
    pub config: Value,
}

fn external(domain: &str) -> Value {
    json!({"api": format!("$JS.{domain}.API"), "deliver": ""})
}

/// The bucket that holds the hub's copy of `site`'s state.
pub fn site_state_bucket(site: &str) -> String {
    format!("plantd-site-{site}")
}

/// The hub's stream of `site`'s bus traffic.
pub fn site_bus_stream(site: &str) -> String {
    format!("PLANTD_SITE_{site}_BUS")
}

/// The site stream holding the hub's commands for it.
pub const HUB_CONTROL_STREAM: &str = "PLANTD_HUB_CONTROL";

/// What the hub keeps of `site`.
pub fn hub_streams(site: &str) -> Vec<SourcedStream> {
    let bus = site_bus_stream(site);
    let bucket = site_state_bucket(site);
    let kv = format!("KV_{bucket}");
    let bus_sources: Vec<Value> = ["PLANTD_BUS_DATA", "PLANTD_BUS_EVENT"]
        .iter()
        .map(|name| json!({"name": name, "external": external(site)}))
        .collect();
    vec![
        SourcedStream {
            config: json!({
                "name": bus,
                "description": format!("site {site}: its data and event buses, sourced across the edge link"),
                "storage": "file",
                "retention": "limits",
                "discard": "old",
                "max_age": 30 * DAY_NANOS,
                "sources": bus_sources,
            }),
            name: bus,
        },
        SourcedStream {
            config: json!({
                "name": kv,
                "description": format!("site {site}: read-only copy of its state, sourced across the edge link"),
                "storage": "file",
                "retention": "limits",
                "discard": "old",
                "max_msgs_per_subject": 1,
                "allow_rollup_hdrs": true,
                "deny_delete": true,
                "allow_direct": true,
                "sources": [{
                    "name": "KV_plantd-state",
                    "external": external(site),
                    "subject_transforms": [{
                        "src": "$KV.plantd-state.>",
                        "dest": format!("$KV.{bucket}.>"),
                    }],
                }],
            }),
            name: kv,
        },
    ]
}

/// What a site keeps of its hub.
pub fn site_streams(site: &str, hub_domain: &str) -> Vec<SourcedStream> {
    vec![SourcedStream {
        name: HUB_CONTROL_STREAM.into(),
        config: json!({
            "name": HUB_CONTROL_STREAM,
            "description": format!("the hub's commands and setpoints for site {site}, sourced across the edge link"),
            "storage": "file",
            "retention": "limits",
            "discard": "old",
            "max_age": 30 * DAY_NANOS,
            "sources": [{
                "name": "PLANTD_BUS_CONTROL",
                "filter_subject": format!("plantd.bus.control.{site}.>"),
                "external": external(hub_domain),
            }],
        }),
    }]
}

/// Calls a JetStream API subject with a JSON body; a reply with `error` is an `Err`.
pub async fn api(
    client: &async_nats::Client,
    subject: String,
    body: &Value,
) -> Result<Value, String> {
    let request = async_nats::Request::new()
        .payload(body.to_string().into())
        .timeout(Some(API_TIMEOUT));
    let reply = client
        .send_request(subject.clone(), request)
        .await
        .map_err(|e| format!("{subject}: {e}"))?;
    let value: Value = serde_json::from_slice(&reply.payload)
        .map_err(|e| format!("{subject}: reply is not JSON: {e}"))?;
    match value.get("error") {
        Some(error) => Err(format!("{subject}: {error}")),
        None => Ok(value),
    }
}

/// Creates the stream, or updates it to `config` if it exists.
pub async fn ensure(client: &async_nats::Client, stream: &SourcedStream) -> Result<(), String> {
    let created = api(
        client,
        format!("$JS.API.STREAM.CREATE.{}", stream.name),
        &stream.config,
    )
    .await;
    match created {
        Ok(_) => Ok(()),
        Err(err) if err.contains("10058") => api(
            client,
            format!("$JS.API.STREAM.UPDATE.{}", stream.name),
            &stream.config,
        )
        .await
        .map(drop),
        Err(err) => Err(err),
    }
}

/// Removes and re-adds the stream's sources, so the server starts copying at once from where
/// each source stopped instead of waiting out its retry backoff.
pub async fn reattach(client: &async_nats::Client, stream: &SourcedStream) -> Result<(), String> {
    let subject = format!("$JS.API.STREAM.UPDATE.{}", stream.name);
    let mut detached = stream.config.clone();
    detached["sources"] = json!([]);
    api(client, subject.clone(), &detached).await?;
    api(client, subject, &stream.config).await.map(drop)
}

/// How the stream and its sources stand.
pub async fn status(client: &async_nats::Client, name: &str) -> StreamStatus {
    let info = match api(client, format!("$JS.API.STREAM.INFO.{name}"), &json!({})).await {
        Ok(info) => info,
        Err(error) => {
            return StreamStatus {
                name: name.to_string(),
                active_ms: -1,
                error,
                ..StreamStatus::default()
            };
        }
    };
    let sources = info["sources"].as_array().cloned().unwrap_or_default();
    let lag = sources.iter().filter_map(|s| s["lag"].as_u64()).sum();
    let active_ms = sources
        .iter()
        .filter_map(|s| s["active"].as_i64())
        .filter(|ns| *ns >= 0)
        .max()
        .map_or(-1, |ns| ns / 1_000_000);
    let error = sources
        .iter()
        .filter_map(|s| s["error"]["description"].as_str())
        .collect::<Vec<_>>()
        .join("; ");
    StreamStatus {
        name: name.to_string(),
        messages: info["state"]["messages"].as_u64().unwrap_or(0),
        lag,
        active_ms,
        error,
    }
}

/// Whether the other side's JetStream answers across the link.
pub async fn reachable(client: &async_nats::Client, domain: &str, timeout: Duration) -> bool {
    let request = async_nats::Request::new().timeout(Some(timeout));
    client
        .send_request(format!("$JS.{domain}.API.INFO"), request)
        .await
        .is_ok_and(|reply| {
            serde_json::from_slice::<Value>(&reply.payload).is_ok_and(|v| v.get("error").is_none())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_have_no_subjects_and_source_across_the_domain() {
        for stream in hub_streams("site1")
            .iter()
            .chain(&site_streams("site1", "hub"))
        {
            assert!(
                stream.config.get("subjects").is_none(),
                "{}: read-only",
                stream.name
            );
            for source in stream.config["sources"].as_array().unwrap() {
                assert!(source.get("domain").is_none(), "2.15 refuses `domain`");
                assert!(
                    source["external"]["api"]
                        .as_str()
                        .unwrap()
                        .starts_with("$JS.")
                );
            }
        }
        let hub = hub_streams("site1");
        assert_eq!(hub[0].name, "PLANTD_SITE_site1_BUS");
        assert_eq!(
            hub[1].config["sources"][0]["subject_transforms"][0]["dest"],
            "$KV.plantd-site-site1.>"
        );
        let site = site_streams("site1", "hub");
        assert_eq!(
            site[0].config["sources"][0]["filter_subject"],
            "plantd.bus.control.site1.>"
        );
    }
}
