//! Graceful shutdown as a first-class value (mini-redis' `Shutdown`).
//!
//! One [`Shutdown`] is created per process and cloned into every task that must stop: it is
//! a cancellation token that SIGINT/SIGTERM trigger ([`Shutdown::on_signals`]) and tests or
//! `plant up` trigger directly. Stopping then follows linkerd's order: stop accepting, drain
//! in-flight work within a grace period, warn if the grace period ran out.

use tokio_util::sync::CancellationToken;

/// A shutdown signal shared by every task of a process.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// A new, untriggered signal.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Triggers shutdown; every waiter wakes up.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Whether shutdown was triggered.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Waits until shutdown is triggered.
    pub async fn wait(&self) {
        self.token.cancelled().await
    }

    /// Triggers this signal on the first SIGINT or SIGTERM (spawns a task).
    pub fn on_signals(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sigterm = signal(SignalKind::terminate())?;
        let this = self.clone();
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = sigint.recv() => "SIGINT",
                _ = sigterm.recv() => "SIGTERM",
                _ = this.wait() => return,
            };
            tracing::info!(signal = name, "shutdown requested");
            this.trigger();
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trigger_wakes_clones() {
        let s = Shutdown::new();
        let c = s.clone();
        let waiter = tokio::spawn(async move { c.wait().await });
        assert!(!s.is_triggered());
        s.trigger();
        waiter.await.unwrap();
        assert!(s.is_triggered());
    }
}
