//! What the state service's end-to-end tests share: starting `plantd-state` against a real
//! nats-server, a typed client for every endpoint, snapshots of SQLite (through the API) and of
//! the KV mirror, and a watch collector.
//!
//! Used as `mod common_state;` by `state_api.rs`, `state_durability.rs` and `state_watch.rs`;
//! each uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use async_nats::jetstream::{self, kv};
use futures::StreamExt as _;
use plantd_schemas::state::v1::{
    DeleteRequest, DeleteResponse, GetRequest, GetResponse, ListEntry, ListRequest, ListResponse,
    ScopeCreateRequest, ScopeCreateResponse, ScopeDeleteRequest, ScopeDeleteResponse,
    ScopeListRequest, ScopeListResponse, SetRequest, SetResponse,
};
use plantd_shared::call::{self, CallError};
use plantd_shared::codec::{Encoding, WireMessage};
use plantd_shared::subjects::state as subj;
use plantd_shared::{ErrorCode, ServiceError};
use plantd_state::watch::{Change, WatchSpec};
use plantd_tests::{ChildProcess, NatsServer, Signal, bin_path, eventually};
use tempfile::TempDir;
use tokio::task::JoinHandle;

/// The KV bucket the service mirrors into (its default `kv_bucket`).
pub const BUCKET: &str = "plantd-state";
/// How long a test waits for the service to become ready, or for the KV to converge.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// Request timeout of the test client when no outage is expected.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// One `plantd-state` process, restartable on the same data dir and settings.
pub struct StateProcess {
    child: ChildProcess,
    args: Vec<String>,
    /// Logs of earlier incarnations (before restarts), for failure messages.
    earlier_logs: String,
}

impl StateProcess {
    /// Starts `plantd-state` on `nats_url` with `data_dir` and extra `--set` settings.
    pub fn spawn(
        nats_url: &str,
        data_dir: &Path,
        settings: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut args = vec![
            "--set".to_owned(),
            format!("nats_url={nats_url}"),
            "--set".to_owned(),
            format!("data_dir={}", data_dir.display()),
            "--set".to_owned(),
            "log_level=info".to_owned(),
        ];
        for (name, value) in settings {
            args.push("--set".to_owned());
            args.push(format!("{name}={value}"));
        }
        let child = Self::launch(&args)?;
        Ok(StateProcess {
            child,
            args,
            earlier_logs: String::new(),
        })
    }

    fn launch(args: &[String]) -> anyhow::Result<ChildProcess> {
        ChildProcess::spawn(
            bin_path("plantd-state"),
            args,
            std::iter::empty::<(&str, &str)>(),
        )
    }

    /// Pid of the current process.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// SIGKILL (a crash: no drain, no last mirror flush) and reap.
    pub fn kill(&mut self) -> anyhow::Result<ExitStatus> {
        self.child.kill()
    }

    /// SIGTERM, then waits up to `deadline` for the process to exit.
    pub async fn terminate(&mut self, deadline: Duration) -> anyhow::Result<ExitStatus> {
        self.child.signal(Signal::SIGTERM)?;
        match self.child.wait_with_deadline(deadline).await {
            Some(status) => Ok(status),
            None => bail!(
                "plantd-state did not exit within {deadline:?} of SIGTERM; stderr:\n{}",
                self.stderr()
            ),
        }
    }

    /// Starts a new process with the same arguments; the old one must have exited.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.child.is_running(),
            "restart of a plantd-state that is still running"
        );
        self.earlier_logs.push_str(&self.child.stderr());
        self.earlier_logs.push_str("---- restart ----\n");
        self.child = Self::launch(&self.args)?;
        Ok(())
    }

    /// The exit status if the current process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait()
    }

    /// Whether the current process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }

    /// stderr of every incarnation so far.
    pub fn stderr(&self) -> String {
        format!("{}{}", self.earlier_logs, self.child.stderr())
    }
}

