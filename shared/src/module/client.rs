//! A typed client for a capability: deadline, retries that never repeat a write, and a
//! circuit breaker.
//!
//! A module that requires `state` or `echo` calls it through a [`CapabilityClient`] instead of
//! a bare request, and gets what a control system needs from every call:
//!
//! * **One deadline per call**, retries included: an idempotent call's attempt gets its share
//!   of what is left, any other call's gets all of it.
//! * **Retries only where they cannot do harm.** `no responders` means nobody received the
//!   request, so it is retried for every call (a provider restarting or being replaced). A
//!   timeout, a 503 or a 504 leaves the outcome unknown, so it is retried only for calls the
//!   caller marks [`Idempotency::Idempotent`] (reads, absolute setpoints with a revision).
//!   Backoff is exponential with full jitter, so callers that failed together do not retry
//!   together.
//! * **A circuit breaker per capability** ([`super::breaker`]), shared by every client of that
//!   capability in the module: after repeated provider failures calls fail at once with
//!   [`CallError::CircuitOpen`] until a trial call succeeds.
//!
//! A capability `X` is served on `plantd.X.<op>` (DESIGN.md, "Wire contract"); a provider of
//! someone else's capability name serves the same subjects.

use std::{
    hash::{BuildHasher, RandomState},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use crate::{
    ErrorCode,
    call::{self, CallError},
    codec::{Encoding, WireMessage},
    subjects,
};

use super::breaker::{Breaker, BreakerPolicy, Breakers};

/// Whether repeating a call is harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Doing it twice is the same as once (a read, a compare-and-set write).
    Idempotent,
    /// Doing it twice may do harm (an increment, a command): never repeated after it may have
    /// been received.
    NotIdempotent,
}

/// How a client calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientPolicy {
    /// The whole call's deadline, retries included.
    pub deadline: Duration,
    /// Most attempts per call (1 = no retry).
    pub max_attempts: u32,
    /// First backoff ceiling; doubles per attempt.
    pub backoff_base: Duration,
    /// Largest backoff ceiling.
    pub backoff_max: Duration,
    /// The capability's breaker.
    pub breaker: BreakerPolicy,
}

impl Default for ClientPolicy {
    fn default() -> Self {
        ClientPolicy {
            deadline: Duration::from_secs(5),
            max_attempts: 4,
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
            breaker: BreakerPolicy {
                failure_threshold: 5,
                open_for: Duration::from_secs(5),
            },
        }
    }
}

/// A client of one capability.
#[derive(Debug, Clone)]
pub struct CapabilityClient {
    client: async_nats::Client,
    capability: String,
    encoding: Encoding,
    policy: ClientPolicy,
    breaker: Breaker,
}

/// A distinct input for every backoff draw, so two draws in the same instant differ.
static ATTEMPT_SEED: AtomicU64 = AtomicU64::new(0);

impl CapabilityClient {
    /// A client of `capability` on `client`, its breaker kept in `breakers`.
    pub fn new(
        client: async_nats::Client,
        capability: &str,
        policy: ClientPolicy,
        breakers: &Breakers,
    ) -> CapabilityClient {
        CapabilityClient {
            breaker: breakers.get_or_insert(capability, policy.breaker),
            client,
            capability: capability.to_string(),
            encoding: Encoding::Protobuf,
            policy,
        }
    }

    /// Sends requests as JSON instead of protobuf.
    pub fn with_encoding(mut self, encoding: Encoding) -> CapabilityClient {
        self.encoding = encoding;
        self
    }

