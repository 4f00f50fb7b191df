//! The write path: one thread, one connection, group commit.
//!
//! SQLite allows one writer at a time, and the cost of a commit (above all the sync with
//! `durability: full`) is per transaction, not per row. So a dedicated std thread owns the only
//! write connection and takes ops from a bounded queue: it blocks for the first op, drains
//! whatever else is already queued (up to `max_batch`), applies them all in ONE transaction in
//! arrival order — each inside its own savepoint, so a failing op (a 404, a 409) rolls back only
//! itself — commits, and only then answers each caller. If the commit fails, every op of the
//! batch gets the error and nothing of it is visible. Concurrent callers thus share commits
//! instead of queueing for them, and an acknowledged write is always a committed one.
//!
//! The queue is bounded, so a flood of writes makes [`WriteHandle::submit`] wait (backpressure)
//! rather than grow memory. After each commit that wrote outbox rows the thread publishes the
//! highest outbox sequence number on a `watch` channel, which wakes the KV mirror. Dropping every
//! handle, or [`WriteHandle::shutdown`], lets the thread finish the queued ops and exit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot, watch};

use super::apply::{ApplyContext, apply};
use super::cache::{Touched, ValueCache};
use super::feed::{self, CommitFeed, FeedSender};
use super::types::{
    DeleteOutcome, OutboxDoneOutcome, OutboxRow, ScopeCreateOutcome, ScopeDeleteOutcome,
    SetOutcome, WriteOp, WriteOutcome,
};
use super::{StoreConfig, StoreError};
use crate::validate::Limits;

/// The answer to one op.
type OpResult = Result<WriteOutcome, StoreError>;

type Reply = oneshot::Sender<OpResult>;

/// What travels from the handles to the writer thread.
enum Message {
    /// An op, where to send its answer, and the caller's trace (`traceparent`) if traced.
    Op {
        op: WriteOp,
        reply: Reply,
        trace: Option<String>,
    },
    /// Stop accepting ops; finish the queued ones and exit.
    Shutdown,
}

/// Counters the writer thread keeps; read through [`WriteHandle::stats`].
#[derive(Debug, Default)]
struct Counters {
    commit_groups: AtomicU64,
    ops: AtomicU64,
    failed_commits: AtomicU64,
    /// The highest outbox sequence the KV mirror confirmed (`outbox_done`).
    mirrored_seq: AtomicU64,
}

/// A snapshot of the writer's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed (one per group commit).
    pub commit_groups: u64,
    /// Ops applied (successfully or not) in those transactions and in failed ones.
    pub ops: u64,
    /// Transactions whose commit failed (every op in them got an error).
    pub failed_commits: u64,
    /// The last committed change's outbox sequence.
    pub last_seq: u64,
    /// The last change the KV mirror confirmed; `last_seq - mirrored_seq` is the mirror's lag
    /// in changes (since start: at start both are the last committed sequence).
    pub mirrored_seq: u64,
}

/// A cloneable handle to the writer thread; usable from any async task.
#[derive(Debug, Clone)]
pub struct WriteHandle {
    tx: mpsc::Sender<Message>,
    committed: watch::Receiver<u64>,
    counters: Arc<Counters>,
    limits: Limits,
    /// The mirror's end of the in-memory feed, until the mirror takes it.
    feed: Arc<std::sync::Mutex<Option<CommitFeed>>>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Op { op, .. } => f.debug_tuple("Op").field(op).finish(),
            Self::Shutdown => f.write_str("Shutdown"),
        }
    }
}