/// A nats-server, a data dir, one `plantd-state` and a client, owned by one test.
pub struct StateEnv {
    /// The server.
    pub nats: NatsServer,
    /// The service's data dir (kept across service restarts).
    pub data: TempDir,
    /// The service.
    pub service: StateProcess,
    /// A test client with default options (reconnects forever).
    pub client: async_nats::Client,
    /// JetStream on `client`.
    pub js: jetstream::Context,
}

impl StateEnv {
    /// Starts everything and waits until the service answers and its KV bucket exists.
    pub async fn start(settings: &[(&str, &str)]) -> anyhow::Result<StateEnv> {
        let nats = NatsServer::start().await?;
        let data = tempfile::Builder::new()
            .prefix("plantd-state-data-")
            .tempdir()?;
        let service = StateProcess::spawn(&nats.url(), data.path(), settings)?;
        let client = nats.try_client().await?;
        let js = jetstream::new(client.clone());
        let env = StateEnv {
            nats,
            data,
            service,
            client,
            js,
        };
        env.wait_ready().await?;
        Ok(env)
    }

    /// A typed client in `encoding` with the default timeout.
    pub fn state(&self, encoding: Encoding) -> State {
        State::new(self.client.clone(), encoding, CALL_TIMEOUT)
    }

    /// Waits until the service answers `scope.list` and the KV bucket exists.
    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        wait_ready(&self.state(Encoding::Json), &self.js)
            .await
            .with_context(|| format!("plantd-state stderr:\n{}", self.service.stderr()))
    }

    /// The data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.data.path().to_path_buf()
    }
}

/// Stops the server and starts a new one on the same port with a fresh store (a new or wiped
/// server: the bucket is gone).
pub async fn replace_with_empty_server(env: &mut StateEnv) -> anyhow::Result<()> {
    let port = env.nats.port();
    env.nats.stop().await?;
    env.nats = plantd_tests::NatsServer::start_with(plantd_tests::NatsServerOptions {
        port: Some(port),
        ..Default::default()
    })
    .await?;
    Ok(())
}

/// Waits until the service answers `scope.list` and the KV bucket exists.
pub async fn wait_ready(state: &State, js: &jetstream::Context) -> anyhow::Result<()> {
    let quick = state.with_timeout(Duration::from_secs(1));
    eventually(DEADLINE, || quick.scope_list())
        .await
        .context("plantd-state never answered scope.list")?;
    eventually(DEADLINE, || js.get_key_value(BUCKET))
        .await
        .context("the KV bucket never appeared")?;
    Ok(())
}

/// A typed client of every state endpoint.
#[derive(Clone)]
pub struct State {
    /// The connection.
    pub client: async_nats::Client,
    /// Request (and so reply) encoding.
    pub encoding: Encoding,
    /// Request timeout.
    pub timeout: Duration,
}

impl State {
    /// A client.
    pub fn new(client: async_nats::Client, encoding: Encoding, timeout: Duration) -> State {
        State {
            client,
            encoding,
            timeout,
        }
    }

    /// The same client with another timeout.
    pub fn with_timeout(&self, timeout: Duration) -> State {
        State {
            timeout,
            ..self.clone()
        }
    }

    /// Any typed request.
    pub async fn call<Req: WireMessage, Resp: WireMessage>(
        &self,
        subject: &str,
        req: &Req,
    ) -> Result<Resp, CallError> {
        call::request(&self.client, subject, req, self.encoding, self.timeout).await
    }

    /// `get`.
    pub async fn get(&self, scope: &str, key: &str) -> Result<GetResponse, CallError> {
        let req = GetRequest { key: key.into() };
        self.call(&subj::key_op("get", scope), &req).await
    }

    /// A plain `set`.
    pub async fn set(&self, scope: &str, key: &str, value: &str) -> Result<SetResponse, CallError> {
        self.set_req(
            scope,
            SetRequest {
                key: key.into(),
                value: value.into(),
                ..Default::default()
            },
        )
        .await
    }

    /// `set` with every field.
    pub async fn set_req(&self, scope: &str, req: SetRequest) -> Result<SetResponse, CallError> {
        self.call(&subj::key_op("set", scope), &req).await
    }