    /// The capability's breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Calls `plantd.<capability>.<op>`.
    pub async fn call<Req: WireMessage, Resp: WireMessage>(
        &self,
        op: &str,
        request: &Req,
        idempotency: Idempotency,
    ) -> Result<Resp, CallError> {
        let subject = subjects::module_op(&self.capability, op);
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let left = self.policy.deadline.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(CallError::TimedOut {
                    subject,
                    timeout: self.policy.deadline,
                });
            }
            self.breaker
                .admit(Instant::now())
                .map_err(|rejected| CallError::CircuitOpen {
                    capability: self.capability.clone(),
                    retry_in: rejected.retry_in,
                })?;
            // An idempotent call shares what is left among the attempts left, so a timeout
            // leaves time to retry; any other call gets all of it (it is never retried
            // after a timeout).
            let attempt_timeout = match idempotency {
                Idempotency::Idempotent => left / (self.policy.max_attempts - attempt + 1).max(1),
                Idempotency::NotIdempotent => left,
            };
            let result = call::request(
                &self.client,
                &subject,
                request,
                self.encoding,
                attempt_timeout,
            )
            .await;
            let failure = result.as_ref().err();
            self.breaker
                .record(failure.is_some_and(provider_failed), Instant::now());
            let Err(err) = result else { return result };
            if attempt >= self.policy.max_attempts || !retryable(&err, idempotency) {
                return Err(err);
            }
            let pause = self.backoff(attempt);
            if started.elapsed() + pause >= self.policy.deadline {
                return Err(err);
            }
            tracing::debug!(capability = %self.capability, op, attempt, error = %err, "retrying");
            tokio::time::sleep(pause).await;
        }
    }

    /// Full jitter: a uniform pause in `[0, min(max, base · 2^(attempt-1))]`.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .policy
            .backoff_base
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(self.policy.backoff_max);
        let seed = ATTEMPT_SEED.fetch_add(1, Ordering::Relaxed);
        let random = RandomState::new().hash_one(seed);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(random % nanos.saturating_add(1))
    }
}

/// Whether a failure says the provider is in trouble (counts toward opening the breaker).
pub fn provider_failed(err: &CallError) -> bool {
    match err {
        CallError::NoResponders { .. }
        | CallError::TimedOut { .. }
        | CallError::Decode { .. }
        | CallError::Other { .. } => true,
        CallError::Service(e) => matches!(
            e.code,
            ErrorCode::Internal | ErrorCode::Unavailable | ErrorCode::Timeout
        ),
        CallError::CircuitOpen { .. } => false,
    }
}

/// Whether a failed attempt may be sent again: never-delivered ones always, unknown outcomes
/// only when repeating is harmless.
pub fn retryable(err: &CallError, idempotency: Idempotency) -> bool {
    match err {
        CallError::NoResponders { .. } => true,
        CallError::TimedOut { .. } => idempotency == Idempotency::Idempotent,
        CallError::Service(e) => {
            idempotency == Idempotency::Idempotent
                && matches!(
                    e.code,
                    ErrorCode::Unavailable | ErrorCode::Timeout | ErrorCode::TooManyRequests
                )
        }
        CallError::Decode { .. } | CallError::Other { .. } | CallError::CircuitOpen { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServiceError;

    fn timed_out() -> CallError {
        CallError::TimedOut {
            subject: "s".into(),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn unknown_outcomes_are_retried_only_when_idempotent() {
        use Idempotency::*;
        let none = CallError::NoResponders {
            subject: "s".into(),
        };
        assert!(retryable(&none, NotIdempotent) && retryable(&none, Idempotent));
        assert!(!retryable(&timed_out(), NotIdempotent));
        assert!(retryable(&timed_out(), Idempotent));
        let busy = CallError::Service(ServiceError::new(ErrorCode::Unavailable, "busy"));
        assert!(!retryable(&busy, NotIdempotent) && retryable(&busy, Idempotent));
        let bad = CallError::Service(ServiceError::invalid_field("x", "no"));
        assert!(!retryable(&bad, Idempotent));
    }

    #[test]
    fn only_provider_failures_count_toward_the_breaker() {
        assert!(provider_failed(&timed_out()));
        let internal = CallError::Service(ServiceError::new(ErrorCode::Internal, "bug"));
        assert!(provider_failed(&internal));
        let missing = CallError::Service(ServiceError::new(ErrorCode::NotFound, "no key"));
        assert!(!provider_failed(&missing));
    }
}
