//! Stopping child processes by PID: SIGTERM, a grace period, then SIGKILL, always reaped.
//!
//! Used for nats-server and service children alike, so no caller leaves a zombie or an
//! orphan behind.

use std::{process::Child, time::Duration};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

/// Sends `signal` to the child (ignoring a child that already exited).
pub fn signal(child: &Child, signal: Signal) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

/// SIGTERM, wait up to `grace` (polling), then SIGKILL; reaps the child. Returns whether it
/// exited within the grace period.
pub async fn terminate(mut child: Child, grace: Duration) -> bool {
    signal(&child, Signal::SIGTERM);
    wait_or_kill(&mut child, grace).await
}

/// Waits up to `grace` for the child to exit, then SIGKILLs it; reaps it either way.
pub async fn wait_or_kill(child: &mut Child, grace: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + grace;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