    /// `delete`.
    pub async fn delete(
        &self,
        scope: &str,
        key: &str,
        expected_version: Option<u64>,
    ) -> Result<DeleteResponse, CallError> {
        let req = DeleteRequest {
            key: key.into(),
            expected_version,
        };
        self.call(&subj::key_op("delete", scope), &req).await
    }

    /// One `list` page.
    pub async fn list(&self, scope: &str, req: ListRequest) -> Result<ListResponse, CallError> {
        self.call(&subj::key_op("list", scope), &req).await
    }

    /// Every entry of `scope` with `prefix`, following page tokens (pages of 1000).
    pub async fn list_all(&self, scope: &str, prefix: &str) -> anyhow::Result<Vec<ListEntry>> {
        let mut out = Vec::new();
        let mut token = String::new();
        for _ in 0..10_000 {
            let page = self
                .list(
                    scope,
                    ListRequest {
                        prefix: prefix.into(),
                        limit: 1000,
                        page_token: token,
                    },
                )
                .await
                .with_context(|| format!("list of scope {scope:?}"))?;
            out.extend(page.entries);
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            token = page.next_page_token;
        }
        bail!("list of {scope:?} did not end after 10000 pages")
    }

    /// `scope.create`.
    pub async fn scope_create(&self, scope: &str) -> Result<ScopeCreateResponse, CallError> {
        self.call(&subj::scope_op("create", scope), &ScopeCreateRequest {})
            .await
    }

    /// `scope.delete`.
    pub async fn scope_delete(&self, scope: &str) -> Result<ScopeDeleteResponse, CallError> {
        self.call(&subj::scope_op("delete", scope), &ScopeDeleteRequest {})
            .await
    }

    /// `scope.list`.
    pub async fn scope_list(&self) -> Result<ScopeListResponse, CallError> {
        self.call(&subj::scope_list(), &ScopeListRequest {}).await
    }
}

/// The service error of a failed call; panics (with `what`) on success or another failure.
#[track_caller]
pub fn service_error<T: std::fmt::Debug>(result: Result<T, CallError>, what: &str) -> ServiceError {
    match result {
        Err(CallError::Service(err)) => err,
        other => panic!("{what}: expected a service error, got {other:?}"),
    }
}

/// Asserts that a call failed with `code` and, if given, names `field`.
#[track_caller]
pub fn assert_error<T: std::fmt::Debug>(
    result: Result<T, CallError>,
    code: ErrorCode,
    field: Option<&str>,
    what: &str,
) -> ServiceError {
    let err = service_error(result, what);
    assert_eq!(err.code, code, "{what}: wrong code in {err:?}");
    if let Some(field) = field {
        assert_eq!(
            err.field.as_deref(),
            Some(field),
            "{what}: error does not name field {field:?}: {err:?}"
        );
    }
    assert!(!err.message.is_empty(), "{what}: empty message in {err:?}");
    err
}

/// `(scope, key)`.
pub type ScopedKey = (String, String);

/// Every key of every scope with its value, read through the API (i.e. SQLite).
pub async fn sqlite_snapshot(state: &State) -> anyhow::Result<BTreeMap<ScopedKey, String>> {
    let scopes = state.scope_list().await.context("scope.list")?;
    let mut out = BTreeMap::new();
    for scope in scopes.scopes {
        let entries = state.list_all(&scope.name, "").await?;
        for entry in entries {
            out.insert((scope.name.clone(), entry.key), entry.value);
        }
    }
    Ok(out)
}

