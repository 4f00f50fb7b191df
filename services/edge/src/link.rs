//! Watching one edge link and restarting the catch-up the moment it comes back.
//!
//! The link is probed every `link_check_ms` by asking the other side's JetStream for its
//! account info through the leaf node (`$JS.<domain>.API.INFO`). On every transition to *up*
//! the streams sourcing across it are re-attached ([`crate::streams::reattach`]), so catch-up
//! starts within one probe of the link returning instead of after nats-server's source retry
//! backoff. Transitions are logged and kept for `plantd.edge.status`.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use plantd_schemas::{edge::v1::LinkStatus, wkt::Timestamp};
use plantd_shared::{
    health::{Health, Status},
    shutdown::Shutdown,
    timestamp,
};

use crate::streams::{self, SourcedStream};

/// What is known of one link.
#[derive(Debug, Clone)]
pub struct LinkState {
    /// The other side's domain.
    pub peer: String,
    /// Whether its JetStream answered at the last probe.
    pub up: bool,
    /// When `up` last changed.
    pub since: Timestamp,
    /// Re-attachments done.
    pub reattached: u64,
    /// When the hub's account JWT was last applied (sites).
    pub account_synced: Option<Timestamp>,
}

/// A link shared by its watcher, the account sync and the status endpoint.
#[derive(Debug, Clone)]
pub struct Link {
    /// Its state.
    pub state: Arc<Mutex<LinkState>>,
    /// The streams that source across it.
    pub streams: Arc<Vec<SourcedStream>>,
    /// Woken on every transition to up.
    pub came_up: Arc<tokio::sync::Notify>,
}

impl Link {
    /// A link to `peer`, down until probed.
    pub fn new(peer: &str, streams: Vec<SourcedStream>) -> Link {
        Link {
            state: Arc::new(Mutex::new(LinkState {
                peer: peer.to_string(),
                up: false,
                since: timestamp::now(),
                reattached: 0,
                account_synced: None,
            })),
            streams: Arc::new(streams),
            came_up: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// A copy of its state.
    pub fn snapshot(&self) -> LinkState {
        self.state
            .lock()
            .expect("link lock is never poisoned: no panics while held")
            .clone()
    }

    /// Changes its state.
    pub fn update(&self, f: impl FnOnce(&mut LinkState)) {
        f(&mut self
            .state
            .lock()
            .expect("link lock is never poisoned: no panics while held"));
    }

    /// Its status for `plantd.edge.status`, with each stream's figures.
    pub async fn status(&self, client: &async_nats::Client) -> LinkStatus {
        let state = self.snapshot();
        let mut streams = Vec::new();
        for stream in self.streams.iter() {
            streams.push(streams::status(client, &stream.name).await);
        }
        LinkStatus {
            peer: state.peer,
            up: state.up,
            since: Some(state.since),
            reattached: state.reattached,
            streams,
            account_synced: state.account_synced,
        }
    }
}

/// Creates the link's streams (retrying until it can), then probes the link until shutdown,
/// re-attaching the streams on every transition to up.
pub async fn watch(
    client: async_nats::Client,
    link: Link,
    every: Duration,
    health: Health,
    shutdown: Shutdown,
) {
    let peer = link.snapshot().peer;
    let check = format!("link-{peer}");
    health.set(
        &check,
        Status::Degraded,
        format!("link to {peer}: not probed yet"),
    );
    for stream in link.streams.iter() {
        while let Err(err) = streams::ensure(&client, stream).await {
            tracing::warn!(stream = %stream.name, error = %err, "cannot create the stream; retrying");
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
    let probe_timeout = every.min(Duration::from_secs(1));
    loop {
        let up = streams::reachable(&client, &peer, probe_timeout).await;
        let was_up = link.snapshot().up;
        if up != was_up {
            link.update(|s| {
                s.up = up;
                s.since = timestamp::now();
            });
            if up {
                tracing::info!(peer = %peer, "edge link up; re-attaching sources");
                let mut all_ok = true;
                for stream in link.streams.iter() {
                    if let Err(err) = streams::reattach(&client, stream).await {
                        all_ok = false;
                        tracing::warn!(stream = %stream.name, error = %err, "cannot re-attach sources");
                    }
                }
                if all_ok {
                    link.update(|s| s.reattached += 1);
                }
                health.set(&check, Status::Healthy, format!("link to {peer} up"));
                link.came_up.notify_waiters();
            } else {
                tracing::warn!(peer = %peer, "edge link down; working on our own, the other side catches up later");
                health.set(&check, Status::Degraded, format!("link to {peer} down"));
            }
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
