//! The `http-*` scenarios: plantd through the web-api bridge against plantd over NATS, in the
//! same run, so the ratio is what HTTP (JSON, a session lookup, axum, one more hop) costs a
//! browser or an HTTP client over what a NATS client pays.
//!
//! `http-state-get-64` reads the preloaded keys with 64 requests in flight over HTTP/1.1
//! keep-alive connections (reqwest's pool) vs the same gets over NATS. `http-watch` sets a key
//! over NATS and times until the bridge's SSE stream delivers the value, vs until a NATS watch
//! (`plantd_state::watch`) does: the write path is the same, only the listener differs.
//! `http-proxy-get-64` runs the same HTTP gets against the bridge and against a **bare
//! HTTP→NATS proxy** ([`serve_bare_proxy`], served by the baseline host on its own runtime):
//! one route, one protobuf request, the reply as the bridge's JSON with its `ETag` — the least
//! any HTTP bridge does — so the ratio is what the bridge's own layers cost apart from HTTP.
//! `--local` runs the bridge without authentication, so both paths do the same work.

use std::sync::{Arc, atomic::AtomicU64};

use anyhow::Context as _;
use futures::StreamExt as _;
use plantd_schemas::state::v1::{GetRequest, GetResponse};
use plantd_shared::{sse::SseParser, subjects};

use super::{
    load::op,
    scenarios::{
        Drive, Env, Pair, SCOPE, Side, Values, WATCH_SCOPE, WatchedPath, get_key, pick,
        request_side, state_watch_values, watched_side,
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

/// A side getting the preloaded keys at `prefix` + key over HTTP, JSON replies.
fn http_get_side(env: &Env, keys: usize, label: &str, prefix: String) -> anyhow::Result<Side> {
    let client = http_client(env)?;
    let prefix: Arc<str> = prefix.into();
    Ok(Side {
        label: label.into(),
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
    })
}

/// The plantd side of the http get scenarios: the bridge's `GET /api/v1/state/{scope}/keys/{key}`.
fn bridge_get_side(env: &Env, keys: usize) -> anyhow::Result<Side> {
    let base = bridge(env)?;
    http_get_side(
        env,
        keys,
        "plantd http",
        format!("{base}/api/v1/state/{SCOPE}/keys/"),
    )
}

/// Gets of the preloaded keys over HTTP vs over NATS.
pub fn get_pair(env: &Env, keys: usize, label: String) -> anyhow::Result<Pair> {
    let plantd = bridge_get_side(env, keys)?;
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
    let nats_values = state_watch_values(env).await?;
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

/// Gets through the bridge vs through the bare proxy, both over HTTP/1.1 keep-alive.
pub fn proxy_pair(env: &Env, keys: usize, label: String) -> anyhow::Result<Pair> {
    let plantd = bridge_get_side(env, keys)?;
    let proxy = env
        .proxy_url
        .as_deref()
        .context("the baseline host serves no bare proxy")?;
    let baseline = http_get_side(env, keys, &label, format!("{proxy}/"))?;
    Ok(Pair {
        plantd,
        baseline,
        created: Vec::new(),
    })
}

/// What the bare proxy answers: the entry as the bridge's reply carries it (same fields, the
/// times as RFC 3339), with the version as `ETag`.
#[derive(serde::Serialize)]
struct ProxyEntry {
    key: String,
    value: String,
    version: u64,
    created: Option<String>,
    modified: Option<String>,
}

/// Serves the bare HTTP→NATS proxy of `http-proxy-get-64` on a free loopback port, on the
/// current runtime (the baseline host's, which it stops with); returns its URL. `GET /{key}`
/// makes one protobuf request to `plantd.state.get.<scope>` on `nats` (what the bridge sends)
/// and answers the reply as [`ProxyEntry`] JSON.
pub(super) async fn serve_bare_proxy(
    nats: async_nats::Client,
    timeout: std::time::Duration,
) -> anyhow::Result<String> {
    use axum::extract::{Path, State};
    use axum::http::{StatusCode, header};
    use plantd_shared::codec::Encoding;
    use plantd_shared::timestamp::rfc3339;

    let subject: Arc<str> = subjects::state::key_op("get", SCOPE).into();
    let get = move |State(nats): State<async_nats::Client>, Path(key): Path<String>| {
        let subject = subject.clone();
        async move {
            let encoding = Encoding::Protobuf;
            let reply = plantd_shared::call::request_raw(
                &nats,
                &subject,
                encoding.headers(),
                encoding.encode(&GetRequest { key }),
                timeout,
            )
            .await
            .map_err(|e| (StatusCode::BAD_GATEWAY, e.to_string()))?;
            let entry: GetResponse = encoding
                .decode(&reply.payload)
                .map_err(|e| (StatusCode::BAD_GATEWAY, e.to_string()))?;
            let etag = format!("\"{}\"", entry.version);
            let body = ProxyEntry {
                key: entry.key,
                value: entry.value,
                version: entry.version,
                created: entry.created.as_ref().and_then(rfc3339),
                modified: entry.modified.as_ref().and_then(rfc3339),
            };
            Ok::<_, (StatusCode, String)>(([(header::ETAG, etag)], axum::Json(body)))
        }
    };
    let app = axum::Router::new()
        .route("/{key}", axum::routing::get(get))
        .with_state(nats);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind the bare proxy")?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            eprintln!("bench: the bare proxy stopped: {err}");
        }
    });
    Ok(url)
}
