//! Per-endpoint counters behind `$SRV.STATS` and `/metrics`.
//!
//! Every answered request is counted, error replies included (async-nats does not count an
//! error reply that carries a body), with its handling time in a fixed-bucket histogram and
//! its error code. Counters are atomics so the hot path takes no lock; only `last_error`
//! (rare) sits behind a mutex.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::error::{ErrorCode, ServiceError};

/// Upper bounds of the handling-time histogram, seconds: 100 µs to 5 s.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Counters of one endpoint.
#[derive(Debug, Default)]
pub struct Counters {
    requests: AtomicU64,
    errors: AtomicU64,
    processing_ns: AtomicU64,
    /// Requests per latency bucket (not cumulative; the last slot is above the last bound).
    latency: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    /// Errors per code, in [`ErrorCode::ALL`] order.
    by_code: [AtomicU64; ErrorCode::ALL.len()],
    last_error: Mutex<String>,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Requests answered.
    pub requests: u64,
    /// Of which errors.
    pub errors: u64,
    /// Total handling time, ns.
    pub processing_ns: u64,
    /// `"<code>:<message>"` of the last error.
    pub last_error: String,
    /// Cumulative requests at or below each of [`LATENCY_BUCKETS`].
    pub latency_buckets: Vec<u64>,
    /// Errors per code, codes with none left out.
    pub errors_by_code: Vec<(ErrorCode, u64)>,
}

impl Counters {
    /// Records one answered request.
    pub fn record(&self, elapsed: Duration, error: Option<&ServiceError>) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.processing_ns.fetch_add(ns, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
        if let Some(err) = error {
            self.errors.fetch_add(1, Ordering::Relaxed);
            if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == err.code) {
                self.by_code[i].fetch_add(1, Ordering::Relaxed);
            }
            let mut last = self
                .last_error
                .lock()
                .expect("stats lock is never poisoned: no panics while held");
            *last = format!("{}:{}", err.code, err.message);
        }
    }

    /// The current values.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            processing_ns: self.processing_ns.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .expect("stats lock is never poisoned: no panics while held")
                .clone(),
            latency_buckets: self.latency[..LATENCY_BUCKETS.len()]
                .iter()
                .scan(0, |total, n| {
                    *total += n.load(Ordering::Relaxed);
                    Some(*total)
                })
                .collect(),
            errors_by_code: ErrorCode::ALL
                .iter()
                .zip(&self.by_code)
                .map(|(code, n)| (*code, n.load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_requests_too() {
        let c = Counters::default();
        c.record(Duration::from_micros(10), None);
        c.record(
            Duration::from_micros(30),
            Some(&ServiceError::new(ErrorCode::BadRequest, "bad key")),
        );
        let s = c.snapshot();
        assert_eq!((s.requests, s.errors, s.processing_ns), (2, 1, 40_000));
        assert_eq!(s.last_error, "400:bad key");
        assert_eq!(s.errors_by_code, [(ErrorCode::BadRequest, 1)]);
        // 10 µs and 30 µs are both at or below the first bound (100 µs).
        assert_eq!(s.latency_buckets[0], 2);
        assert_eq!(*s.latency_buckets.last().unwrap(), 2);
    }
}
