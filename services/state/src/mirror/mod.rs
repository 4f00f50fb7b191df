//! The KV mirror: every committed change, in commit order, into the JetStream KV bucket.
//!
//! SQLite is the source of truth; the outbox rows written in each change's own transaction
//! are the mirror's work list. The mirror publishes them to `$KV.<bucket>.<key>` with
//! JetStream acks and deletes a row only after its ack (through the writer, so that delete
//! rides in the next group commit). A crash or an outage therefore only delays the mirror.
//!
//! Two modes:
//! * **pipelined** (normal): publish a window of rows without waiting, then await the acks
//!   in order. One connection keeps them in order at the server. Acked rows are removed from
//!   the outbox in bulk ([`REMOVE_EVERY`], or after a quiet spell), not after every window.
//!   Once idle with every committed change acknowledged, the mirror hands the writer the turn
//!   to publish (`store::feed`): the next changes are sent from the writer thread right after
//!   their commit, and the mirror only awaits their acks. It takes the turn back before any
//!   recovery or reconcile.
//! * **recovery** (at start and after any failure): a failed window may have been partly
//!   stored, and after a reconnect a lost earlier publish can land *after* a later one for the
//!   same key (NATS-PITFALLS.md §2.2). So each pending row is first compared with the last
//!   message stored for its subject (direct gets, a window's keys at once): if that message's
//!   `Plantd-Change-Seq` is at or past the row, the row is already reflected and skipped;
//!   otherwise it is published. Recovery goes on window by window until it has passed the
//!   last change committed when it began — every row that may have been sent before — so a
//!   change stored once is never stored again over a newer one, however long the outage was
//!   (the server's duplicate window only covers two minutes). The KV thus converges to SQLite
//!   even after reordering.
//!
//! Each message carries `Nats-Msg-Id: <db id>.<change seq>` (deterministic, never reused, so
//! a blind retry inside the dedupe window is dropped by the server), `Plantd-Change-Seq` and
//! `Plantd-Db` (the database's `db_id`): sequences of two databases cannot be compared, so only
//! a message of *this* database counts as reflecting one of its changes.
//!
//! **Reconcile** (whenever the bucket is opened: at start, after the bucket disappeared, and
//! when the connection lands on a restarted server). An ack from JetStream is not an fsync, a
//! server may have lost its store or come back with an older copy of it, the database may have
//! been replaced under a bucket, or an earlier reconcile may have been cut short; in each case
//! outbox rows are already gone for changes the bucket no longer has. So the mirror compares the
//! bucket (the last message of every key, read with an ordered consumer) with SQLite key by key
//! and publishes what differs: a put for each entry the bucket lacks or holds with another value
//! or another database's label, and a delete for each key the bucket has and SQLite has not.
//! Entries are read in chunks, each in one read transaction, and each correction is labelled
//! with the change sequence *of its own snapshot*, so a change committed during the reconcile
//! has a higher sequence and is published after it by recovery (never an older value over a
//! newer one). A key that still has changes in the outbox past the last one this mirror saw
//! acknowledged is not corrected at all: recovery,
//! which runs right after, publishes each of those changes in order, so a watcher sees every
//! change, not only the last one (a correction standing for several changes made while the
//! service was starting is how a watcher once missed one). The reconcile leaves the outbox
//! alone and holds no progress marker: an interrupted one is simply run again on the next
//! open, and converges because it compares rather than replays.

mod bucket;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishAckFuture, stream::Stream};
use futures::FutureExt;
use plantd_shared::{
    health::{Health, Status},
    shutdown::Shutdown,
};

use crate::{
    kvkey,
    store::{
        AckFuture, CommitFeed, EarlyPublisher, FedRow, OutboxOp, OutboxRow, Reader, WriteHandle,
    },
};

pub use bucket::{BucketSettings, CHANGE_SEQ_HEADER, DB_HEADER, HEADER_ROOM, payload_problem};

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
    /// Rows up to this change were published and acked (their outbox rows not yet removed);
    /// more may be pending.
    Published(u64),
    /// Rows up to this change are in the bucket and their outbox rows removed (after a
    /// recovery, or a bulk removal).
    Removed(u64),
}

/// Acked outbox rows are removed once this many have accumulated (or when the mirror is
/// idle), not after every window: each removal is a writer round trip that waits for the next
/// group commit. After a failure, recovery finds the acked-but-kept rows already reflected.
const REMOVE_EVERY: u64 = 1024;

