//! The set baselines: responders that answer a `SetRequest` the way a simpler state service
//! would, so `plant bench` can say what plantd's SQLite truth and mirror cost.
//!
//! * **kv responder** ([`SetBaseline::Kv`]): `kv.put` of the value into its own KV bucket,
//!   wait for the JetStream ack, reply with the revision. No SQLite: what NATS's own KV costs,
//!   the floor for any state service that mirrors into KV. It is also the baseline of
//!   `state-watch` (request → put → a KV watcher receives it).
//! * **naive responder** ([`SetBaseline::Naive`]): upsert the key in SQLite first (WAL,
//!   `synchronous` NORMAL or FULL as the compared plantd instance, **one transaction per
//!   write**), then the same `kv.put`, then the reply — state without group commit or an
//!   outbox. The SQLite writes go one at a time through a dedicated thread that owns the
//!   connection: the fastest a single SQLite writer gets without batching, and therefore a fair
//!   baseline for plantd's group commit. Its database is a temp file of the bench.
//!
//! Requests are handled concurrently (one task each), so KV puts overlap.

use std::path::Path;

use anyhow::Context as _;
use async_nats::{Client, HeaderMap, Message, jetstream};
use futures::StreamExt as _;
use plantd_schemas::state::v1::{SetRequest, SetResponse};
use plantd_shared::{
    ErrorCode, ServiceError,
    codec::Encoding,
    error::{ERROR_CODE_HEADER, ERROR_HEADER},
    subjects,
};
use plantd_state::{kvkey, store::Durability};
use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use super::baselines::QUEUE;

/// Scope the set baselines file every key under (their KV keys look like plantd's).
pub const SCOPE: &str = "plantd-bench";

/// One of the set baselines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetBaseline {
    /// `kv.put`, then the reply.
    Kv,
    /// A SQLite upsert with this durability, then `kv.put`, then the reply.
    Naive(Durability),
}

impl SetBaseline {
    /// Its name in subjects and buckets: `kv`, `naive-normal` or `naive-full`.
    pub fn name(self) -> &'static str {
        match self {
            SetBaseline::Kv => "kv",
            SetBaseline::Naive(Durability::Normal) => "naive-normal",
            SetBaseline::Naive(Durability::Full) => "naive-full",
        }
    }

    /// Its label in the report.
    pub fn label(self) -> &'static str {
        match self {
            SetBaseline::Kv => "kv responder",
            SetBaseline::Naive(Durability::Normal) => "naive normal",
            SetBaseline::Naive(Durability::Full) => "naive full",
        }
    }

    /// The subject it answers on.
    pub fn subject(self) -> String {
        subjects::module_op("bench", &format!("set-{}", self.name()))
    }

    /// Its KV bucket.
    pub fn bucket(self) -> String {
        format!("plantd-bench-{}", self.name())
    }
}

/// `normal` or `full`.
pub fn durability_name(durability: Durability) -> &'static str {
    match durability {
        Durability::Normal => "normal",
        Durability::Full => "full",
    }
}

/// One write for the SQLite thread.
struct Job {
    key: String,
    value: String,
    done: oneshot::Sender<Result<u64, String>>,
}

