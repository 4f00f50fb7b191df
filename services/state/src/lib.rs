//! The plantd state service: plantd's shared memory of configuration, setpoints and status.
//!
//! SQLite is the source of truth ([`store`]): a write is acknowledged only after its transaction
//! commits, and the same transaction appends the change to an outbox from which the JetStream
//! KV mirror is fed, so a crash or a NATS outage can delay the mirror but never lose or reorder a
//! change. [`kvkey`] maps `(scope, key)` onto KV keys reversibly, and [`validate`] holds the
//! input rules every entry point shares, so a bad scope, key or value is rejected the same way
//! whether it arrives over NATS or from a test.
#![forbid(unsafe_code)]

pub mod config;
pub mod handlers;
pub mod kvkey;
pub mod mirror;
pub mod store;
pub mod validate;
pub mod watch;

use std::sync::Arc;

use plantd_shared::{
    data_dir_lock::DataDirLock,
    micro::ServiceBuilder,
    process::{ServeError, ServiceProcess},
    shutdown::Shutdown,
    subjects::state::SERVICE,
};

pub use config::StateConfig;

/// How long start-up waits for the first NATS connection to check the server's limits.
const FIRST_CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the state service until `shutdown`: opens the store, starts the KV mirror, serves the
/// endpoints, and on shutdown drains requests, lets the mirror flush, and stops the writer.
pub async fn run(config: StateConfig, shutdown: Shutdown) -> Result<(), ServeError> {
    ServeError::check_config(&config.problems())?;
    // Before anything opens the database or says it is up: one state service per data dir.
    let _lock = DataDirLock::acquire(&config.data_dir, SERVICE)?;
    let process = ServiceProcess::start(SERVICE, &config.common, shutdown.clone()).await?;
    // A server that cannot take the largest value would stop the mirror at that value for
    // good; refuse it now, while someone is watching. Services may start before NATS, so wait
    // only briefly for the first connection; if there is none yet, the mirror checks when it
    // opens the bucket and fails the `mirror` health check instead.
    let connected = tokio::time::timeout(FIRST_CONNECT_WAIT, async {
        while process.client.connection_state() != async_nats::connection::State::Connected {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .is_ok();
    let max_payload = if connected {
        process.client.server_info().max_payload
    } else {
        0
    };
    if let Some(problem) = mirror::payload_problem(config.max_value_bytes, max_payload) {
        return Err(ServeError::Setup(problem));
    }
    let data_dir = std::path::PathBuf::from(&config.data_dir);
    let db_path = data_dir.join("state.db");
    let store_config = config.store();
    let (writer, reader, writer_thread) = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&data_dir)
            .map_err(|e| format!("cannot create data dir {}: {e}", data_dir.display()))?;
        store::Store::open(&db_path, store_config)
            .map_err(|e| format!("cannot open {}: {e}", db_path.display()))
    })
    .await
    .map_err(|e| ServeError::Setup(format!("store start-up task failed: {e}")))?
    .map_err(ServeError::Setup)?;

    let for_metrics = writer.clone();
    process.metrics.collect(move |out| {
        let stats = for_metrics.stats();
        let labels = [("service", SERVICE)];
        for (name, help, value) in [
            (
                "plantd_state_commit_groups_total",
                "SQLite transactions committed (group commits).",
                stats.commit_groups,
            ),
            (
                "plantd_state_commit_ops_total",
                "Ops applied in commit groups; divided by groups, the mean group size.",
                stats.ops,
            ),
            (
                "plantd_state_failed_commits_total",
                "Commit groups that failed (each op in them got an error).",
                stats.failed_commits,
            ),
        ] {
            out.counter(name, help, &labels, value as f64);
        }
        out.gauge(
            "plantd_state_write_queue",
            "Writes waiting for the writer.",
            &labels,
            for_metrics.queued() as f64,
        );
        out.gauge(
            "plantd_state_mirror_lag",
            "Committed changes the KV mirror has not confirmed yet.",
            &labels,
            stats.last_seq.saturating_sub(stats.mirrored_seq) as f64,
        );
    });
    let js = async_nats::jetstream::new(process.client.clone());
    let mirror = mirror::Mirror {
        js: js.clone(),
        bucket: mirror::BucketSettings {
            name: config.kv_bucket.clone(),
            history: config.kv_history,
            max_value_bytes: config.max_value_bytes,
            replicas: config.kv_replicas,
        },
        reader: reader.clone(),
        writer: writer.clone(),
        health: process.health.clone(),
        window: config.mirror_window,
    };
    // The mirror gets its own shutdown signal, triggered only after the endpoints drained,
    // so the changes of the last requests are still mirrored.
    let mirror_shutdown = Shutdown::new();
    let mirror_task = tokio::spawn(mirror.run(mirror_shutdown.clone()));

    let app = Arc::new(handlers::StateApp {
        writer: writer.clone(),
        reader,
        kv: handlers::WatchBucket {
            js,
            bucket: config.kv_bucket.clone(),
        },
    });
    let builder = ServiceBuilder::new(SERVICE, env!("CARGO_PKG_VERSION"))
        .description("Keys in scopes: SQLite source of truth mirrored to JetStream KV")
        .metadata("kv_bucket", config.kv_bucket.clone())
        .metadata(
            "durability",
            format!("{:?}", config.durability).to_lowercase(),
        );
    let served = process.serve(handlers::register(builder, app)).await;

    mirror_shutdown.trigger();
    let _ = mirror_task.await;
    writer.shutdown().await;
    let _ = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    served.map(|_| ())
}
