//! The raw baselines, served from inside `plant bench` on their own connection and runtime.
//!
//! * **raw echo**: a bare async-nats queue-group subscriber that publishes each request's
//!   payload back to its reply subject, one spawned task per message so 64 requests in flight
//!   are answered concurrently. It is what the echo service and state `get` are compared with:
//!   no codec, no micro runtime, no store.
//! * **set responders** ([`super::naive`]): a KV put then the reply (the kv responder), or a
//!   SQLite upsert in its own transaction, then the KV put, then the reply (the naive one) —
//!   state without SQLite, and state without group commit or an outbox.
//! * **bare HTTP→NATS proxy** ([`super::http::serve_bare_proxy`]): what `http-proxy-get-64`
//!   compares the web-api bridge with.
//!
//! They run on a dedicated multi-threaded tokio runtime (two workers, like a service process)
//! in a thread of their own, so the bench's client tasks and the baseline responders do not
//! share a scheduler, much as the client and a service child do not. Dropping that runtime at
//! [`BaselineHost::stop`] ends every responder task.

use std::path::PathBuf;

use anyhow::Context as _;
use async_nats::{Client, jetstream};
use futures::StreamExt as _;
use plantd_shared::{
    connection::{self, StartMode},
    subjects,
};
use tokio::sync::oneshot;

use super::naive::{self, SetBaseline};

/// Queue group of every baseline responder.
pub const QUEUE: &str = "plantd-bench";

/// Subject of the raw echo responder.
pub fn raw_echo_subject() -> String {
    subjects::module_op("bench", "raw-echo")
}

/// Which baselines to serve.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    /// The raw echo responder.
    pub echo: bool,
    /// The set responders.
    pub sets: Vec<SetBaseline>,
    /// The bare HTTP→NATS proxy, with this NATS request timeout.
    pub proxy: Option<std::time::Duration>,
}

/// The thread and runtime serving the baselines.
pub struct BaselineHost {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Where the bare proxy listens (`http://127.0.0.1:PORT`), when wanted.
    pub proxy_url: Option<String>,
}

impl BaselineHost {
    /// Starts the wanted responders against `url`, SQLite files under `dir`; returns once they
    /// are subscribed (the server has seen their interest).
    pub async fn start(
        url: String,
        creds: Option<PathBuf>,
        dir: PathBuf,
        wanted: Wanted,
    ) -> anyhow::Result<BaselineHost> {
        let (ready_tx, ready_rx) = oneshot::channel::<anyhow::Result<Option<String>>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("bench-baselines".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("bench-baseline")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(err) => {
                        let _ = ready_tx.send(Err(err.into()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match serve(&url, creds, &dir, &wanted).await {
                        Ok((client, proxy_url)) => {
                            let _ = ready_tx.send(Ok(proxy_url));
                            let _ = stop_rx.await;
                            drop(client);
                        }
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                        }
                    }
                });
                // The runtime drops here, outside any async context, aborting the responders.
            })
            .context("cannot start the baseline thread")?;
        let mut host = BaselineHost {
            stop: Some(stop_tx),
            thread: Some(thread),
            proxy_url: None,
        };
        match ready_rx.await {
            Ok(Ok(proxy_url)) => {
                host.proxy_url = proxy_url;
                Ok(host)
            }
            Ok(Err(err)) => {
                host.stop().await;
                Err(err.context("cannot start the baseline responders"))
            }
            Err(_) => {
                host.stop().await;
                anyhow::bail!("the baseline thread ended during start-up")
            }
        }
    }

    /// Stops the responders and waits for their thread.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// Connects and subscribes every wanted responder and starts the proxy if wanted; the client
/// is returned to keep it alive, with the proxy's URL.
async fn serve(
    url: &str,
    creds: Option<PathBuf>,
    dir: &std::path::Path,
    wanted: &Wanted,
) -> anyhow::Result<(Client, Option<String>)> {
    let client = connection::connect(
        url,
        creds,
        "plant-bench-baseline",
        StartMode::FailFast,
        None,
    )
    .await?;
    if wanted.echo {
        let mut requests = client
            .queue_subscribe(raw_echo_subject(), QUEUE.to_string())
            .await
            .context("cannot subscribe the raw echo responder")?;
        let replier = client.clone();
        tokio::spawn(async move {
            while let Some(msg) = requests.next().await {
                let Some(reply) = msg.reply else { continue };
                let replier = replier.clone();
                tokio::spawn(async move {
                    let _ = replier.publish(reply, msg.payload).await;
                });
            }
        });
    }
    let js = jetstream::new(client.clone());
    for &set in &wanted.sets {
        naive::start(&client, &js, dir, set).await?;
    }
    client
        .flush()
        .await
        .context("cannot flush the baseline subscriptions")?;
    let proxy_url = match wanted.proxy {
        Some(timeout) => Some(super::http::serve_bare_proxy(client.clone(), timeout).await?),
        None => None,
    };
    Ok((client, proxy_url))
}