/// Opens the database (naive only) and the bucket and subscribes the responder.
pub async fn start(
    client: &Client,
    js: &jetstream::Context,
    dir: &Path,
    baseline: SetBaseline,
) -> anyhow::Result<()> {
    let jobs = match baseline {
        SetBaseline::Kv => None,
        SetBaseline::Naive(durability) => Some(start_sqlite(dir, baseline, durability)?),
    };
    let name = baseline.bucket();
    let kv = match js.get_key_value(&name).await {
        Ok(kv) => kv,
        Err(_) => js
            .create_key_value(jetstream::kv::Config {
                bucket: name.clone(),
                description: format!("plant bench: the {} baseline", baseline.label()),
                history: 10,
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await
            .with_context(|| format!("cannot create KV bucket {name}"))?,
    };
    let mut requests = client
        .queue_subscribe(baseline.subject(), QUEUE.to_string())
        .await
        .with_context(|| format!("cannot subscribe the {} baseline", baseline.label()))?;
    let client = client.clone();
    tokio::spawn(async move {
        while let Some(msg) = requests.next().await {
            let (client, kv, jobs) = (client.clone(), kv.clone(), jobs.clone());
            tokio::spawn(async move { handle(msg, &client, &kv, &jobs).await });
        }
    });
    Ok(())
}

/// Opens the naive database and starts the thread that writes it, one transaction a write.
fn start_sqlite(
    dir: &Path,
    baseline: SetBaseline,
    durability: Durability,
) -> anyhow::Result<std::sync::mpsc::Sender<Job>> {
    let db_path = dir.join(format!("{}.db", baseline.name()));
    let conn = open(&db_path, durability)
        .with_context(|| format!("cannot open the naive database {}", db_path.display()))?;
    let (jobs, queue) = std::sync::mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("bench-naive-sqlite".into())
        .spawn(move || {
            let mut conn = conn;
            // Ends when every sender is gone, i.e. when the responder's runtime is dropped.
            while let Ok(job) = queue.recv() {
                let result = upsert(&mut conn, &job.key, &job.value).map_err(|e| e.to_string());
                let _ = job.done.send(result);
            }
        })
        .context("cannot start the naive SQLite thread")?;
    Ok(jobs)
}

/// Decodes, writes (naive only), puts into KV, replies.
async fn handle(
    msg: Message,
    client: &Client,
    kv: &jetstream::kv::Store,
    jobs: &Option<std::sync::mpsc::Sender<Job>>,
) {
    let Some(reply) = msg.reply else { return };
    let encoding = Encoding::from_headers(msg.headers.as_ref());
    let internal = |e: String| ServiceError::new(ErrorCode::Internal, e);
    let result = async {
        let req: SetRequest = encoding.decode(&msg.payload)?;
        let written = match jobs {
            Some(jobs) => {
                let (done, version) = oneshot::channel();
                jobs.send(Job {
                    key: req.key.clone(),
                    value: req.value.clone(),
                    done,
                })
                .map_err(|_| internal("the SQLite thread is gone".into()))?;
                let version = version
                    .await
                    .map_err(|_| internal("the SQLite thread dropped a write".into()))?
                    .map_err(internal)?;
                Some(version)
            }
            None => None,
        };
        let revision = kv
            .put(kvkey::encode(SCOPE, &req.key), req.value.into())
            .await
            .map_err(|e| internal(format!("kv put failed: {e}")))?;
        let version = written.unwrap_or(revision);
        Ok::<_, ServiceError>(SetResponse {
            version,
            modified: None,
        })
    }
    .await;
    let _ = match result {
        Ok(resp) => {
            client
                .publish_with_headers(reply, encoding.headers(), encoding.encode(&resp))
                .await
        }
        Err(err) => {
            let mut headers = HeaderMap::new();
            headers.insert(ERROR_CODE_HEADER, err.code.as_u16().to_string().as_str());
            headers.insert(ERROR_HEADER, err.message.as_str());
            client
                .publish_with_headers(reply, headers, err.to_json_body().into())
                .await
        }
    };
}

/// Opens a WAL database with the durability's `synchronous` and the one table.
fn open(path: &Path, durability: Durability) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", durability.pragma_value())?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS entries (
            scope    TEXT NOT NULL,
            key      TEXT NOT NULL,
            value    TEXT NOT NULL,
            version  INTEGER NOT NULL,
            modified INTEGER NOT NULL,
            PRIMARY KEY (scope, key)
        );",
    )?;
    Ok(conn)
}

/// One write, one transaction; returns the key's new version.
fn upsert(conn: &mut Connection, key: &str, value: &str) -> rusqlite::Result<u64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO entries (scope, key, value, version, modified) VALUES (?1, ?2, ?3, 1, ?4)
             ON CONFLICT (scope, key) DO UPDATE
                SET value = excluded.value, version = version + 1, modified = excluded.modified
             RETURNING version",
        )?;
        stmt.query_row(params![SCOPE, key, value, now], |row| row.get(0))?
    };
    tx.commit()?;
    Ok(u64::try_from(version).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upserts_count_versions_in_one_transaction_each() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("n.db"), Durability::Full).unwrap();
        assert_eq!(upsert(&mut conn, "k", "a").unwrap(), 1);
        assert_eq!(upsert(&mut conn, "k", "b").unwrap(), 2);
        assert_eq!(upsert(&mut conn, "other", "c").unwrap(), 1);
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL is 2");
    }

    #[test]
    fn names_differ_per_baseline() {
        let all = [
            SetBaseline::Kv,
            SetBaseline::Naive(Durability::Normal),
            SetBaseline::Naive(Durability::Full),
        ];
        let subjects: std::collections::HashSet<String> = all.iter().map(|b| b.subject()).collect();
        assert_eq!(subjects.len(), 3);
        assert_eq!(
            SetBaseline::Naive(Durability::Full).bucket(),
            "plantd-bench-naive-full"
        );
        assert_eq!(SetBaseline::Kv.subject(), "plantd.bench.set-kv");
    }
}
