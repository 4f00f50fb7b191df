//! The writer's committed changes, handed to the KV mirror in memory — and, while the mirror
//! is caught up, already on their way to JetStream.
//!
//! Without it the mirror reads every change back from the outbox table after the commit that
//! wrote it: a hop to the blocking pool and a query per window, on the path between a commit
//! and the KV message a watcher waits for. The writer already holds each change when it
//! commits, so it passes the rows on. The outbox stays the durable work list and the
//! fallback: the feed may drop rows (a full channel, a batch too large to hold, a scope
//! deletion whose rows SQL writes itself), and whenever the rows right after the mirror's
//! cursor are not in memory, the mirror reads the outbox instead. Committed change numbers
//! have no holes (a rolled-back savepoint also rolls back its AUTOINCREMENT), so a gap in the
//! feed is always seen.
//!
//! **Early publishing.** Even from memory, a change waited for the mirror task to wake before
//! it was published — a thread hop on the path a watcher waits on. So when the mirror is idle
//! and every committed change is acknowledged, it *hands over* publishing to the writer: from
//! change `next` on, the writer starts each change's publish itself right after its commit and
//! passes the pending acknowledgement along with the row; the mirror only awaits them, in
//! order. The writer keeps the turn only while it sees the changes contiguously (`next`, then
//! `next + 1`, …) and can start every publish at once without waiting; otherwise it gives the
//! turn back and the change travels as before. The mirror takes the turn back before any
//! recovery. Hence the invariant the handover relies on: while the writer holds the turn at
//! `next`, every change before `next` is published and nobody else publishes one from `next`
//! on, so changes reach the bucket in commit order whoever sends them. The store stays free of
//! NATS: the publish itself is an [`EarlyPublisher`] the mirror installs.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use super::OutboxRow;

/// Batches the channel holds before the writer drops new ones.
const CAPACITY: usize = 16;

/// A commit whose values add up to more than this goes to the outbox only.
const MAX_BATCH_BYTES: usize = 512 * 1024;

/// A started publish's acknowledgement; the error is the publish error's text.
pub type AckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Starts publishing a committed change from the writer thread, without waiting.
pub trait EarlyPublisher: Send + Sync {
    /// Sends `row`'s KV message and returns its pending ack, or `None` if it cannot be sent
    /// right now without waiting (then nothing was sent and the mirror publishes it).
    fn start(&self, row: &OutboxRow) -> Option<AckFuture>;
}

/// A committed change in memory, with its ack if the writer already published it.
pub struct FedRow {
    /// The change.
    pub row: OutboxRow,
    /// Its pending JetStream ack, if the writer sent it (see the module docs).
    pub ack: Option<AckFuture>,
}

impl std::fmt::Debug for FedRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FedRow")
            .field("row", &self.row)
            .field("published", &self.ack.is_some())
            .finish()
    }
}

/// Who publishes next, shared by both ends.
#[derive(Default)]
struct Turn {
    publisher: Option<Arc<dyn EarlyPublisher>>,
    /// `Some(n)`: the writer publishes from change `n` on.
    next: Option<u64>,
}

type SharedTurn = Arc<Mutex<Turn>>;

fn lock(turn: &SharedTurn) -> MutexGuard<'_, Turn> {
    // Nothing panics while holding it; a poisoned turn is still a valid turn.
    turn.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The writer's end.
pub(crate) struct FeedSender {
    tx: mpsc::Sender<Vec<FedRow>>,
    turn: SharedTurn,
}

impl std::fmt::Debug for FeedSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FeedSender")
    }
}

/// The mirror's end.
pub struct CommitFeed {
    rx: mpsc::Receiver<Vec<FedRow>>,
    buffered: VecDeque<FedRow>,
    turn: SharedTurn,
}

impl std::fmt::Debug for CommitFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitFeed")
            .field("buffered", &self.buffered.len())
            .finish()
    }
}

/// A connected pair.
pub(crate) fn channel() -> (FeedSender, CommitFeed) {
    let (tx, rx) = mpsc::channel(CAPACITY);
    let turn = SharedTurn::default();
    (
        FeedSender {
            tx,
            turn: Arc::clone(&turn),
        },
        CommitFeed {
            rx,
            buffered: VecDeque::new(),
            turn,
        },
    )
}

