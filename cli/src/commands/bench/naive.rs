//! The naive state responder: what a state service without group commit or an outbox does.
//!
//! For each `SetRequest` on its subject: upsert the key in SQLite (WAL, `synchronous` NORMAL
//! or FULL as the compared plantd instance, **one transaction per write**), then `kv.put` the
//! value into its own KV bucket and wait for the JetStream ack, then reply with the version.
//! Requests are handled concurrently (one task each), so KV puts overlap; the SQLite writes go
//! one at a time through a dedicated thread that owns the connection — the fastest a single
//! SQLite writer gets without batching, and therefore a fair baseline for plantd's group
//! commit. Its database is a temp file of the bench, never the state service's.

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

/// Scope the naive responder files every key under (its KV keys look like plantd's).
const SCOPE: &str = "plantd-bench";

/// Subject of the naive responder of `durability`.
pub fn subject(durability: Durability) -> String {
    let op = match durability {
        Durability::Normal => "naive-set-normal",
        Durability::Full => "naive-set-full",
    };
    subjects::module_op("bench", op)
}

/// KV bucket of the naive responder of `durability`.
pub fn bucket(durability: Durability) -> String {
    format!("plantd-bench-naive-{}", durability_name(durability))
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

/// Opens the database and the bucket and subscribes the responder.
pub async fn start(
    client: &Client,
    js: &jetstream::Context,
    dir: &Path,
    durability: Durability,
) -> anyhow::Result<()> {
    let db_path = dir.join(format!("naive-{}.db", durability_name(durability)));
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

    let name = bucket(durability);
    let kv = match js.get_key_value(&name).await {
        Ok(kv) => kv,
        Err(_) => js
            .create_key_value(jetstream::kv::Config {
                bucket: name.clone(),
                description: "plant bench: the naive state baseline's mirror".into(),
                history: 10,
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await
            .with_context(|| format!("cannot create KV bucket {name}"))?,
    };
    let mut requests = client
        .queue_subscribe(subject(durability), QUEUE.to_string())
        .await
        .context("cannot subscribe the naive state responder")?;
    let client = client.clone();
    tokio::spawn(async move {
        while let Some(msg) = requests.next().await {
            let (client, kv, jobs) = (client.clone(), kv.clone(), jobs.clone());
            tokio::spawn(async move { handle(msg, &client, &kv, &jobs).await });
        }
    });
    Ok(())
}

/// Decodes, writes, mirrors, replies.
async fn handle(
    msg: Message,
    client: &Client,
    kv: &jetstream::kv::Store,
    jobs: &std::sync::mpsc::Sender<Job>,
) {
    let Some(reply) = msg.reply else { return };
    let encoding = Encoding::from_headers(msg.headers.as_ref());
    let internal = |e: String| ServiceError::new(ErrorCode::Internal, e);
    let result = async {
        let req: SetRequest = encoding.decode(&msg.payload)?;
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
        kv.put(kvkey::encode(SCOPE, &req.key), req.value.into())
            .await
            .map_err(|e| internal(format!("kv put failed: {e}")))?;
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
    fn names_differ_per_durability() {
        assert_ne!(subject(Durability::Normal), subject(Durability::Full));
        assert_eq!(bucket(Durability::Full), "plantd-bench-naive-full");
    }
}
