//! The KV mirror: every committed change, in commit order, into the JetStream KV bucket.
//!
//! SQLite is the source of truth; the outbox rows written in each change's own transaction
//! are the mirror's work list. The mirror publishes them to `$KV.<bucket>.<key>` with
//! JetStream acks and deletes a row only after its ack (through the writer, so that delete
//! rides in the next group commit). A crash or an outage therefore only delays the mirror.
//!
//! Two modes:
//! * **pipelined** (normal): publish a window of rows without waiting, then await the acks
//!   in order. One connection keeps them in order at the server.
//! * **recovery** (at start and after any failure): a failed window may have been partly
//!   stored, and after a reconnect a lost earlier publish can land *after* a later one for the
//!   same key (NATS-PITFALLS.md §2.2). So each pending row is first compared with the last
//!   message stored for its subject (direct get): if that message's `Plantd-Change-Seq` is at
//!   or past the row, the row is already reflected and skipped; otherwise it is published and
//!   its ack awaited before the next. The KV thus converges to SQLite even after reordering.
//!
//! Each message carries `Nats-Msg-Id: <db id>.<change seq>` (deterministic, never reused, so
//! a blind retry inside the dedupe window is dropped by the server) and `Plantd-Change-Seq`.
//! If the bucket is found empty while SQLite has keys (a new or wiped NATS server), every
//! current entry is republished first (resync).

mod bucket;

use std::time::Duration;

use async_nats::jetstream::{self, stream::Stream};
use plantd_shared::{
    health::{Health, Status},
    shutdown::Shutdown,
};

use crate::store::{OutboxRow, Reader, WriteHandle};

pub use bucket::{BucketSettings, CHANGE_SEQ_HEADER};

/// The mirror task's inputs.
pub struct Mirror {
    /// JetStream context.
    pub js: jetstream::Context,
    /// Bucket name and limits.
    pub bucket: BucketSettings,
    /// Store reads (outbox, entries).
    pub reader: Reader,
    /// Store writes (outbox done).
    pub writer: WriteHandle,
    /// The `mirror` health check is set here.
    pub health: Health,
    /// Rows published before awaiting their acks.
    pub window: usize,
}

/// How a pass went.
enum Pass {
    /// Nothing was pending.
    Idle,
    /// Rows were mirrored; more may be pending.
    Progress,
}

/// How often an idle mirror checks that its bucket still exists.
const BUCKET_CHECK: Duration = Duration::from_secs(5);

/// How long the mirror keeps trying to empty the outbox after shutdown was requested.
const FINAL_FLUSH: Duration = Duration::from_secs(3);

