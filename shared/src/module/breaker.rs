//! A circuit breaker per capability: stop calling a provider that keeps failing, try again
//! after a pause, and let exactly one trial through before trusting it again.
//!
//! ```text
//!   closed ──(N failures in a row)──▶ open ──(open_for elapsed)──▶ half-open
//!     ▲                                 ▲                              │
//!     └──────────(trial succeeds)───────┼──────────────────────────────┤
//!                                       └──────(trial fails)───────────┘
//! ```
//!
//! While open, calls fail at once without touching the network, so a dead dependency costs a
//! module nothing and the dependency is not hammered while it restarts. Only failures that say
//! something about the *provider* count (no responders, timeouts, 500/503/504); a 400 or 404
//! is the caller's problem and leaves the breaker alone. The states of all of a module's
//! breakers are shown in its `$SRV.STATS` reply (`breakers`) and on its `/healthz`.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

/// The three states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreakerState {
    /// Calls go through; failures are counted.
    Closed,
    /// Calls fail at once until the pause ends.
    Open,
    /// One trial call is in flight; others fail at once.
    HalfOpen,
}

/// When a breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Failures in a row that open it.
    pub failure_threshold: u32,
    /// How long it stays open before a trial.
    pub open_for: Duration,
}

/// A breaker's state as STATS shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerSnapshot {
    /// Current state.
    pub state: BreakerState,
    /// Failures in a row so far.
    pub consecutive_failures: u32,
    /// Times it opened since the instance started.
    pub opened: u64,
    /// Calls refused because it was open.
    pub rejected: u64,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    opened: u64,
    rejected: u64,
}

/// One capability's breaker. Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct Breaker {
    policy: BreakerPolicy,
    inner: Arc<Mutex<Inner>>,
}

