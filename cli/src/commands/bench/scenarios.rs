//! What each scenario sends: the plantd path and its raw baseline, as two [`Side`]s the
//! runner drives alike. The bus and pipe scenarios are in [`super::buses`].
//!
//! Both sides of a request/reply scenario send the same bytes (same headers, same encoded
//! request) through the same client code ([`plantd_shared::call::request_raw`]); only the
//! responder differs. The plantd side also decodes the typed reply, as a real caller would.
//! Keys are chosen deterministically, so two runs do the same work.

use std::{
    path::PathBuf,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use async_nats::{Client, HeaderMap, jetstream};
use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use plantd_schemas::{
    echo::v1::{EchoReply, EchoRequest},
    state::v1::{
        GetRequest, GetResponse, ScopeCreateRequest, ScopeCreateResponse, ScopeDeleteRequest,
        ScopeDeleteResponse, SetRequest, SetResponse,
    },
};
use plantd_shared::{
    call,
    codec::{Encoding, WireMessage},
    subjects,
};
use plantd_state::{
    kvkey,
    watch::{WatchFrom, WatchSpec},
};

use super::{
    args::{Baseline, Scenario},
    baselines::raw_echo_subject,
    buses,
    load::{Op, Round, closed_loop, op},
    mirror_wait,
    naive::{self, SetBaseline},
    progress::Progress,
};

/// Scope of the keys the bench gets and sets.
pub const SCOPE: &str = "plantd-bench";
/// Scope of the watched key (its own, so no other bench write reaches the watcher).
pub const WATCH_SCOPE: &str = "plantd-bench-watch";
/// Key written and watched by `state-watch` (in [`WATCH_SCOPE`] for plantd, in the kv
/// responder's scope for the baseline).
const WATCHED_KEY: &str = "watched";
/// Distinct keys the set scenarios cycle through.
const SET_KEYS: usize = 10_000;
/// Message of echo requests.
const MESSAGE: &str = "plantd bench payload 0123456789";
/// Value of set requests (32 bytes).
const VALUE: &str = "setpoint=72.5;unit=C;source=bnch";

/// What every side needs to reach the server.
#[derive(Clone)]
pub struct Env {
    /// The server's URL, for scenarios that need a connection of their own.
    pub url: String,
    /// Credentials for such connections.
    pub creds: Option<PathBuf>,
    /// The bench's client connection (both paths).
    pub client: Client,
    /// JetStream on it.
    pub js: jetstream::Context,
    /// Request timeout.
    pub timeout: Duration,
    /// Request encoding.
    pub encoding: Encoding,
    /// KV bucket of the state service being measured.
    pub state_bucket: String,
    /// The web-api bridge `--local` started, for the `http-*` scenarios.
    pub http_url: Option<String>,
    /// The bare HTTP→NATS proxy the baseline host serves, for `http-proxy-get-64`.
    pub proxy_url: Option<String>,
}

/// How a side runs a round.
pub enum Drive {
    /// [`closed_loop`] of this operation, `scenario.concurrency()` in flight.
    Ops(Op),
    /// A round the side runs and times itself.
    Round(Round),
}

/// One path of a scenario.
pub struct Side {
    /// Its name in the report.
    pub label: String,
    /// Its rounds.
    pub drive: Drive,
    /// For plantd writes: the stream the path fills asynchronously (the KV mirror's bucket, a
    /// bus's capture stream), to wait for it between rounds.
    pub mirror: Option<jetstream::stream::Stream>,
}

/// The plantd side and the baseline side of a scenario.
pub struct Pair {
    /// The plantd path.
    pub plantd: Side,
    /// The raw baseline.
    pub baseline: Side,
    /// Streams the bench created for the baseline, deleted after the scenario.
    pub created: Vec<String>,
}

/// Builds the two sides of `scenario`; preloads keys for state-get.
pub async fn prepare(
    scenario: Scenario,
    env: &Env,
    keys: usize,
    progress: &mut Progress,
) -> anyhow::Result<Pair> {
    let label = scenario.baseline_label().to_string();
    Ok(match scenario {
        Scenario::Echo1 | Scenario::Echo64 => {
            let payload = env.encoding.encode(&EchoRequest {
                message: MESSAGE.into(),
            });
            let same = payload.clone();
            Pair {
                plantd: request_side::<EchoReply>(
                    env,
                    subjects::module_op("echo", "echo"),
                    move |_| payload.clone(),
                ),
                baseline: echo_side(env, label, move |_| same.clone()),
                created: Vec::new(),
            }
        }
        Scenario::StateGet64 => {
            preload(env, keys, progress).await?;
            let encoding = env.encoding;
            let get = move |i: usize| {
                encoding.encode(&GetRequest {
                    key: get_key(pick(i, keys)),
                })
            };
            Pair {
                plantd: request_side::<GetResponse>(
                    env,
                    subjects::state::key_op("get", SCOPE),
                    get,
                ),
                baseline: echo_side(env, label, get),
                created: Vec::new(),
            }
        }
        Scenario::StateSet1
        | Scenario::StateSet64
        | Scenario::StateSetNaive64
        | Scenario::StateSetFull64 => {
            let Baseline::Set(set_baseline) = scenario.baseline() else {
                anyhow::bail!("{} has no set baseline", scenario.name());
            };
            let encoding = env.encoding;
            let set = move |i: usize| encoding.encode(&set_request(i % SET_KEYS));
            let mut plantd =
                request_side::<SetResponse>(env, subjects::state::key_op("set", SCOPE), set);
            plantd.mirror = Some(
                env.js
                    .get_key_value(&env.state_bucket)
                    .await
                    .with_context(|| format!("cannot open the state bucket {}", env.state_bucket))?
                    .stream,
            );
            let mut baseline = request_side::<SetResponse>(env, set_baseline.subject(), set);
            baseline.label = label;
            Pair {
                plantd,
                baseline,
                created: Vec::new(),
            }
        }
        Scenario::StateWatch => watch_pair(env, label).await?,
        Scenario::BusPub => buses::pub_pair(env, label, buses::RawCapture::None).await?,
        Scenario::BusPubCaptured => buses::pub_pair(env, label, buses::RawCapture::Stream).await?,
        Scenario::BusCapture => buses::capture_pair(env, label).await?,
        Scenario::Pipe64 => buses::pipe_pair(env, label).await?,
        Scenario::ControlUnderLoad => buses::control_pair(env, label).await?,
        Scenario::HttpStateGet64 => {
            preload(env, keys, progress).await?;
            super::http::get_pair(env, keys, label)?
        }
        Scenario::HttpProxyGet64 => {
            preload(env, keys, progress).await?;
            super::http::proxy_pair(env, keys, label)?
        }
        Scenario::HttpWatch => super::http::watch_pair(env, label).await?,
        Scenario::EdgeCatchup => super::edge::catchup_pair(label).await?,
    })
}

/// Creates `scope` in the state service; `true` if it did not exist before.
pub async fn ensure_scope(env: &Env, scope: &str) -> anyhow::Result<bool> {
    let reply: ScopeCreateResponse = call::request(
        &env.client,
        &subjects::state::scope_op("create", scope),
        &ScopeCreateRequest {},
        env.encoding,
        env.timeout,
    )
    .await
    .with_context(|| format!("cannot create scope {scope}"))?;
    Ok(reply.created)
}

/// Deletes `scope` and its keys (to leave a shared server as the bench found it).
pub async fn delete_scope(env: &Env, scope: &str) -> anyhow::Result<()> {
    let _: ScopeDeleteResponse = call::request(
        &env.client,
        &subjects::state::scope_op("delete", scope),
        &ScopeDeleteRequest {},
        env.encoding,
        env.timeout,
    )
    .await
    .with_context(|| format!("cannot delete scope {scope}"))?;
    Ok(())
}

/// A side sending `payload(i)` to `subject` and decoding the reply as `R`.
pub(super) fn request_side<R: WireMessage>(
    env: &Env,
    subject: String,
    payload: impl Fn(usize) -> Bytes + Send + Sync + 'static,
) -> Side {
    Side {
        label: "plantd".into(),
        drive: Drive::Ops(request_op::<R>(env, subject, payload)),
        mirror: None,
    }
}

/// An operation sending `payload(i)` to `subject` and decoding the reply as `R`.
fn request_op<R: WireMessage>(
    env: &Env,
    subject: String,
    payload: impl Fn(usize) -> Bytes + Send + Sync + 'static,
) -> Op {
    let (client, timeout, headers) = (env.client.clone(), env.timeout, env.encoding.headers());
    let encoding = env.encoding;
    let subject: Arc<str> = subject.into();
    op(move |i| {
        let (client, subject, headers) = (client.clone(), subject.clone(), headers.clone());
        let body = payload(i);
        async move {
            let reply = call::request_raw(&client, &subject, headers, body, timeout)
                .await
                .map_err(|e| e.to_string())?;
            encoding
                .decode::<R>(&reply.payload)
                .map(drop)
                .map_err(|e| e.to_string())
        }
    })
}

/// A raw-echo side sending `payload(i)`.
fn echo_side(
    env: &Env,
    label: String,
    payload: impl Fn(usize) -> Bytes + Send + Sync + 'static,
) -> Side {
    let (client, timeout, headers) = (env.client.clone(), env.timeout, env.encoding.headers());
    let subject: Arc<str> = raw_echo_subject().into();
    Side {
        label,
        drive: Drive::Ops(op(move |i| {
            let (client, subject, headers) = (client.clone(), subject.clone(), headers.clone());
            let body = payload(i);
            async move {
                call::request_raw(&client, &subject, headers, body, timeout)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        })),
        mirror: None,
    }
}

/// Key `n` of the preloaded set.
pub(super) fn get_key(n: usize) -> String {
    format!("get-{n:06}")
}

/// A well-spread, deterministic choice of a key for operation `i`.
pub(super) fn pick(i: usize, keys: usize) -> usize {
    i.wrapping_mul(2_654_435_761) % keys.max(1)
}

/// The set request of operation `i`.
fn set_request(n: usize) -> SetRequest {
    SetRequest {
        key: format!("set-{n:05}"),
        value: VALUE.into(),
        ..Default::default()
    }
}

/// Writes the keys state-get reads, 64 in flight, and fails if any write failed.
async fn preload(env: &Env, keys: usize, progress: &mut Progress) -> anyhow::Result<()> {
    progress.phase(format!("state-get-64: preloading {keys} keys"));
    let encoding = env.encoding;
    let set = request_op::<SetResponse>(env, subjects::state::key_op("set", SCOPE), move |i| {
        encoding.encode(&SetRequest {
            key: get_key(i),
            value: format!("value of key {i}"),
            ..Default::default()
        })
    });
    let kv = env
        .js
        .get_key_value(&env.state_bucket)
        .await
        .with_context(|| format!("cannot open the state bucket {}", env.state_bucket))?;
    let before = mirror_wait::last_sequence(&kv.stream)
        .await
        .map_err(anyhow::Error::msg)?;
    let out = closed_loop(&set, keys, 64, Duration::from_secs(600), progress).await;
    progress.block_done(keys as u64);
    if let Some(err) = out.first_error {
        anyhow::bail!(
            "preloading {keys} keys failed {} times, first: {err}",
            out.stats.errors
        );
    }
    // Let the mirror finish, so its publishing does not load the measured rounds.
    mirror_wait::caught_up(&kv.stream, before + keys as u64).await;
    Ok(())
}

/// A stream of watched values (errors are items and are skipped by the waiter).
pub type Values = Pin<Box<dyn Stream<Item = Result<String, String>> + Send>>;

/// One watched path: set requests to `subject`, values from `values`.
pub(super) struct WatchedPath {
    pub(super) label: String,
    pub(super) subject: String,
    pub(super) values: Values,
}

/// The values of [`WATCH_SCOPE`]'s changes from now on, as a NATS client's watch of the state
/// service's bucket (`plantd_state::watch`) hears them.
pub(super) async fn state_watch_values(env: &Env) -> anyhow::Result<Values> {
    let spec = WatchSpec {
        scope: WATCH_SCOPE.into(),
        subtree: false,
        prefix: String::new(),
        from: WatchFrom::Now,
    };
    Ok(Box::pin(
        plantd_state::watch::watch(&env.client, &env.state_bucket, spec)
            .await?
            .map(|c| c.map(|c| c.value).map_err(|e| e.to_string())),
    ))
}

/// request → plantd → watcher, and request → kv responder's put → watcher, one at a time.
///
/// Both sides send the same set request through the same client code and time one operation
/// from the request's send until both the reply and the watcher's receipt of the value are
/// in: what a client that writes and a client that watches experience together.
async fn watch_pair(env: &Env, label: String) -> anyhow::Result<Pair> {
    let plantd_values = state_watch_values(env).await?;
    let kv_bucket = SetBaseline::Kv.bucket();
    let raw = env
        .js
        .get_key_value(&kv_bucket)
        .await
        .with_context(|| format!("cannot open the kv responder's bucket {kv_bucket}"))?;
    let raw_values: Values = Box::pin(
        raw.watch(kvkey::encode(naive::SCOPE, WATCHED_KEY))
            .await?
            .map(|e| {
                e.map(|e| String::from_utf8_lossy(&e.value).into_owned())
                    .map_err(|e| e.to_string())
            }),
    );
    let serial = Arc::new(AtomicU64::new(0));
    let plantd = watched_side(
        env,
        WatchedPath {
            label: "plantd".into(),
            subject: subjects::state::key_op("set", WATCH_SCOPE),
            values: plantd_values,
        },
        serial.clone(),
    );
    let baseline = watched_side(
        env,
        WatchedPath {
            label,
            subject: SetBaseline::Kv.subject(),
            values: raw_values,
        },
        serial,
    );
    Ok(Pair {
        plantd,
        baseline,
        created: Vec::new(),
    })
}

/// A side that sets [`WATCHED_KEY`] to a new value through `path` and waits for the reply and
/// for its watcher to yield the value.
pub(super) fn watched_side(env: &Env, path: WatchedPath, serial: Arc<AtomicU64>) -> Side {
    let (client, timeout, encoding) = (env.client.clone(), env.timeout, env.encoding);
    let headers: HeaderMap = encoding.headers();
    let subject: Arc<str> = path.subject.into();
    let values = Arc::new(tokio::sync::Mutex::new(path.values));
    Side {
        label: path.label,
        drive: Drive::Ops(op(move |_| {
            let value = format!("w{}", serial.fetch_add(1, Ordering::Relaxed));
            let (client, headers, subject, values) = (
                client.clone(),
                headers.clone(),
                subject.clone(),
                values.clone(),
            );
            async move {
                let body = encoding.encode(&SetRequest {
                    key: WATCHED_KEY.into(),
                    value: value.clone(),
                    ..Default::default()
                });
                let mut values = values.lock().await;
                let (reply, seen) = tokio::join!(
                    call::request_raw(&client, &subject, headers, body, timeout),
                    receive(&mut values, &value, timeout),
                );
                reply.map_err(|e| e.to_string())?;
                seen
            }
        })),
        mirror: None,
    }
}

/// Waits until the watcher yields `value`.
pub async fn receive(values: &mut Values, value: &str, timeout: Duration) -> Result<(), String> {
    let wait = async {
        while let Some(item) = values.next().await {
            if matches!(item, Ok(v) if v == value) {
                return Ok(());
            }
        }
        Err("the watch ended".to_string())
    };
    tokio::time::timeout(timeout, wait)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "the watcher did not see {value:?} within {timeout:?}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_stay_in_range_and_spread() {
        let keys = 10_000;
        let picked: std::collections::HashSet<usize> = (0..keys).map(|i| pick(i, keys)).collect();
        assert!(picked.iter().all(|&k| k < keys));
        assert!(
            picked.len() > keys / 2,
            "only {} distinct keys",
            picked.len()
        );
        assert_eq!(pick(5, 1), 0);
    }
}