impl FeedSender {
    /// Offers one commit's rows (in change order); never blocks the writer. If the writer
    /// holds the turn, it starts their publishes first.
    pub(crate) fn offer(&self, rows: Vec<OutboxRow>) {
        let bytes: usize = rows
            .iter()
            .map(|r| r.value.as_ref().map_or(0, String::len))
            .sum();
        let mut turn = lock(&self.turn);
        let Some(first) = rows.first().map(|r| r.seq) else {
            return;
        };
        // Full, closed or too large: the mirror reads these rows from the outbox instead.
        let permit = (bytes <= MAX_BATCH_BYTES)
            .then(|| self.tx.try_reserve().ok())
            .flatten();
        let Some(permit) = permit else {
            turn.next = None;
            return;
        };
        let publisher = match (turn.next, &turn.publisher) {
            (Some(next), Some(publisher)) if next == first => Some(Arc::clone(publisher)),
            _ => None,
        };
        if publisher.is_none() {
            turn.next = None;
        }
        let fed = rows
            .into_iter()
            .map(|row| {
                let ack = match &publisher {
                    Some(p) if turn.next == Some(row.seq) => p.start(&row),
                    _ => None,
                };
                turn.next = ack.as_ref().map(|_| row.seq + 1);
                FedRow { row, ack }
            })
            .collect();
        permit.send(fed);
    }
}

impl CommitFeed {
    /// Installs the publisher the writer uses while it holds the turn.
    pub fn set_publisher(&mut self, publisher: Arc<dyn EarlyPublisher>) {
        lock(&self.turn).publisher = Some(publisher);
    }

    /// Hands the writer the turn from the change after `acked` on. Call it only when every
    /// committed change up to `acked` is acknowledged and none after it was published.
    pub fn hand_over(&mut self, acked: u64) {
        let mut turn = lock(&self.turn);
        if turn.next.is_none() && turn.publisher.is_some() {
            turn.next = Some(acked + 1);
        }
    }

    /// Takes the turn back: the writer publishes nothing more until the next hand-over.
    pub fn take_back(&mut self) {
        lock(&self.turn).next = None;
    }