/// How long the mirror waits, idle, before removing acked outbox rows. Removing them at once
/// put a writer commit beside every lone write (and beside the next one, which then queued
/// behind it); after a quiet spell it costs nobody anything.
const IDLE_REMOVE_AFTER: Duration = Duration::from_millis(200);

/// How often an idle mirror checks that its bucket still exists.
const BUCKET_CHECK: Duration = Duration::from_secs(5);

/// How long the mirror keeps trying to empty the outbox after shutdown was requested.
const FINAL_FLUSH: Duration = Duration::from_secs(3);

/// Entries per read transaction in a reconcile.
const RECONCILE_CHUNK: usize = 512;

impl Mirror {
    /// Mirrors until shutdown, then makes a last, bounded attempt to empty the outbox.
    pub async fn run(self, shutdown: Shutdown) {
        let mut committed = self.writer.committed();
        // Committed changes in memory; `None` (taken already) leaves the outbox alone.
        let mut feed = self.writer.take_commit_feed();
        if let Some(feed) = feed.as_mut() {
            feed.set_publisher(Arc::new(WriterPublish {
                js: self.js.clone(),
                bucket: self.bucket.name.clone(),
                db_id: self.reader.db_id().to_owned(),
                runtime: tokio::runtime::Handle::current(),
            }));
        }
        let mut stream: Option<Stream> = None;
        // The server the bucket was last opened (and reconciled) on.
        let mut opened_on = String::new();
        // A recovery in progress (at start, after a failure, on a reopened bucket).
        let mut recovery = Some(Recovery::default());
        // The last change published and acked, and the last whose outbox row is removed.
        let (mut acked, mut removed) = (0u64, 0u64);
        let mut failures: u32 = 0;
        let mut final_deadline = None;
        // Whether the mirror has been idle for IDLE_REMOVE_AFTER since its last publish.
        let mut idle_since_ack = false;
        loop {
            if final_deadline.is_none() && shutdown.is_triggered() {
                final_deadline = Some(tokio::time::Instant::now() + FINAL_FLUSH);
                take_back(&mut feed);
            }
            if final_deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                tracing::warn!(
                    "stopping with changes not yet mirrored; they are mirrored on next start"
                );
                return;
            }
            let server = self.js.client().server_info().server_id;
            if stream.is_some() && server != opened_on {
                // A restarted server may have come back without its last unsynced writes.
                tracing::info!("connected to a restarted NATS server: reconciling the KV bucket");
                take_back(&mut feed);
                stream = None;
            }
            let pass = match (&stream, recovery.as_mut()) {
                (Some(s), Some(r)) => {
                    // Rows committed until now may have been sent before; later ones not.
                    r.until.get_or_insert(*committed.borrow());
                    self.recover(s, r).await
                }
                // Nothing committed past `acked`: idle, without asking the outbox.
                (Some(_), None) if *committed.borrow() <= acked => Ok(Pass::Idle),
                (Some(s), None) => self.publish_window(s, acked, feed.as_mut()).await,
                (None, _) => match self.open_bucket(acked).await {
                    Ok(s) => {
                        stream = Some(s);
                        opened_on = server;
                        recovery.get_or_insert_default();
                        continue;
                    }
                    Err(err) => Err(err),
                },
            };
            let pass = match pass {
                Ok(Pass::Published(seq)) if seq.saturating_sub(removed) >= REMOVE_EVERY => {
                    self.done(seq).await.map(|()| Pass::Removed(seq))
                }
                Ok(Pass::Idle)
                    if acked > removed && (idle_since_ack || final_deadline.is_some()) =>
                {
                    self.done(acked).await.map(|()| {
                        removed = acked;
                        Pass::Idle
                    })
                }
                other => other,
            };
            match pass {
                Ok(Pass::Published(seq)) => {
                    idle_since_ack = false;
                    acked = seq;
                    failures = 0;
                }
                Ok(Pass::Removed(seq)) => {
                    (acked, removed) = (seq, seq);
                    failures = 0;
                    if let Some(done) = recovery.take_if(|r| r.until.is_none_or(|u| seq >= u)) {
                        done.finished();
                    }
                }
                Ok(Pass::Idle) => {
                    if let Some(done) = recovery.take() {
                        done.finished();
                    }
                    failures = 0;
                    self.health.set("mirror", Status::Healthy, "in sync");
                    // Every committed change is acknowledged: the writer may publish the next.
                    if stream.is_some()
                        && final_deadline.is_none()
                        && *committed.borrow() <= acked
                        && let Some(feed) = feed.as_mut()
                    {
                        feed.hand_over(acked);
                    }
                    if final_deadline.is_some() {
                        return;
                    }
                    // Acked rows not yet removed: remove them after a quiet spell.
                    let linger = if acked > removed {
                        IDLE_REMOVE_AFTER
                    } else {
                        BUCKET_CHECK
                    };
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
                        _ = tokio::time::sleep(linger) => {
                            idle_since_ack = true;
                            if linger == BUCKET_CHECK
                                && let Some(s) = &stream
                                && !bucket::exists(s).await.unwrap_or(true)
                            {
                                tracing::warn!("KV bucket disappeared; recreating it");
                                take_back(&mut feed);
                                stream = None;
                            }
                        }
                    }
                }
                Err(err) => {
                    take_back(&mut feed);
                    // Whatever was in flight may have been stored: check it all again.
                    recovery.get_or_insert_default().until = None;
                    failures = failures.saturating_add(1);
                    if err.bucket_gone {
                        stream = None;
                    }
                    self.health
                        .set("mirror", err.status, format!("behind: {}", err.message));
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

    /// Opens (or creates) the bucket and reconciles it with SQLite; `acked` is the last change
    /// this mirror saw acknowledged (see [`Mirror::correct`]).
    async fn open_bucket(&self, acked: u64) -> Result<Stream, MirrorError> {
        let max_payload = self.js.client().server_info().max_payload;
        if let Some(problem) = payload_problem(self.bucket.max_value_bytes, max_payload) {
            return Err(MirrorError {
                message: problem,
                bucket_gone: false,
                status: Status::Unhealthy,
            });
        }
        let stream = bucket::open(&self.js, &self.bucket).await?;
        self.reconcile(&stream, acked).await?;
        Ok(stream)
    }

    /// Publishes a window of the rows after `acked` (from the in-memory feed when it holds
    /// them, else from the outbox), then awaits their acks in order.
    async fn publish_window(
        &self,
        _stream: &Stream,
        acked: u64,
        feed: Option<&mut CommitFeed>,
    ) -> Result<Pass, MirrorError> {
        let rows = match feed.and_then(|f| f.rows_after(acked, self.window)) {
            Some(rows) => rows,
            None => self
                .reader
                .outbox_after(acked, self.window)
                .await
                .map_err(MirrorError::store)?
                .into_iter()
                .map(|row| FedRow { row, ack: None })
                .collect(),
        };
        let Some(last) = rows.last().map(|r| r.row.seq) else {
            return Ok(Pass::Idle);
        };
        let mut acks = Vec::with_capacity(rows.len());
        for FedRow { row, ack } in rows {
            // Rows the writer published already only need their acks awaited.
            let ack = match ack {
                Some(ack) => ack,
                None => boxed(
                    bucket::publish(&self.js, &self.bucket.name, self.reader.db_id(), &row)
                        .await
                        .map_err(|e| e.at(&row))?,
                ),
            };
            acks.push((ack, row));
        }
        for (ack, row) in acks {
            ack.await.map_err(|e| MirrorError::publish(e).at(&row))?;
        }
        Ok(Pass::Published(last))
    }

    /// Publishes a window of pending rows, skipping those the bucket already reflects (the
    /// last message of each key is read first, all keys at once), then awaits the acks in
    /// order and removes the window from the outbox.
    async fn recover(&self, stream: &Stream, tally: &mut Recovery) -> Result<Pass, MirrorError> {
        let rows = self
            .reader
            .outbox_after(0, self.window)
            .await
            .map_err(MirrorError::store)?;
        let Some(last) = rows.last().map(|r| r.seq) else {
            return Ok(Pass::Idle);
        };
        let mut keys: Vec<&OutboxRow> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for row in &rows {
            if seen.insert((row.scope.as_str(), row.key.as_str())) {
                keys.push(row);
            }
        }
        let labels = futures::future::try_join_all(
            keys.iter()
                .map(|row| bucket::last_label(stream, &self.bucket.name, row)),
        )
        .await?;
        let labels: std::collections::HashMap<_, _> = keys
            .iter()
            .map(|row| (row.scope.as_str(), row.key.as_str()))
            .zip(labels)
            .collect();
        let mut acks = Vec::new();
        for row in &rows {
            let reflected = labels
                .get(&(row.scope.as_str(), row.key.as_str()))
                .and_then(Option::as_ref)
                .is_some_and(|label| label.covers(self.reader.db_id(), row.seq));
            if reflected {
                tally.skipped += 1;
                continue;
            }
            let ack = bucket::publish(&self.js, &self.bucket.name, self.reader.db_id(), row)
                .await
                .map_err(|e| e.at(row))?;
            acks.push((ack, row));
        }
        for (ack, row) in acks {
            ack.await.map_err(|e| MirrorError::publish(e).at(row))?;
            tally.published += 1;
        }
        self.done(last).await?;
        tally.up_to = last;
        Ok(Pass::Removed(last))
    }

    async fn done(&self, up_to: u64) -> Result<(), MirrorError> {
        self.writer
            .outbox_done(up_to)
            .await
            .map_err(MirrorError::store)?;
        Ok(())
    }

    /// Makes the bucket agree with SQLite key by key (see the module docs). The outbox is left
    /// alone: recovery, which runs next, publishes what it still holds.
    async fn reconcile(&self, stream: &Stream, acked: u64) -> Result<(), MirrorError> {
        let started = std::time::Instant::now();
        let db = self.reader.db_id();
        let mut stored = bucket::snapshot(&self.js, stream, &self.bucket.name).await?;
        let in_bucket = stored.len();
        let mut tally = Corrections::default();
        let mut after = None;
        loop {
            let chunk = self
                .reader
                .entries_after(after.clone(), RECONCILE_CHUNK)
                .await
                .map_err(MirrorError::store)?;
            let mut differing = Vec::new();
            for e in &chunk.entries {
                tally.checked += 1;
                let current = stored.remove(&kvkey::encode(&e.scope, &e.key));
                let agrees = current.is_some_and(|s| {
                    s.put
                        && s.digest == bucket::value_digest(e.value.as_bytes())
                        && s.label.db.as_deref() == Some(db)
                        && s.label.seq.is_some_and(|seq| seq <= chunk.as_of)
                });
                if !agrees {
                    differing.push((e.scope.clone(), e.key.clone()));
                }
            }
            self.correct(differing, acked, &mut tally).await?;
            match chunk.entries.last() {
                Some(last) if chunk.entries.len() == RECONCILE_CHUNK => {
                    after = Some((last.scope.clone(), last.key.clone()));
                }
                _ => break,
            }
        }
        // Keys the bucket holds that the walk did not list: deleted in SQLite, or created after
        // the walk passed their place. A delete marker needs nothing: SQLite lacks the key, or
        // recovery puts it.
        let leftover: Vec<_> = stored
            .into_iter()
            .filter(|(_, s)| s.put)
            .filter_map(|(kv_key, _)| match kvkey::decode(&kv_key) {
                Ok(pair) => Some(pair),
                Err(_) => {
                    tracing::warn!(
                        kv_key,
                        "key in the KV bucket that plantd did not write; left alone"
                    );
                    None
                }
            })
            .collect();
        for batch in leftover.chunks(RECONCILE_CHUNK) {
            self.correct(batch.to_vec(), acked, &mut tally).await?;
        }
        let Corrections {
            checked,
            put,
            deleted,
            left_to_recovery,
        } = tally;
        if put + deleted > 0 {
            tracing::info!(
                bucket = %self.bucket.name, in_bucket, checked, put, deleted, left_to_recovery,
                elapsed_ms = started.elapsed().as_millis(),
                "KV bucket reconciled with SQLite: corrected what differed"
            );
        } else {
            tracing::info!(
                bucket = %self.bucket.name, checked, left_to_recovery,
                elapsed_ms = started.elapsed().as_millis(),
                "KV bucket agrees with SQLite"
            );
        }
        Ok(())
    }

    /// Reads `keys` again in one snapshot and publishes a correction for each that has no
    /// change in the outbox past `acked`, labelled with that snapshot's sequence. A key with
    /// such changes is left to recovery, which publishes each of them in order: one correction
    /// standing for all of them would hide the ones between from every watcher. Changes up to
    /// `acked` were stored once already (rows are removed lazily); a bucket that lost them
    /// gets the key's current value, not their history again.
    async fn correct(
        &self,
        keys: Vec<(String, String)>,
        acked: u64,
        tally: &mut Corrections,
    ) -> Result<(), MirrorError> {
        if keys.is_empty() {
            return Ok(());
        }
        let read = self
            .reader
            .recheck(keys, acked)
            .await
            .map_err(MirrorError::store)?;
        let db = self.reader.db_id();
        let mut acks = Vec::new();
        for key in read.keys {
            if key.pending {
                tally.left_to_recovery += 1;
                continue;
            }
            if key.entry.is_some() {
                tally.put += 1;
            } else {
                tally.deleted += 1;
            }
            let row = correction(key.scope, key.key, key.entry.as_ref(), read.as_of);
            acks.push(bucket::publish_correction(&self.js, &self.bucket.name, db, &row).await?);
        }
        for ack in acks {
            ack.await.map_err(MirrorError::publish)?;
        }
        Ok(())
    }
}

/// A recovery in progress, and what it did so far.
#[derive(Debug, Default)]
struct Recovery {
    /// The last change committed when it began: rows up to it may have been sent before (by
    /// an earlier life of the service, a failed window, or the writer), so each is checked
    /// against the bucket. It ends once the outbox is removed past it.
    until: Option<u64>,
    /// Rows published.
    published: u64,
    /// Rows the bucket already reflected.
    skipped: u64,
    /// The last row it removed from the outbox.
    up_to: u64,
}

impl Recovery {
    fn finished(self) {
        if self.published + self.skipped > 0 {
            tracing::info!(
                published = self.published,
                skipped = self.skipped,
                up_to = self.up_to,
                "KV mirror recovered pending changes"
            );
        }
    }
}

/// What one reconcile did.
#[derive(Debug, Default)]
struct Corrections {
    /// SQLite entries compared with the bucket.
    checked: u64,
    /// Puts published.
    put: u64,
    /// Deletes published.
    deleted: u64,
    /// Differing keys with changes still in the outbox, which recovery publishes.
    left_to_recovery: u64,
}

/// Takes the publishing turn back from the writer (see `store::feed`), before anything that
/// may publish out of the writer's order: recovery, a reconcile, the final flush.
fn take_back(feed: &mut Option<CommitFeed>) {
    if let Some(feed) = feed.as_mut() {
        feed.take_back();
    }
}

/// The writer thread's way to publish a change (see `store::feed`): the same message as
/// [`bucket::publish`], sent only if that needs no waiting.
struct WriterPublish {
    js: jetstream::Context,
    bucket: String,
    db_id: String,
    /// The mirror's runtime: the publish arms a timer, which needs one.
    runtime: tokio::runtime::Handle,
}

impl EarlyPublisher for WriterPublish {
    fn start(&self, row: &OutboxRow) -> Option<AckFuture> {
        let _runtime = self.runtime.enter();
        // Not ready at once (a full client buffer, no ack slot): dropped unsent.
        match bucket::publish(&self.js, &self.bucket, &self.db_id, row).now_or_never()? {
            Ok(ack) => Some(boxed(ack)),
            Err(_) => None,
        }
    }
}

/// A JetStream ack as the feed carries it.
fn boxed(ack: PublishAckFuture) -> AckFuture {
    Box::pin(async move { ack.await.map(drop).map_err(|e| e.to_string()) })
}

/// The outbox-shaped row a reconcile publishes for one key: its entry, or a delete.
fn correction(
    scope: String,
    key: String,
    entry: Option<&crate::store::Entry>,
    as_of: u64,
) -> OutboxRow {
    OutboxRow {
        seq: as_of,
        scope,
        key,
        op: if entry.is_some() {
            OutboxOp::Put
        } else {
            OutboxOp::Del
        },
        value: entry.map(|e| e.value.clone()),
        version: entry.map_or(0, |e| e.version),
        trace: None,
    }
}

/// A failed mirror step (retried with backoff).
#[derive(Debug)]
pub struct MirrorError {
    message: String,
    bucket_gone: bool,
    /// What the `mirror` health check says meanwhile.
    status: Status,
}

impl MirrorError {
    fn store(err: crate::store::StoreError) -> Self {
        MirrorError {
            message: format!("store: {err}"),
            bucket_gone: false,
            status: Status::Degraded,
        }
    }

    fn publish(err: impl std::fmt::Display) -> Self {
        let message = err.to_string();
        let bucket_gone = message.contains("no stream");
        MirrorError {
            message,
            bucket_gone,
            status: Status::Degraded,
        }
    }

    /// Names the change that failed, so health says which row the mirror is stuck on.
    fn at(mut self, row: &OutboxRow) -> Self {
        let bytes = row.value.as_ref().map_or(0, String::len);
        self.message = format!(
            "change {} ({}/{}, {bytes} bytes) not mirrored: {}",
            row.seq, row.scope, row.key, self.message
        );
        self
    }
}