/// Why a call was not let through: the breaker is open and will allow a trial in `retry_in`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// Time until the next trial is allowed (zero while a trial is in flight).
    pub retry_in: Duration,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(policy: BreakerPolicy) -> Breaker {
        Breaker {
            policy: BreakerPolicy {
                failure_threshold: policy.failure_threshold.max(1),
                ..policy
            },
            inner: Arc::new(Mutex::new(Inner {
                state: BreakerState::Closed,
                consecutive_failures: 0,
                opened_at: None,
                opened: 0,
                rejected: 0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .expect("breaker lock is never poisoned: no panics while held")
    }

    /// Asks to make a call at `now`: allowed (closed, or the half-open trial) or rejected.
    pub fn admit(&self, now: Instant) -> Result<(), Rejected> {
        let mut inner = self.lock();
        match inner.state {
            BreakerState::Closed => Ok(()),
            BreakerState::Open => {
                let since = inner
                    .opened_at
                    .map_or(self.policy.open_for, |at| now.saturating_duration_since(at));
                if since >= self.policy.open_for {
                    inner.state = BreakerState::HalfOpen;
                    tracing::info!("circuit half-open: letting one trial call through");
                    Ok(())
                } else {
                    inner.rejected += 1;
                    Err(Rejected {
                        retry_in: self.policy.open_for - since,
                    })
                }
            }
            BreakerState::HalfOpen => {
                inner.rejected += 1;
                Err(Rejected {
                    retry_in: Duration::ZERO,
                })
            }
        }
    }

    /// Records an admitted call's outcome: `provider_failed` is true for failures that count.
    pub fn record(&self, provider_failed: bool, now: Instant) {
        let mut inner = self.lock();
        if !provider_failed {
            if inner.state != BreakerState::Closed {
                tracing::info!("circuit closed: the provider answers again");
            }
            inner.state = BreakerState::Closed;
            inner.consecutive_failures = 0;
            inner.opened_at = None;
            return;
        }
        inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
        let trip = match inner.state {
            BreakerState::HalfOpen => true,
            BreakerState::Closed => inner.consecutive_failures >= self.policy.failure_threshold,
            // A call admitted before the breaker opened finished late: already open.
            BreakerState::Open => false,
        };
        if trip {
            tracing::warn!(
                failures = inner.consecutive_failures,
                open_for_ms = self.policy.open_for.as_millis() as u64,
                "circuit open: failing calls at once"
            );
            inner.state = BreakerState::Open;
            inner.opened_at = Some(now);
            inner.opened += 1;
        }
    }

    /// Its state for STATS.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let inner = self.lock();
        BreakerSnapshot {
            state: inner.state,
            consecutive_failures: inner.consecutive_failures,
            opened: inner.opened,
            rejected: inner.rejected,
        }
    }
}

/// A module's breakers by capability: what STATS reports. Cheap to clone; clones share.
#[derive(Debug, Clone, Default)]
pub struct Breakers {
    by_capability: Arc<Mutex<BTreeMap<String, Breaker>>>,
}

impl Breakers {
    /// The breaker of `capability`, created with `policy` on first use.
    pub fn get_or_insert(&self, capability: &str, policy: BreakerPolicy) -> Breaker {
        let mut map = self
            .by_capability
            .lock()
            .expect("breakers lock is never poisoned: no panics while held");
        map.entry(capability.to_string())
            .or_insert_with(|| Breaker::new(policy))
            .clone()
    }

    /// Every breaker's state.
    pub fn snapshot(&self) -> BTreeMap<String, BreakerSnapshot> {
        let map = self
            .by_capability
            .lock()
            .expect("breakers lock is never poisoned: no panics while held");
        map.iter().map(|(k, b)| (k.clone(), b.snapshot())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: BreakerPolicy = BreakerPolicy {
        failure_threshold: 3,
        open_for: Duration::from_secs(5),
    };

    #[test]
    fn opens_after_n_failures_in_a_row_and_only_then() {
        let b = Breaker::new(POLICY);
        let t = Instant::now();
        for _ in 0..2 {
            b.admit(t).unwrap();
            b.record(true, t);
        }
        b.record(false, t); // a success resets the count
        for _ in 0..2 {
            b.admit(t).unwrap();
            b.record(true, t);
        }
        assert_eq!(b.snapshot().state, BreakerState::Closed);
        b.admit(t).unwrap();
        b.record(true, t);
        let s = b.snapshot();
        assert_eq!((s.state, s.opened), (BreakerState::Open, 1));
        let rejected = b.admit(t + Duration::from_secs(1)).unwrap_err();
        assert_eq!(rejected.retry_in, Duration::from_secs(4));
        assert_eq!(b.snapshot().rejected, 1);
    }

    #[test]
    fn half_open_lets_one_trial_through_and_its_outcome_decides() {
        let b = Breaker::new(POLICY);
        let t = Instant::now();
        for _ in 0..3 {
            b.record(true, t);
        }
        let later = t + POLICY.open_for;
        b.admit(later).unwrap();
        assert_eq!(b.snapshot().state, BreakerState::HalfOpen);
        assert!(b.admit(later).is_err(), "only one trial at a time");
        b.record(true, later);
        assert_eq!(b.snapshot().state, BreakerState::Open);
        assert_eq!(b.snapshot().opened, 2);
        let again = later + POLICY.open_for;
        b.admit(again).unwrap();
        b.record(false, again);
        let s = b.snapshot();
        assert_eq!((s.state, s.consecutive_failures), (BreakerState::Closed, 0));
    }

    #[test]
    fn breakers_are_one_per_capability() {
        let all = Breakers::default();
        let a = all.get_or_insert("echo", POLICY);
        let t = Instant::now();
        for _ in 0..3 {
            a.record(true, t);
        }
        all.get_or_insert("clock", POLICY);
        let snap = all.snapshot();
        assert_eq!(snap["echo"].state, BreakerState::Open);
        assert_eq!(snap["clock"].state, BreakerState::Closed);
        assert_eq!(all.get_or_insert("echo", POLICY).snapshot().opened, 1);
    }
}