impl WriteHandle {
    /// Validates `op`, queues it for the next group commit and waits until that commit is done.
    ///
    /// Ok means the change is committed. Fails with 400/413 for bad input (without queueing),
    /// 404/409 from the op itself, 500 if the batch could not be committed, and 503 when the
    /// writer has stopped. If the caller stops waiting, a queued op is still applied.
    pub async fn submit(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        op.validate(&self.limits)?;
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Message::Op {
                op,
                reply,
                trace: plantd_shared::trace::current_traceparent(),
            })
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".to_owned()))?;
        answer.await.map_err(|_| {
            StoreError::Unavailable("the writer stopped before answering".to_owned())
        })?
    }

    /// `set` a key; see [`WriteOp::Set`].
    pub async fn set(
        &self,
        scope: &str,
        key: &str,
        value: &str,
        create_only: bool,
        expected_version: Option<u64>,
    ) -> Result<SetOutcome, StoreError> {
        let op = WriteOp::Set {
            scope: scope.to_owned(),
            key: key.to_owned(),
            value: value.to_owned(),
            create_only,
            expected_version,
        };
        match self.submit(op).await? {
            WriteOutcome::Set(outcome) => Ok(outcome),
            other => Err(mismatch(&other)),
        }
    }

    /// `delete` a key; see [`WriteOp::Delete`].
    pub async fn delete(
        &self,
        scope: &str,
        key: &str,
        expected_version: Option<u64>,
    ) -> Result<DeleteOutcome, StoreError> {
        let op = WriteOp::Delete {
            scope: scope.to_owned(),
            key: key.to_owned(),
            expected_version,
        };
        match self.submit(op).await? {
            WriteOutcome::Delete(outcome) => Ok(outcome),
            other => Err(mismatch(&other)),
        }
    }

    /// Create a scope; see [`WriteOp::ScopeCreate`].
    pub async fn scope_create(&self, scope: &str) -> Result<ScopeCreateOutcome, StoreError> {
        let op = WriteOp::ScopeCreate {
            scope: scope.to_owned(),
        };
        match self.submit(op).await? {
            WriteOutcome::ScopeCreate(outcome) => Ok(outcome),
            other => Err(mismatch(&other)),
        }
    }

    /// Delete a scope and its keys; see [`WriteOp::ScopeDelete`].
    pub async fn scope_delete(&self, scope: &str) -> Result<ScopeDeleteOutcome, StoreError> {
        let op = WriteOp::ScopeDelete {
            scope: scope.to_owned(),
        };
        match self.submit(op).await? {
            WriteOutcome::ScopeDelete(outcome) => Ok(outcome),
            other => Err(mismatch(&other)),
        }
    }

    /// Remove outbox rows up to `up_to_seq` once JetStream acked them; see [`WriteOp::OutboxDone`].
    pub async fn outbox_done(&self, up_to_seq: u64) -> Result<OutboxDoneOutcome, StoreError> {
        match self.submit(WriteOp::OutboxDone { up_to_seq }).await? {
            WriteOutcome::OutboxDone(outcome) => {
                self.counters
                    .mirrored_seq
                    .fetch_max(up_to_seq, Ordering::Relaxed);
                Ok(outcome)
            }
            other => Err(mismatch(&other)),
        }
    }

    /// The committed changes in memory, for the KV mirror (see [`super::feed`]); `None` once
    /// taken (there is one mirror).
    pub fn take_commit_feed(&self) -> Option<CommitFeed> {
        self.feed
            .lock()
            .expect("the feed lock is never poisoned: nothing panics while holding it")
            .take()
    }

    /// A receiver of the highest committed outbox sequence number; it changes after every
    /// commit that wrote outbox rows, and its sender closes when the writer thread exits.
    pub fn committed(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    /// The writer's counters (commit groups, ops, failed commits).
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            commit_groups: self.counters.commit_groups.load(Ordering::Relaxed),
            ops: self.counters.ops.load(Ordering::Relaxed),
            failed_commits: self.counters.failed_commits.load(Ordering::Relaxed),
            last_seq: *self.committed.borrow(),
            mirrored_seq: self.counters.mirrored_seq.load(Ordering::Relaxed),
        }
    }

    /// Ops waiting in the queue (for health and metrics).
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Stops the writer: ops already queued are still applied and answered, later ones fail
    /// with 503. The writer thread exits once the queue is empty; join its handle to wait.
    pub async fn shutdown(&self) {
        // An error means the writer is already gone, which is what we want.
        let _ = self.tx.send(Message::Shutdown).await;
    }
}

/// The writer answered an op with the outcome of another kind; cannot happen, reported not
/// panicked so a bug costs one request, not the service.
fn mismatch(outcome: &WriteOutcome) -> StoreError {
    tracing::error!(
        ?outcome,
        "writer answered with an outcome of the wrong kind"
    );
    StoreError::Internal("the writer answered with the wrong kind of outcome".to_owned())
}

/// Starts the writer thread on `conn`; `last_seq` is the highest outbox sequence number so far.
pub(crate) fn spawn(
    conn: Connection,
    config: &StoreConfig,
    last_seq: u64,
    cache: Arc<ValueCache>,
) -> Result<(WriteHandle, JoinHandle<()>), StoreError> {
    let (tx, rx) = mpsc::channel(config.queue_capacity);
    let (committed_tx, committed) = watch::channel(last_seq);
    let (feed_tx, feed) = feed::channel();
    let counters = Arc::new(Counters {
        mirrored_seq: AtomicU64::new(last_seq),
        ..Counters::default()
    });
    let writer = Writer {
        conn,
        rx,
        committed: committed_tx,
        feed: feed_tx,
        counters: Arc::clone(&counters),
        cache,
        max_batch: config.max_batch,
        auto_create_scopes: config.auto_create_scopes,
    };
    let join = std::thread::Builder::new()
        .name("plantd-state-writer".to_owned())
        .spawn(move || writer.run())
        .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
    let handle = WriteHandle {
        tx,
        committed,
        counters,
        limits: config.limits,
        feed: Arc::new(std::sync::Mutex::new(Some(feed))),
    };
    Ok((handle, join))
}

/// An op taken from the queue, waiting for its batch to commit.
struct Pending {
    op: WriteOp,
    reply: Reply,
    trace: Option<String>,
}

/// The state owned by the writer thread.
struct Writer {
    conn: Connection,
    rx: mpsc::Receiver<Message>,
    committed: watch::Sender<u64>,
    /// Each commit's outbox rows, for the mirror.
    feed: FeedSender,
    counters: Arc<Counters>,
    /// The readers' get cache, invalidated after each commit, before any answer.
    cache: Arc<ValueCache>,
    max_batch: usize,
    auto_create_scopes: bool,
}

