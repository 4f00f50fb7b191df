//! Waiting for a condition without sleeping a fixed time.
//!
//! Distributed behaviour is asynchronous: a KV watcher sees a change "soon", a consumer is
//! created "soon" after a service starts. A fixed sleep is either too short on a loaded CI
//! machine or wasted time everywhere else, so tests poll instead: try, and if the condition is
//! not met yet, try again [`POLL_INTERVAL`](crate::POLL_INTERVAL) later, until a deadline. On
//! timeout the *last* failure is returned, since it says what was still wrong
//! (linkerd's `assert_eventually!` is the model).

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use tokio::time::Instant;

use crate::POLL_INTERVAL;

/// The outcome of one attempt of [`eventually`]: `Ok`/`Some` ends the wait, `Err`/`None` means
/// "not yet". Implemented for `Result<T, E>` and `Option<T>`.
pub trait Attempt {
    /// The value a successful attempt yields.
    type Output;

    /// `Ok` when the attempt succeeded, else why not.
    fn into_result(self) -> anyhow::Result<Self::Output>;
}

impl<T, E> Attempt for Result<T, E>
where
    E: Into<anyhow::Error>,
{
    type Output = T;

    fn into_result(self) -> anyhow::Result<T> {
        self.map_err(Into::into)
    }
}

impl<T> Attempt for Option<T> {
    type Output = T;

    fn into_result(self) -> anyhow::Result<T> {
        self.ok_or_else(|| anyhow::anyhow!("condition not met (the check returned None)"))
    }
}

/// Calls `f` every [`POLL_INTERVAL`](crate::POLL_INTERVAL) until it returns `Ok`/`Some` and
/// returns that value; if `deadline` passes first, returns the last failure with the time waited
/// as context. `f` always runs at least once, and an attempt in progress is not cut short, so a
/// slow attempt may overrun the deadline by its own duration.
///
/// ```no_run
/// # async fn demo(client: async_nats::Client) -> anyhow::Result<()> {
/// use std::time::Duration;
/// let reply = plantd_tests::eventually(Duration::from_secs(5), || {
///     let client = client.clone();
///     async move { client.request("service.ping", "hi".into()).await }
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn eventually<F, Fut, T>(deadline: Duration, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future,
    Fut::Output: Attempt<Output = T>,
{
    let start = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let err = match f().await.into_result() {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        if start.elapsed() >= deadline {
            return Err(err).with_context(|| {
                format!("still failing after {attempts} attempts in {deadline:?}")
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn returns_the_first_success() {
        let calls = AtomicU32::new(0);
        let value = eventually(Duration::from_secs(5), || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            (n >= 3).then_some(n)
        })
        .await
        .expect("succeeds on the third call");
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn question_mark_works_inside_the_check() {
        let value = eventually(Duration::from_secs(1), || async {
            let n: u32 = "7".parse()?;
            anyhow::Ok(n)
        })
        .await
        .expect("parses");
        assert_eq!(value, 7);
    }

    #[tokio::test]
    async fn times_out_with_the_last_error() {
        let calls = AtomicU32::new(0);
        let err = eventually(Duration::from_millis(100), || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(anyhow::anyhow!("attempt {n} failed"))
        })
        .await
        .expect_err("never succeeds");
        let last = calls.load(Ordering::SeqCst) - 1;
        assert!(last >= 1, "polled more than once");
        assert_eq!(
            err.root_cause().to_string(),
            format!("attempt {last} failed")
        );
    }
}