/// The live keys of the KV bucket with their values, decoded to `(scope, key)`.
///
/// Reads the last message per key (`watch_with_history`) until caught up; an empty bucket is
/// detected from the stream state first, since such a watch yields nothing at all.
pub async fn kv_snapshot(js: &jetstream::Context) -> anyhow::Result<BTreeMap<ScopedKey, String>> {
    let store = js.get_key_value(BUCKET).await?;
    let mut out = BTreeMap::new();
    if store.status().await?.info.state.messages == 0 {
        return Ok(out);
    }
    let mut watch = store.watch_with_history(">").await?;
    let read = async {
        while let Some(item) = watch.next().await {
            let entry = item?;
            let (scope, key) = plantd_state::kvkey::decode(&entry.key)
                .with_context(|| format!("foreign key {:?} in the bucket", entry.key))?;
            match entry.operation {
                kv::Operation::Put => {
                    let value = String::from_utf8(entry.value.to_vec())
                        .with_context(|| format!("value of {:?} is not UTF-8", entry.key))?;
                    out.insert((scope, key), value);
                }
                kv::Operation::Delete | kv::Operation::Purge => {
                    out.remove(&(scope, key));
                }
            }
            if entry.delta == 0 {
                return anyhow::Ok(());
            }
        }
        bail!("KV watch ended before it caught up")
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .context("KV snapshot did not catch up within 10s")??;
    Ok(out)
}

/// Describes how two snapshots differ (a few examples of each kind).
pub fn diff(
    sqlite: &BTreeMap<ScopedKey, String>,
    kv: &BTreeMap<ScopedKey, String>,
) -> Option<String> {
    let missing: Vec<_> = sqlite.keys().filter(|k| !kv.contains_key(*k)).collect();
    let extra: Vec<_> = kv.keys().filter(|k| !sqlite.contains_key(*k)).collect();
    let differ: Vec<_> = sqlite
        .iter()
        .filter_map(|(k, v)| kv.get(k).filter(|kv_v| *kv_v != v).map(|kv_v| (k, v, kv_v)))
        .collect();
    if missing.is_empty() && extra.is_empty() && differ.is_empty() {
        return None;
    }
    Some(format!(
        "sqlite has {} keys, kv {}; {} missing in kv (e.g. {:?}), {} only in kv (e.g. {:?}), \
         {} with another value (e.g. (key, sqlite, kv) {:?})",
        sqlite.len(),
        kv.len(),
        missing.len(),
        missing.iter().take(3).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(3).collect::<Vec<_>>(),
        differ.len(),
        differ.iter().take(3).collect::<Vec<_>>(),
    ))
}

/// Polls until the KV bucket holds exactly what SQLite holds; returns that content.
pub async fn wait_kv_converged(
    state: &State,
    js: &jetstream::Context,
    deadline: Duration,
) -> anyhow::Result<BTreeMap<ScopedKey, String>> {
    eventually(deadline, || async {
        let sqlite = sqlite_snapshot(state).await?;
        let kv = kv_snapshot(js).await?;
        match diff(&sqlite, &kv) {
            None => Ok(sqlite),
            Some(diff) => Err(anyhow::anyhow!("KV has not converged to SQLite: {diff}")),
        }
    })
    .await
}

/// A running watch whose changes and errors are collected in the background.
pub struct Watcher {
    changes: Arc<Mutex<Vec<Change>>>,
    errors: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Watcher {
    /// Starts `plantd_state::watch::watch` on the bucket (through the state service).
    pub async fn start(js: &jetstream::Context, spec: WatchSpec) -> anyhow::Result<Watcher> {
        let stream = plantd_state::watch::watch(&js.client(), BUCKET, spec).await?;
        let changes = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (c, e) = (Arc::clone(&changes), Arc::clone(&errors));
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                match item {
                    Ok(change) => c.lock().unwrap().push(change),
                    Err(err) => e.lock().unwrap().push(err.to_string()),
                }
            }
        });
        Ok(Watcher {
            changes,
            errors,
            task,
        })
    }

    /// Every change seen so far.
    pub fn changes(&self) -> Vec<Change> {
        self.changes.lock().unwrap().clone()
    }

    /// Every error item seen so far (transient; the watch goes on).
    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the changes seen so far, and returns them.
    pub async fn wait_until(
        &self,
        deadline: Duration,
        what: &str,
        done: impl Fn(&[Change]) -> bool,
    ) -> anyhow::Result<Vec<Change>> {
        eventually(deadline, || async {
            let changes = self.changes();
            if done(&changes) {
                Ok(changes)
            } else {
                Err(anyhow::anyhow!(
                    "watch has not seen {what} yet; {} changes so far, last {:?}; errors {:?}",
                    changes.len(),
                    changes.last(),
                    self.errors()
                ))
            }
        })
        .await
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}