impl Writer {
    fn run(mut self) {
        let mut batch = Vec::with_capacity(self.max_batch);
        while let Some(first) = self.rx.blocking_recv() {
            self.take(first, &mut batch);
            while batch.len() < self.max_batch {
                match self.rx.try_recv() {
                    Ok(message) => self.take(message, &mut batch),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.commit_batch(std::mem::take(&mut batch));
            }
        }
        tracing::info!("state store writer stopped");
    }

    fn take(&mut self, message: Message, batch: &mut Vec<Pending>) {
        match message {
            Message::Op { op, reply, trace } => batch.push(Pending { op, reply, trace }),
            // Refuse new ops; those already queued are still received and applied.
            Message::Shutdown => self.rx.close(),
        }
    }

    /// Applies `batch` in one transaction, commits, then answers every op.
    fn commit_batch(&mut self, batch: Vec<Pending>) {
        let ctx = ApplyContext {
            now: now_micros(),
            auto_create_scopes: self.auto_create_scopes,
        };
        let count = batch.len();
        self.counters.ops.fetch_add(count as u64, Ordering::Relaxed);
        // One span per traced op, in its caller's trace: the group commit and the KV publish
        // that starts right after it (tracing off: none).
        let _spans: Vec<tracing::Span> = batch
            .iter()
            .filter_map(|p| p.trace.as_deref())
            .map(|traceparent| {
                let span = tracing::info_span!("state.commit", group_size = count);
                plantd_shared::trace::set_parent_from(
                    &span,
                    Some(&plantd_shared::trace::headers_with(traceparent)),
                );
                span
            })
            .collect();
        let results = match self.apply_all(&batch, ctx) {
            Ok(BatchCommitted {
                results,
                last_seq,
                rows,
            }) => {
                self.counters.commit_groups.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(ops = count, "state store group commit");
                // Before any answer: an acknowledged change is never hidden by a cached value.
                self.cache
                    .invalidate(batch.iter().filter_map(|p| touched(&p.op)));
                if let Some(seq) = last_seq {
                    // Rows first: the mirror wakes on `committed` and finds them in memory.
                    self.feed.offer(rows);
                    self.committed.send_replace(seq);
                }
                results
            }
            Err(err) => {
                self.counters.failed_commits.fetch_add(1, Ordering::Relaxed);
                tracing::error!(ops = count, error = %err, "state store batch failed, nothing committed");
                vec![Err(err); count]
            }
        };
        for (pending, result) in batch.into_iter().zip(results) {
            // The caller may have stopped waiting; its op is committed anyway.
            let _ = pending.reply.send(result);
        }
    }

    /// Runs every op in its own savepoint of one transaction and commits it. Returns each op's
    /// result, the highest outbox sequence number written and the committed outbox rows, or
    /// the error that aborted the whole batch.
    fn apply_all(
        &mut self,
        batch: &[Pending],
        ctx: ApplyContext,
    ) -> Result<BatchCommitted, StoreError> {
        let mut tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StoreError::sqlite("starting a write transaction", &e))?;
        let mut results = Vec::with_capacity(batch.len());
        let mut last_seq = None;
        let mut rows = Vec::new();
        for pending in batch {
            let savepoint = tx
                .savepoint()
                .map_err(|e| StoreError::sqlite("starting a savepoint", &e))?;
            match apply(&savepoint, &pending.op, ctx) {
                Ok(applied) => {
                    savepoint
                        .commit()
                        .map_err(|e| StoreError::sqlite("releasing a savepoint", &e))?;
                    last_seq = last_seq.max(applied.last_outbox_seq);
                    rows.extend(applied.row.map(|row| OutboxRow {
                        trace: pending.trace.clone(),
                        ..row
                    }));
                    results.push(Ok(applied.outcome));
                }
                Err(err) => {
                    // Undo this op only; if even that fails the batch cannot be trusted.
                    savepoint
                        .finish()
                        .map_err(|e| StoreError::sqlite("rolling back a savepoint", &e))?;
                    results.push(Err(err));
                }
            }
        }
        tx.commit()
            .map_err(|e| StoreError::sqlite("committing", &e))?;
        Ok(BatchCommitted {
            results,
            last_seq,
            rows,
        })
    }
}

/// What a committed batch leaves to answer and to mirror.
struct BatchCommitted {
    /// Each op's result, in batch order.
    results: Vec<OpResult>,
    /// The highest outbox sequence number written, if any.
    last_seq: Option<u64>,
    /// The outbox rows of the ops that committed, for the mirror's feed.
    rows: Vec<OutboxRow>,
}

/// The cached keys `op` may have changed.
fn touched(op: &WriteOp) -> Option<Touched<'_>> {
    match op {
        WriteOp::Set { scope, key, .. } | WriteOp::Delete { scope, key, .. } => {
            Some(Touched::Key(scope, key))
        }
        WriteOp::ScopeDelete { scope } => Some(Touched::Scope(scope)),
        WriteOp::ScopeCreate { .. } | WriteOp::OutboxDone { .. } => None,
    }
}

/// Now as unix microseconds (0 if the clock is before 1970).
fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}
