//! The writer's committed changes, handed to the KV mirror in memory.
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

use std::collections::VecDeque;

use tokio::sync::mpsc;

use super::OutboxRow;

/// Batches the channel holds before the writer drops new ones.
const CAPACITY: usize = 16;

/// A commit whose values add up to more than this goes to the outbox only.
const MAX_BATCH_BYTES: usize = 512 * 1024;

/// The writer's end.
#[derive(Debug)]
pub(crate) struct FeedSender(mpsc::Sender<Vec<OutboxRow>>);

/// The mirror's end.
#[derive(Debug)]
pub struct CommitFeed {
    rx: mpsc::Receiver<Vec<OutboxRow>>,
    buffered: VecDeque<OutboxRow>,
}

/// A connected pair.
pub(crate) fn channel() -> (FeedSender, CommitFeed) {
    let (tx, rx) = mpsc::channel(CAPACITY);
    (
        FeedSender(tx),
        CommitFeed {
            rx,
            buffered: VecDeque::new(),
        },
    )
}

impl FeedSender {
    /// Offers one commit's rows (in change order); never blocks the writer.
    pub(crate) fn offer(&self, rows: Vec<OutboxRow>) {
        let bytes: usize = rows
            .iter()
            .map(|r| r.value.as_ref().map_or(0, String::len))
            .sum();
        if !rows.is_empty() && bytes <= MAX_BATCH_BYTES {
            // Full or closed: the mirror reads these rows from the outbox instead.
            let _ = self.0.try_send(rows);
        }
    }
}

impl CommitFeed {
    /// Up to `max` committed rows right after change `after`, in order, if memory holds them
    /// without a gap; `None` means "read the outbox".
    pub fn rows_after(&mut self, after: u64, max: usize) -> Option<Vec<OutboxRow>> {
        while let Ok(batch) = self.rx.try_recv() {
            self.buffered.extend(batch);
        }
        while self.buffered.front().is_some_and(|r| r.seq <= after) {
            self.buffered.pop_front();
        }
        let mut next = after + 1;
        if self.buffered.front()?.seq != next {
            return None;
        }
        let mut rows = Vec::new();
        while rows.len() < max && self.buffered.front().is_some_and(|r| r.seq == next) {
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
        }
    }

    fn seqs(rows: Option<Vec<OutboxRow>>) -> Option<Vec<u64>> {
        rows.map(|r| r.into_iter().map(|r| r.seq).collect())
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
