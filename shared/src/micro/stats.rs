//! Per-endpoint counters behind `$SRV.STATS`.
//!
//! Every answered request is counted, error replies included (async-nats does not count an
//! error reply that carries a body). Counters are atomics so the hot path takes no lock;
//! only `last_error` (rare) sits behind a mutex.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::error::ServiceError;

/// Counters of one endpoint.
#[derive(Debug, Default)]
pub struct Counters {
    requests: AtomicU64,
    errors: AtomicU64,
    processing_ns: AtomicU64,
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
}

impl Counters {
    /// Records one answered request.
    pub fn record(&self, elapsed: Duration, error: Option<&ServiceError>) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.processing_ns.fetch_add(ns, Ordering::Relaxed);
        if let Some(err) = error {
            self.errors.fetch_add(1, Ordering::Relaxed);
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

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
    }
}
