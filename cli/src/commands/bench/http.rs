//! The `http-*` scenarios: plantd through the web-api bridge against plantd over NATS, in the
//! same run, so the ratio is what HTTP (JSON, a session lookup, axum, one more hop) costs a
//! browser or an HTTP client over what a NATS client pays.
//!
//! `http-state-get-64` reads the preloaded keys with 64 requests in flight over HTTP/1.1
//! keep-alive connections (reqwest's pool) vs the same gets over NATS. `http-watch` sets a key
//! over NATS and times until the bridge's SSE stream delivers the value, vs until a NATS watch
//! (`plantd_state::watch`) does: the write path is the same, only the listener differs.
//! `--local` runs the bridge without authentication, so both paths do the same work.

use std::sync::{Arc, atomic::AtomicU64};

use anyhow::Context as _;
use futures::StreamExt as _;
use plantd_schemas::state::v1::{GetRequest, GetResponse};
use plantd_shared::{sse::SseParser, subjects};
use plantd_state::watch::{WatchFrom, WatchSpec};

use super::{
    load::op,
    scenarios::{
        Drive, Env, Pair, SCOPE, Side, Values, WATCH_SCOPE, WatchedPath, get_key, pick,
        request_side, watched_side,
    },
};

/// Connections the HTTP client keeps open (at least the requests in flight).
const POOL: usize = 64;

fn bridge(env: &Env) -> anyhow::Result<String> {
    env.http_url
        .clone()
        .context("no web-api bridge runs (the http scenarios need --local)")
}

fn http_client(env: &Env) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(POOL)
        .timeout(env.timeout)
        .build()
        .context("cannot build the HTTP client")
}

/// Gets of the preloaded keys over HTTP vs over NATS.
pub fn get_pair(env: &Env, keys: usize, label: String) -> anyhow::Result<Pair> {
    let base = bridge(env)?;
    let client = http_client(env)?;
    let prefix: Arc<str> = format!("{base}/api/v1/state/{SCOPE}/keys/").into();
    let plantd = Side {
        label: "plantd http".into(),
        drive: Drive::Ops(op(move |i| {
            let url = format!("{prefix}{}", get_key(pick(i, keys)));
            let client = client.clone();
            async move {
                let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
                let status = resp.status();
                let body = resp.bytes().await.map_err(|e| e.to_string())?;
                if !status.is_success() {
                    return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
                }
                serde_json::from_slice::<serde_json::Value>(&body)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        })),
        mirror: None,
    };
    let encoding = env.encoding;
    let mut baseline =
        request_side::<GetResponse>(env, subjects::state::key_op("get", SCOPE), move |i| {
            encoding.encode(&GetRequest {
                key: get_key(pick(i, keys)),
            })
        });
    baseline.label = label;
    Ok(Pair {
        plantd,
        baseline,
        created: Vec::new(),
    })
}

/// A set over NATS heard through the bridge's SSE stream vs through a NATS watch.
pub async fn watch_pair(env: &Env, label: String) -> anyhow::Result<Pair> {
    let base = bridge(env)?;
    let resp = http_client(env)?
        .get(format!("{base}/api/v1/state/{WATCH_SCOPE}/watch?from=now"))
        .timeout(std::time::Duration::from_secs(24 * 3600))
        .send()
        .await
        .context("cannot open the bridge's watch")?;
    anyhow::ensure!(
        resp.status().is_success(),
        "the bridge refused the watch: {}",
        resp.status()
    );
    let mut parser = SseParser::new();
    let sse_values: Values = Box::pin(
        resp.bytes_stream()
            .map(move |chunk| match chunk {
                Ok(bytes) => parser
                    .push(&bytes)
                    .into_iter()
                    .filter(|e| e.event == "change")
                    .map(|e| {
                        serde_json::from_str::<serde_json::Value>(&e.data)
                            .map_err(|err| err.to_string())
                            .and_then(|v| {
                                v["value"]
                                    .as_str()
                                    .map(str::to_string)
                                    .ok_or_else(|| "a change without a value".to_string())
                            })
                    })
                    .collect::<Vec<_>>(),
                Err(err) => vec![Err(err.to_string())],
            })
            .flat_map(futures::stream::iter),
    );
    let spec = WatchSpec {
        scope: WATCH_SCOPE.into(),
        subtree: false,
        prefix: String::new(),
        from: WatchFrom::Now,
    };
    let nats_values: Values = Box::pin(
        plantd_state::watch::watch(&env.client, &env.state_bucket, spec)
            .await?
            .map(|c| c.map(|c| c.value).map_err(|e| e.to_string())),
    );
    let set = subjects::state::key_op("set", WATCH_SCOPE);
    let serial = Arc::new(AtomicU64::new(0));
    let plantd = watched_side(
        env,
        WatchedPath {
            label: "plantd http".into(),
            subject: set.clone(),
            values: sse_values,
        },
        serial.clone(),
    );
    let baseline = watched_side(
        env,
        WatchedPath {
            label,
            subject: set,
            values: nats_values,
        },
        serial,
    );
    Ok(Pair {
        plantd,
        baseline,
        created: Vec::new(),
    })
}
