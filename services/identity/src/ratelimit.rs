//! Token buckets for login attempts: per username and per client.
//!
//! Each key gets a bucket of `per_minute` tokens refilled continuously (so the burst equals the
//! per-minute rate); an attempt takes one token or is refused with 429. Every attempt counts,
//! successful or not, and unknown usernames get buckets too, so a 429 says nothing about whether
//! a user exists. The map is bounded: when it grows past [`MAX_KEYS`], buckets that have
//! refilled completely (idle keys) are dropped — they hold no information.
//!
//! What "client" means is the limitation: every login client shares the login-only NATS
//! credential, and NATS tells a responder nothing about who sent a request, so the only client
//! identity available is what the request carries (its public key). An attacker can change it
//! at will; the per-client limit slows down well-behaved clients that loop, while the
//! per-username limit is the real brake on password guessing (docs/identity.md).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before idle ones are dropped.
pub const MAX_KEYS: usize = 10_000;

/// A set of token buckets keyed by string.
#[derive(Debug)]
pub struct RateLimiter {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `per_minute` attempts per key per minute, bursting to `per_minute`.
    pub fn per_minute(per_minute: u32) -> RateLimiter {
        let capacity = f64::from(per_minute.max(1));
        RateLimiter {
            capacity,
            per_second: capacity / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key` at `now`; `Err(wait)` says how long until one is available.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            buckets.retain(|_, b| self.level(b, now) < self.capacity);
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.capacity,
            at: now,
        });
        bucket.tokens = self.level(bucket, now);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }

    fn level(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second).min(self.capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let limiter = RateLimiter::per_minute(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take("alice", t0).is_ok());
        }
        let wait = limiter.take("alice", t0).unwrap_err();
        assert!(
            wait <= Duration::from_secs(20) && wait > Duration::from_secs(19),
            "{wait:?}"
        );
        assert!(limiter.take("bob", t0).is_ok(), "keys are independent");
        assert!(limiter.take("alice", t0 + Duration::from_secs(20)).is_ok());
        assert!(limiter.take("alice", t0 + Duration::from_secs(21)).is_err());
    }

    #[test]
    fn idle_buckets_are_dropped_when_full() {
        let limiter = RateLimiter::per_minute(1);
        let t0 = Instant::now();
        for i in 0..MAX_KEYS {
            limiter.take(&format!("k{i}"), t0).unwrap();
        }
        // A minute later every bucket has refilled: adding one more drops them all.
        limiter.take("new", t0 + Duration::from_secs(61)).unwrap();
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1);
    }
}
