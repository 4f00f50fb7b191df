//! The closed-loop load generator both paths of every scenario run through.
//!
//! `concurrency` tasks share one NATS connection; each takes the next operation number and
//! runs it to completion before taking another, so exactly `concurrency` operations are in
//! flight until the count is used up or the round's time limit passes. Each operation's
//! latency is measured around its future with [`Instant`]. The same code drives the plantd path
//! and its baseline, so any client-side overhead is the same on both.
//!
//! A path whose round is more than a closed loop (untimed set-up first, a load beside it, or a
//! firehose the closed loop cannot express) is a [`Round`] it runs itself, usually around a
//! [`closed_loop`]; [`flood`] is the background load such a round runs beside its own.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use super::{progress::Progress, stats::RoundStats};

/// The future of one operation; `Err` carries a message for the report.
pub type OpFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One operation of a path, given its number within the round.
pub type Op = Arc<dyn Fn(usize) -> OpFuture + Send + Sync>;

/// Wraps an async closure as an [`Op`].
pub fn op<F, Fut>(f: F) -> Op
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(move |i| Box::pin(f(i)))
}

/// The future of a whole round.
pub type RoundFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// A round a path runs itself, given its count, its time limit and the progress display.
pub type Round = Arc<dyn Fn(usize, Duration, Progress) -> RoundFuture + Send + Sync>;

/// Wraps an async closure as a [`Round`].
pub fn round<F, Fut>(f: F) -> Round
where
    F: Fn(usize, Duration, Progress) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    Arc::new(move |count, limit, progress| Box::pin(f(count, limit, progress)))
}

/// What a round produced.
pub struct Outcome {
    /// Its numbers.
    pub stats: RoundStats,
    /// The first failure, if any.
    pub first_error: Option<String>,
}

struct TaskResult {
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
    truncated: bool,
}

/// Runs `count` operations with `concurrency` in flight, stopping early at `limit`.
pub async fn closed_loop(
    op: &Op,
    count: usize,
    concurrency: usize,
    limit: Duration,
    progress: &Progress,
) -> Outcome {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + limit;
    let tasks: Vec<_> = (0..concurrency.clamp(1, count.max(1)))
        .map(|_| {
            let (op, next, progress) = (Arc::clone(op), Arc::clone(&next), progress.clone());
            tokio::spawn(async move {
                let mut result = TaskResult {
                    latencies: Vec::with_capacity(count / concurrency.max(1) + 1),
                    errors: 0,
                    first_error: None,
                    truncated: false,
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    if Instant::now() >= deadline {
                        result.truncated = true;
                        break;
                    }
                    let began = Instant::now();
                    match op(i).await {
                        Ok(()) => result.latencies.push(began.elapsed()),
                        Err(err) => {
                            result.errors += 1;
                            result.first_error.get_or_insert(err);
                        }
                    }
                    progress.tick();
                }
                result
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(count);
    let (mut errors, mut first_error, mut truncated) = (0, None, false);
    for task in futures::future::join_all(tasks).await {
        match task {
            Ok(r) => {
                latencies.extend(r.latencies);
                errors += r.errors;
                truncated |= r.truncated;
                if first_error.is_none() {
                    first_error = r.first_error;
                }
            }
            Err(err) => {
                errors += 1;
                first_error.get_or_insert(format!("load task failed: {err}"));
            }
        }
    }
    let elapsed = start.elapsed();
    Outcome {
        stats: RoundStats::from_samples(latencies, errors, elapsed, truncated),
        first_error,
    }
}

/// A background load: `concurrency` tasks running `op` back to back until [`Flood::stop`].
pub struct Flood {
    stop: Arc<AtomicBool>,
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<(usize, usize, Option<String>)>>,
}

/// What a flood did.
pub struct FloodOutcome {
    /// Successful operations per second.
    pub per_s: f64,
    /// Failed operations.
    pub errors: usize,
    /// The first failure.
    pub first_error: Option<String>,
}

/// Starts `concurrency` tasks running `op` (numbered from 0) until the flood is stopped.
pub fn flood(op: &Op, concurrency: usize) -> Flood {
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let tasks = (0..concurrency.max(1))
        .map(|_| {
            let (op, next, stop) = (Arc::clone(op), Arc::clone(&next), Arc::clone(&stop));
            tokio::spawn(async move {
                let (mut done, mut errors, mut first_error) = (0, 0, None);
                while !stop.load(Ordering::Relaxed) {
                    match op(next.fetch_add(1, Ordering::Relaxed)).await {
                        Ok(()) => done += 1,
                        Err(err) => {
                            errors += 1;
                            first_error.get_or_insert(err);
                        }
                    }
                }
                (done, errors, first_error)
            })
        })
        .collect();
    Flood {
        stop,
        started: Instant::now(),
        tasks,
    }
}

impl Flood {
    /// Stops the flood and waits for its operations in flight.
    pub async fn stop(self) -> FloodOutcome {
        self.stop.store(true, Ordering::Relaxed);
        let (mut done, mut errors, mut first_error) = (0, 0, None);
        for task in futures::future::join_all(self.tasks).await {
            match task {
                Ok((d, e, first)) => {
                    done += d;
                    errors += e;
                    if first_error.is_none() {
                        first_error = first;
                    }
                }
                Err(err) => {
                    errors += 1;
                    first_error.get_or_insert(format!("flood task failed: {err}"));
                }
            }
        }
        let secs = self.started.elapsed().as_secs_f64();
        FloodOutcome {
            per_s: if secs > 0.0 { done as f64 / secs } else { 0.0 },
            errors,
            first_error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_every_operation_once_with_the_given_concurrency() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (s, f, p) = (seen.clone(), in_flight.clone(), peak.clone());
        let work = op(move |i| {
            let (s, f, p) = (s.clone(), f.clone(), p.clone());
            async move {
                let now = f.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
                f.fetch_sub(1, Ordering::SeqCst);
                s.lock().map_err(|e| e.to_string())?.push(i);
                if i == 3 {
                    Err("three".to_string())
                } else {
                    Ok(())
                }
            }
        });
        let out = closed_loop(&work, 40, 4, Duration::from_secs(30), &Progress::new(0)).await;
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..40).collect::<Vec<_>>());
        assert_eq!((out.stats.completed, out.stats.errors), (39, 1));
        assert_eq!(out.first_error.as_deref(), Some("three"));
        assert!(!out.stats.truncated);
        assert_eq!(peak.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_flood_runs_until_stopped() {
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let work = op(move |_| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok(())
            }
        });
        let running = flood(&work, 3);
        tokio::time::sleep(Duration::from_millis(30)).await;
        let out = running.stop().await;
        let ran = count.load(Ordering::SeqCst);
        assert!(ran >= 3, "{ran}");
        assert!(out.per_s > 0.0 && out.errors == 0 && out.first_error.is_none());
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(count.load(Ordering::SeqCst), ran, "nothing runs after stop");
    }

    #[tokio::test]
    async fn stops_at_the_time_limit() {
        let work = op(|_| async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(())
        });
        let out = closed_loop(
            &work,
            1_000_000,
            2,
            Duration::from_millis(50),
            &Progress::new(0),
        )
        .await;
        assert!(out.stats.truncated);
        assert!(out.stats.completed < 1_000_000);
    }
}
