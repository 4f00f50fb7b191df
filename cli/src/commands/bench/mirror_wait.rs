//! Waiting between rounds for a stream the plantd path fills asynchronously.
//!
//! plantd acknowledges a `set` once SQLite committed it; the KV mirror follows asynchronously
//! (DESIGN.md, durability). A round of sets therefore leaves the mirror still publishing when
//! the last reply arrives. The runner waits for it to catch up before the next round, so no
//! round is slowed by the previous one's mirror work, and reports how long that took: the
//! mirror lag a watcher would see at that load. Each committed set is one KV message, so the
//! mirror has caught up when the bucket's last sequence has grown by the number of sets.
//!
//! A core publish on a bus is delivered to live listeners while the bus's capture stream
//! stores it on its own, so `bus-pub` waits the same way for the capture stream (one stored
//! message per delivered one).

use std::time::{Duration, Instant};

use async_nats::jetstream::stream::Stream;

/// Longest wait for the mirror.
const LIMIT: Duration = Duration::from_secs(30);
/// Poll interval.
const POLL: Duration = Duration::from_millis(2);

/// The stream's last sequence, asked of the server (`kv.status()` in async-nats 0.51 returns
/// the stream info cached when the bucket was opened, so a bucket's is read from its stream).
pub async fn last_sequence(stream: &Stream) -> Result<u64, String> {
    stream
        .get_info()
        .await
        .map(|info| info.state.last_sequence)
        .map_err(|e| {
            format!(
                "cannot read the state of stream {}: {e}",
                stream.cached_info().config.name
            )
        })
}

/// Waits until the stream's last sequence reaches `target`; returns how long that took, or
/// `None` if it did not within 30 s (or the state could not be read).
pub async fn caught_up(stream: &Stream, target: u64) -> Option<Duration> {
    let start = Instant::now();
    loop {
        match last_sequence(stream).await {
            Ok(seq) if seq >= target => return Some(start.elapsed()),
            Ok(_) if start.elapsed() < LIMIT => tokio::time::sleep(POLL).await,
            _ => return None,
        }
    }
}