impl Mirror {
    /// Mirrors until shutdown, then makes a last, bounded attempt to empty the outbox.
    pub async fn run(self, shutdown: Shutdown) {
        let mut committed = self.writer.committed();
        let mut stream: Option<Stream> = None;
        let mut recovering = true;
        let mut failures: u32 = 0;
        let mut final_deadline = None;
        loop {
            if final_deadline.is_none() && shutdown.is_triggered() {
                final_deadline = Some(tokio::time::Instant::now() + FINAL_FLUSH);
            }
            if final_deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                tracing::warn!(
                    "stopping with changes not yet mirrored; they are mirrored on next start"
                );
                return;
            }
            let pass = match &stream {
                Some(s) if recovering => self.recover(s).await,
                Some(s) => self.publish_window(s).await,
                None => match self.open_bucket().await {
                    Ok(s) => {
                        stream = Some(s);
                        continue;
                    }
                    Err(err) => Err(err),
                },
            };
            match pass {
                Ok(Pass::Progress) => {
                    recovering = false;
                    failures = 0;
                }
                Ok(Pass::Idle) => {
                    recovering = false;
                    failures = 0;
                    self.health.set("mirror", Status::Healthy, "in sync");
                    if final_deadline.is_some() {
                        return;
                    }
                    tokio::select! {
                        changed = committed.changed() => {
                            if changed.is_err() {
                                // The writer stopped: nothing new can be committed.
                                shutdown.wait().await;
                            }
                        }
                        _ = shutdown.wait() => {}
                        // A server that lost its store (replaced, wiped) loses the bucket too;
                        // notice it while idle so watchers get the state back without a write.
                        _ = tokio::time::sleep(BUCKET_CHECK) => {
                            if let Some(s) = &stream
                                && !bucket::exists(s).await.unwrap_or(true)
                            {
                                tracing::warn!("KV bucket disappeared; recreating it");
                                stream = None;
                            }
                        }
                    }
                }
                Err(err) => {
                    recovering = true;
                    failures = failures.saturating_add(1);
                    if err.bucket_gone {
                        stream = None;
                    }
                    self.health.set(
                        "mirror",
                        Status::Degraded,
                        format!("behind: {}", err.message),
                    );
                    if failures == 1 || failures.is_multiple_of(20) {
                        tracing::warn!(error = %err.message, failures, "KV mirror cannot publish; retrying");
                    }
                    let delay = Duration::from_millis((50u64 << failures.min(5)).min(2_000));
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.wait(), if final_deadline.is_none() => {}
                    }
                }
            }
        }
    }

    async fn open_bucket(&self) -> Result<Stream, MirrorError> {
        let stream = bucket::open(&self.js, &self.bucket).await?;
        if bucket::is_empty(&stream).await?
            && !self
                .reader
                .entries_after(None, 1)
                .await
                .map_err(MirrorError::store)?
                .is_empty()
        {
            tracing::info!(bucket = %self.bucket.name, "KV bucket is empty but SQLite is not: resyncing");
            self.resync().await?;
        }
        Ok(stream)
    }

    /// Publishes a window of pending rows, then awaits their acks in order.
    async fn publish_window(&self, _stream: &Stream) -> Result<Pass, MirrorError> {
        let rows = self
            .reader
            .outbox_after(0, self.window)
            .await
            .map_err(MirrorError::store)?;
        let Some(last) = rows.last().map(|r| r.seq) else {
            return Ok(Pass::Idle);
        };
        let mut acks = Vec::with_capacity(rows.len());
        for row in &rows {
            acks.push(
                bucket::publish(&self.js, &self.bucket.name, self.reader.db_id(), row).await?,
            );
        }
        for ack in acks {
            ack.await.map_err(MirrorError::publish)?;
        }
        self.done(last).await?;
        Ok(Pass::Progress)
    }

    /// Publishes pending rows one at a time, skipping those the bucket already reflects.
    async fn recover(&self, stream: &Stream) -> Result<Pass, MirrorError> {
        let rows = self
            .reader
            .outbox_after(0, self.window)
            .await
            .map_err(MirrorError::store)?;
        let Some(last) = rows.last().map(|r| r.seq) else {
            return Ok(Pass::Idle);
        };
        let (mut published, mut skipped) = (0u64, 0u64);
        for row in &rows {
            if self.reflected(stream, row).await? {
                skipped += 1;
                continue;
            }
            bucket::publish(&self.js, &self.bucket.name, self.reader.db_id(), row)
                .await?
                .await
                .map_err(MirrorError::publish)?;
            published += 1;
        }
        self.done(last).await?;
        tracing::info!(
            published,
            skipped,
            up_to = last,
            "KV mirror recovered pending changes"
        );
        Ok(Pass::Progress)
    }

    /// Whether the bucket's last message for the row's key is this change or a later one.
    async fn reflected(&self, stream: &Stream, row: &OutboxRow) -> Result<bool, MirrorError> {
        Ok(bucket::last_change_seq(stream, &self.bucket.name, row)
            .await?
            .is_some_and(|seq| seq >= row.seq))
    }

    async fn done(&self, up_to: u64) -> Result<(), MirrorError> {
        self.writer
            .outbox_done(up_to)
            .await
            .map_err(MirrorError::store)?;
        Ok(())
    }

    /// Republishes every current entry (bucket found empty), then marks the outbox done up
    /// to the change sequence read before the first entry.
    async fn resync(&self) -> Result<(), MirrorError> {
        let up_to = self
            .reader
            .last_outbox_seq()
            .await
            .map_err(MirrorError::store)?;
        let mut after = None;
        let mut count = 0u64;
        loop {
            let entries = self
                .reader
                .entries_after(after.clone(), 512)
                .await
                .map_err(MirrorError::store)?;
            let Some(last) = entries.last() else { break };
            after = Some((last.scope.clone(), last.key.clone()));
            let mut acks = Vec::with_capacity(entries.len());
            for e in &entries {
                let row = OutboxRow {
                    seq: up_to,
                    scope: e.scope.clone(),
                    key: e.key.clone(),
                    op: crate::store::OutboxOp::Put,
                    value: Some(e.value.clone()),
                    version: e.version,
                };
                acks.push(bucket::publish_resync(&self.js, &self.bucket.name, &row).await?);
            }
            for ack in acks {
                ack.await.map_err(MirrorError::publish)?;
            }
            count += entries.len() as u64;
        }
        self.done(up_to).await?;
        tracing::info!(entries = count, "KV resync done");
        Ok(())
    }
}

/// A failed mirror step (retried with backoff).
#[derive(Debug)]
pub struct MirrorError {
    message: String,
    bucket_gone: bool,
}

impl MirrorError {
    fn store(err: crate::store::StoreError) -> Self {
        MirrorError {
            message: format!("store: {err}"),
            bucket_gone: false,
        }
    }

    fn publish(err: impl std::fmt::Display) -> Self {
        let message = err.to_string();
        let bucket_gone = message.contains("no stream");
        MirrorError {
            message,
            bucket_gone,
        }
    }
}