    /// Up to `max` committed rows right after change `after`, in order, if memory holds them
    /// without a gap; `None` means "read the outbox".
    pub fn rows_after(&mut self, after: u64, max: usize) -> Option<Vec<FedRow>> {
        while let Ok(batch) = self.rx.try_recv() {
            self.buffered.extend(batch);
        }
        while self.buffered.front().is_some_and(|r| r.row.seq <= after) {
            self.buffered.pop_front();
        }
        let mut next = after + 1;
        if self.buffered.front()?.row.seq != next {
            return None;
        }
        let mut rows = Vec::new();
        while rows.len() < max && self.buffered.front().is_some_and(|r| r.row.seq == next) {
            rows.extend(self.buffered.pop_front());
            next += 1;
        }
        Some(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OutboxOp;

    fn row(seq: u64, value: &str) -> OutboxRow {
        OutboxRow {
            seq,
            scope: "s".into(),
            key: format!("k{seq}"),
            op: OutboxOp::Put,
            value: Some(value.into()),
            version: 1,
            trace: None,
        }
    }

    fn seqs(rows: Option<Vec<FedRow>>) -> Option<Vec<u64>> {
        rows.map(|r| r.into_iter().map(|r| r.row.seq).collect())
    }

    /// Publishes while `accept` allows, recording what it sent.
    struct Recorder {
        sent: Mutex<Vec<u64>>,
        accept: std::sync::atomic::AtomicBool,
    }

    impl EarlyPublisher for Recorder {
        fn start(&self, row: &OutboxRow) -> Option<AckFuture> {
            if !self.accept.load(std::sync::atomic::Ordering::Relaxed) {
                return None;
            }
            self.sent.lock().unwrap().push(row.seq);
            Some(Box::pin(async { Ok(()) }))
        }
    }

    fn recorder() -> Arc<Recorder> {
        Arc::new(Recorder {
            sent: Mutex::new(Vec::new()),
            accept: true.into(),
        })
    }

    fn published(rows: &[FedRow]) -> Vec<u64> {
        rows.iter()
            .filter(|r| r.ack.is_some())
            .map(|r| r.row.seq)
            .collect()
    }

    #[test]
    fn the_writer_publishes_only_while_it_holds_the_turn_and_sees_changes_contiguously() {
        let (tx, mut feed) = channel();
        let publisher = recorder();
        feed.set_publisher(publisher.clone());
        tx.offer(vec![row(1, "a")]);
        assert!(
            publisher.sent.lock().unwrap().is_empty(),
            "no turn: nothing published"
        );
        assert_eq!(
            published(&feed.rows_after(0, 10).unwrap()),
            Vec::<u64>::new()
        );

        feed.hand_over(1);
        tx.offer(vec![row(2, "b"), row(3, "c")]);
        tx.offer(vec![row(4, "d")]);
        assert_eq!(published(&feed.rows_after(1, 10).unwrap()), vec![2, 3, 4]);

        // Change 5 never reached the feed (a scope deletion): the writer must not publish 6.
        tx.offer(vec![row(6, "f")]);
        tx.offer(vec![row(7, "g")]);
        assert_eq!(*publisher.sent.lock().unwrap(), vec![2, 3, 4]);

        // Handed over again once the mirror caught up; a publish that cannot start ends the turn.
        feed.hand_over(7);
        publisher
            .accept
            .store(false, std::sync::atomic::Ordering::Relaxed);
        tx.offer(vec![row(8, "h")]);
        publisher
            .accept
            .store(true, std::sync::atomic::Ordering::Relaxed);
        tx.offer(vec![row(9, "i")]);
        assert_eq!(*publisher.sent.lock().unwrap(), vec![2, 3, 4]);

        feed.hand_over(9);
        feed.take_back();
        tx.offer(vec![row(10, "j")]);
        assert_eq!(*publisher.sent.lock().unwrap(), vec![2, 3, 4], "taken back");
    }

    #[test]
    fn a_commit_the_feed_cannot_hold_ends_the_turn_unpublished() {
        let (tx, mut feed) = channel();
        let publisher = recorder();
        feed.set_publisher(publisher.clone());
        feed.hand_over(0);
        tx.offer(vec![row(1, &"v".repeat(MAX_BATCH_BYTES + 1))]);
        tx.offer(vec![row(2, "b")]);
        assert!(publisher.sent.lock().unwrap().is_empty());
        assert_eq!(
            seqs(feed.rows_after(0, 10)),
            None,
            "1 is read from the outbox"
        );
    }

    #[test]
    fn hands_on_contiguous_rows_and_says_when_there_is_a_gap() {
        let (tx, mut feed) = channel();
        tx.offer(vec![row(1, "a"), row(2, "b")]);
        tx.offer(vec![row(3, "c")]);
        assert_eq!(seqs(feed.rows_after(0, 2)), Some(vec![1, 2]));
        assert_eq!(seqs(feed.rows_after(2, 10)), Some(vec![3]));
        assert_eq!(
            seqs(feed.rows_after(3, 10)),
            None,
            "nothing more: read the outbox"
        );
        // Change 4 never came through the feed (e.g. a scope deletion): a gap.
        tx.offer(vec![row(5, "e")]);
        assert_eq!(seqs(feed.rows_after(3, 10)), None);
        // Once the outbox supplied 4, memory takes over again; rows at or before the cursor go.
        assert_eq!(seqs(feed.rows_after(4, 10)), Some(vec![5]));
        assert_eq!(seqs(feed.rows_after(9, 10)), None);
    }

    #[test]
    fn large_commits_and_overflow_go_to_the_outbox_only() {
        let (tx, mut feed) = channel();
        tx.offer(vec![row(1, &"v".repeat(MAX_BATCH_BYTES + 1))]);
        assert_eq!(seqs(feed.rows_after(0, 10)), None);
        for seq in 2..(2 + CAPACITY as u64 + 5) {
            tx.offer(vec![row(seq, "x")]);
        }
        let rows = seqs(feed.rows_after(1, 100)).expect("rows after 1 are held");
        assert_eq!(
            rows.len(),
            CAPACITY,
            "the rest was dropped, not queued without bound"
        );
    }
}
