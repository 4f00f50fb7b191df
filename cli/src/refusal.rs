//! Permission refusals, which the server reports on the side.
//!
//! When nats-server refuses a publish or a subscription for the connection's permissions it
//! sends `-ERR 'Permissions Violation for Publish to "…"'` to the connection and drops the
//! message; the request that caused it simply gets no reply. Without this module a refused
//! `plant state set` would wait out its whole timeout and then say the outcome is unknown,
//! which is wrong twice: nothing was applied, and the cause is known.
//!
//! The connection's event callback [`record`]s every violation; `main` races each command
//! against [`first_fatal`] and ends it with a [`Refused`] error (exit code 6) as soon as one
//! arrives. One refusal is not fatal: the delete of an ordered consumer that a watch replaces
//! after a reconnect (`$JS.API.CONSUMER.DELETE…`), which people are not granted and which the
//! watch survives (docs/identity.md, "Limitations").

use std::sync::OnceLock;

use tokio::sync::watch;

/// A refusal by the server for this process's connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "403 permission denied by the server ({text}); the credentials in use do not grant it \
     (see `plant whoami`)"
)]
pub struct Refused {
    /// The server's text, e.g. `Permissions Violation for Publish to "plantd.state.set.a"`.
    pub text: String,
}

/// The latest refusal; `None` until one arrives.
fn latest() -> &'static watch::Sender<Option<Refused>> {
    static LATEST: OnceLock<watch::Sender<Option<Refused>>> = OnceLock::new();
    LATEST.get_or_init(|| watch::channel(None).0)
}

/// Whether a server error text is a permission refusal, and one that ends a command.
fn classify(text: &str) -> Option<bool> {
    let lower = text.to_ascii_lowercase();
    if !lower.contains("permissions violation") {
        return None;
    }
    Some(!lower.contains("\"$js.api.consumer.delete."))
}

/// Records a server error; returns whether it was a fatal refusal (so the caller need not
/// print it as a warning: the command's error will say it).
pub fn record(text: &str) -> bool {
    match classify(text) {
        Some(true) => {
            latest().send_replace(Some(Refused {
                text: text.trim().to_string(),
            }));
            true
        }
        _ => false,
    }
}

/// Resolves with the first fatal refusal recorded after the call.
pub async fn first_fatal() -> Refused {
    let mut rx = latest().subscribe();
    loop {
        if rx.changed().await.is_err() {
            // The sender is static and never dropped; park rather than spin.
            std::future::pending::<()>().await;
        }
        if let Some(refused) = rx.borrow_and_update().clone() {
            return refused;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_apart() {
        let publish = r#"nats: Permissions Violation for Publish to "plantd.state.set.site1""#;
        assert_eq!(classify(publish), Some(true));
        let delete = r#"nats: Permissions Violation for Publish to "$JS.API.CONSUMER.DELETE.KV_plantd-state.w_1""#;
        assert_eq!(classify(delete), Some(false));
        assert_eq!(classify("nats: maximum payload exceeded"), None);
    }

    #[tokio::test]
    async fn a_recorded_refusal_wakes_the_waiter() {
        let waiter = tokio::spawn(first_fatal());
        tokio::task::yield_now().await;
        assert!(!record("nats: maximum payload exceeded"));
        let text = r#"nats: Permissions Violation for Subscription to "_INBOX_bob.>""#;
        // The waiter may subscribe after a record; record until it wakes (bounded).
        for _ in 0..400 {
            assert!(record(text));
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            if waiter.is_finished() {
                break;
            }
        }
        let refused = tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("the waiter wakes")
            .expect("waiter ran");
        assert_eq!(refused.text, text);
        assert!(refused.to_string().starts_with("403 permission denied"));
    }
}
