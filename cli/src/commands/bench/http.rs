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

/// Gets of the preloaded keys over HTTP vs over NATS.
pub fn get_pair(env: &Env, keys: usize, label: String) -> anyhow::Result<Pair> {
    let base = bridge(env)?;
    let plantd = http_get_side(
        env,
        keys,
        "plantd http",
        format!("{base}/api/v1/state/{SCOPE}/keys/"),
    )?;
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

/// Gets through the bridge vs through the bare proxy, both over HTTP/1.1 keep-alive.
pub async fn proxy_pair(env: &Env, keys: usize, label: String) -> anyhow::Result<Pair> {
    let base = bridge(env)?;
    let plantd = http_get_side(
        env,
        keys,
        "plantd http",
        format!("{base}/api/v1/state/{SCOPE}/keys/"),
    )?;
    let proxy = BareProxy::start(env).await?;
    let mut baseline = http_get_side(env, keys, &label, format!("{}/", proxy.url))?;
    // The proxy lives as long as the side's operation does.
    if let Drive::Ops(inner) = baseline.drive {
        baseline.drive = Drive::Ops(op(move |i| {
            let _alive = &proxy;
            inner(i)
        }));
    }
    Ok(Pair {
        plantd,
        baseline,
        created: Vec::new(),
    })
}

/// The bare HTTP→NATS proxy of `http-proxy-get-64`; stops when dropped.
struct BareProxy {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BareProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the proxy answers: the entry as JSON, as the bridge's reply carries it.
#[derive(serde::Serialize)]
struct ProxyEntry {
    key: String,
    value: String,
    version: u64,
}

impl BareProxy {
    async fn start(env: &Env) -> anyhow::Result<BareProxy> {
        use axum::extract::{Path, State};
        use axum::http::StatusCode;

        let nats = super::buses::connect(env, "plant-bench-proxy").await?;
        let subject: Arc<str> = subjects::state::key_op("get", SCOPE).into();
        let (encoding, timeout) = (env.encoding, env.timeout);
        let get = move |State(nats): State<async_nats::Client>, Path(key): Path<String>| {
            let subject = subject.clone();
            async move {
                let request = encoding.encode(&GetRequest { key });
                let reply = plantd_shared::call::request_raw(
                    &nats,
                    &subject,
                    encoding.headers(),
                    request,
                    timeout,
                )
                .await
                .map_err(|e| (StatusCode::BAD_GATEWAY, e.to_string()))?;
                let entry: GetResponse = encoding
                    .decode(&reply.payload)
                    .map_err(|e| (StatusCode::BAD_GATEWAY, e.to_string()))?;
                Ok::<_, (StatusCode, String)>(axum::Json(ProxyEntry {
                    key: entry.key,
                    value: entry.value,
                    version: entry.version,
                }))
            }
        };
        let app = axum::Router::new()
            .route("/{key}", axum::routing::get(get))
            .with_state(nats);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind the bare proxy")?;
        let url = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                eprintln!("bench: the bare proxy stopped: {err}");
            }
        });
        Ok(BareProxy { url, task })
    }
}
