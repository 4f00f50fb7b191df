//! Pushing the plantd account JWT, with identity's revocation list, to the server.
//!
//! The server only knows a user is revoked from the account JWT's `revocations` map, and
//! `$SYS.REQ.CLAIMS.UPDATE` *replaces* the whole account claim (NATS-PITFALLS.md §5.4). So
//! every push regenerates the complete claim from one definition
//! ([`crate::bootstrap::plantd_account_claims`]: limits, JetStream, signing key) plus every row
//! of the `revocations` table, signs it with the operator signing key, and:
//!
//! - gives it an `iat` strictly newer than the last one pushed (kept in the store), because
//!   servers syncing resolvers keep the newer JWT;
//! - pushes one at a time, from a single task: requests bump a generation counter and the task
//!   always pushes the *current* database state, so a burst of changes becomes one push and a
//!   stale claim is never sent after a newer one (a direct update overwrites unconditionally);
//! - checks the reply code, then looks the account up (`$SYS.REQ.ACCOUNT.<acc>.CLAIMS.LOOKUP`)
//!   and requires exactly the JWT it pushed — a 200 is not proof the server applied it;
//! - retries with backoff until it succeeds (the rows are committed; only delivery is pending),
//!   and every `account_check_secs` compares the server's JWT with the last pushed one and
//!   pushes again if they differ (e.g. a server whose resolver store was lost).
//!
//! The server then disconnects clients whose JWT is now revoked.

use std::sync::Arc;
use std::time::Duration;

use nkeys::KeyPair;
use plantd_shared::health::{Health, Status};
use plantd_shared::{ErrorCode, ServiceError, shutdown::Shutdown};
use tokio::sync::watch;

use crate::claims::unix_now;
use crate::store::{Store, sessions};
use crate::{bootstrap, jwt};

/// `$SYS.REQ.CLAIMS.UPDATE` (a NATS system subject, not a plantd one).
pub const CLAIMS_UPDATE: &str = "$SYS.REQ.CLAIMS.UPDATE";
/// Meta row holding the `iat` of the last account JWT pushed.
const LAST_IAT: &str = "account_last_iat";
/// How long a push or lookup may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Name of the health check the updater maintains.
const HEALTH_CHECK: &str = "account";
/// Longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// `$SYS.REQ.ACCOUNT.<account>.CLAIMS.LOOKUP`.
pub fn claims_lookup(account: &str) -> String {
    ["$SYS.REQ.ACCOUNT", account, "CLAIMS.LOOKUP"].join(".")
}

/// What the pushing task reports.
#[derive(Debug, Clone, Default)]
struct Progress {
    /// The highest generation the server has confirmed.
    applied: u64,
    /// The last failure: `(generation attempted, message)`.
    failed: Option<(u64, String)>,
    /// The account JWT the server was last seen to hold.
    jwt: Option<String>,
}

/// Requests account pushes and waits for them; cheap to clone.
#[derive(Clone, Debug)]
pub struct AccountUpdater {
    requested: Arc<watch::Sender<u64>>,
    progress: watch::Receiver<Progress>,
}

/// What the pushing task needs.
pub struct Pusher {
    /// The identity store (revocations, last iat).
    pub store: Store,
    /// A SYS-account connection allowed to update and look up claims.
    pub sys: async_nats::Client,
    /// The plantd account public key.
    pub account: String,
    /// Its signing key's public key (kept in every claim).
    pub account_signing_key: String,
    /// The operator signing key, which signs account JWTs.
    pub operator_signing_key: KeyPair,
    /// Margin before pruning expired revocations, seconds.
    pub prune_margin: i64,
    /// How often to compare the server's JWT with ours; `None` never.
    pub check_every: Option<Duration>,
    /// Gets an `account` check: healthy when the server holds identity's JWT, degraded while
    /// a push is failing.
    pub health: Health,
}

impl AccountUpdater {
    /// Starts the pushing task (which pushes once at start) and returns its handle.
    pub fn start(
        pusher: Pusher,
        shutdown: Shutdown,
    ) -> (AccountUpdater, tokio::task::JoinHandle<()>) {
        let (requested, requests) = watch::channel(1u64);
        let (report, progress) = watch::channel(Progress::default());
        let task = tokio::spawn(pusher.run(requests, report, shutdown));
        let updater = AccountUpdater {
            requested: Arc::new(requested),
            progress,
        };
        (updater, task)
    }

    /// Asks for a push of the current revocations; returns its generation.
    pub fn request(&self) -> u64 {
        let mut generation = 0;
        self.requested.send_modify(|g| {
            *g += 1;
            generation = *g;
        });
        generation
    }

    /// The account JWT the server was last seen to hold after a push, if any yet (edge sites
    /// fetch it to apply the hub's revocations to their own server).
    pub fn current_jwt(&self) -> Option<String> {
        self.progress.borrow().jwt.clone()
    }

    /// Waits until the server confirmed generation `generation` (or a later one). A failed
    /// attempt covering it, or `limit` passing, is a 503: the change is recorded and the push
    /// is retried in the background.
    pub async fn wait(&self, generation: u64, limit: Duration) -> Result<(), ServiceError> {
        let mut progress = self.progress.clone();
        let outcome = tokio::time::timeout(limit, async {
            loop {
                let current = progress.borrow_and_update().clone();
                if current.applied >= generation {
                    return Ok(());
                }
                if let Some((attempted, message)) = current.failed
                    && attempted >= generation
                {
                    return Err(message);
                }
                if progress.changed().await.is_err() {
                    return Err("the account updater stopped".to_string());
                }
            }
        })
        .await
        .unwrap_or_else(|_| Err(format!("no confirmation within {limit:?}")));
        outcome.map_err(|message| {
            ServiceError::new(
                ErrorCode::Unavailable,
                format!(
                    "the change is recorded but the server has not applied the revocation yet \
                     ({message}); identity keeps retrying"
                ),
            )
        })
    }
}

impl Pusher {
    async fn run(
        self,
        mut requests: watch::Receiver<u64>,
        report: watch::Sender<Progress>,
        shutdown: Shutdown,
    ) {
        let mut backoff = Duration::from_millis(250);
        let mut last_jwt: Option<String>;
        let mut check = self.check_every.map(|every| {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        });
        loop {
            let generation = *requests.borrow_and_update();
            match self.push().await {
                Ok(jwt) => {
                    backoff = Duration::from_millis(250);
                    last_jwt = Some(jwt.clone());
                    self.health.set(
                        HEALTH_CHECK,
                        Status::Healthy,
                        "the server holds the current account jwt",
                    );
                    report.send_modify(|p| {
                        p.applied = p.applied.max(generation);
                        p.failed = None;
                        p.jwt = Some(jwt);
                    });
                }
                Err(message) => {
                    tracing::warn!(error = %message, "account update failed; retrying");
                    self.health.set(
                        HEALTH_CHECK,
                        Status::Degraded,
                        format!("account update failing: {message}"),
                    );
                    report.send_modify(|p| p.failed = Some((generation, message)));
                    // A new change retries at once (an admin is waiting for it); otherwise back off.
                    tokio::select! {
                        () = shutdown.wait() => return,
                        () = tokio::time::sleep(backoff) => {}
                        changed = requests.changed() => if changed.is_err() { return },
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
            // Wait for the next request, a periodic check that finds a difference, or the end.
            loop {
                tokio::select! {
                    () = shutdown.wait() => return,
                    changed = requests.changed() => {
                        if changed.is_err() { return; }
                        break;
                    }
                    () = tick(&mut check) => {
                        if self.lookup().await.ok() != last_jwt {
                            tracing::warn!("the server's account jwt differs from identity's; pushing again");
                            break;
                        }
                    }
                }
            }
        }
    }

    /// Builds, pushes and verifies the account JWT; returns it.
    async fn push(&self) -> Result<String, String> {
        let margin = self.prune_margin;
        let (revocations, iat) = self
            .store
            .run(move |tx| {
                let now = unix_now();
                let pruned = sessions::prune(tx, now, margin)?;
                if pruned > 0 {
                    tracing::info!(pruned, "dropped revocations of expired jwts");
                }
                let last: i64 = sessions::meta(tx, LAST_IAT)?
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let iat = now.max(last + 1);
                sessions::set_meta(tx, LAST_IAT, &iat.to_string())?;
                Ok((sessions::revocations(tx)?, iat))
            })
            .await
            .map_err(|e| e.to_string())?;
        let mut claims = bootstrap::plantd_account_claims(&self.account, &self.account_signing_key);
        claims.iat = iat;
        let count = revocations.len();
        claims.nats.revocations = revocations;
        let token = jwt::encode(&claims, &self.operator_signing_key).map_err(|e| e.to_string())?;

        let reply = self
            .request(CLAIMS_UPDATE.to_string(), token.clone())
            .await?;
        check_update_reply(&reply)?;
        let held = self.lookup().await?;
        if held != token {
            return Err(
                "the server acknowledged the update but holds a different account jwt".into(),
            );
        }
        tracing::info!(account = %self.account, revocations = count, iat, "account jwt pushed and verified");
        Ok(token)
    }

    async fn lookup(&self) -> Result<String, String> {
        let reply = self
            .request(claims_lookup(&self.account), String::new())
            .await?;
        String::from_utf8(reply).map_err(|_| "the account lookup reply is not utf-8".to_string())
    }

    async fn request(&self, subject: String, payload: String) -> Result<Vec<u8>, String> {
        let what = subject.clone();
        tokio::time::timeout(REQUEST_TIMEOUT, self.sys.request(subject, payload.into()))
            .await
            .map_err(|_| format!("{what}: no reply within {REQUEST_TIMEOUT:?}"))?
            .map(|m| m.payload.to_vec())
            .map_err(|e| format!("{what}: {e}"))
    }
}

async fn tick(check: &mut Option<tokio::time::Interval>) {
    match check {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Accepts `{"data":{"code":200,…}}`; anything else (`{"error":…}`, another code) is a failure.
fn check_update_reply(reply: &[u8]) -> Result<(), String> {
    let value: serde_json::Value = serde_json::from_slice(reply)
        .map_err(|_| "the claims update reply is not json".to_string())?;
    if let Some(error) = value.get("error") {
        return Err(format!("the server refused the account jwt: {error}"));
    }
    match value["data"]["code"].as_i64() {
        Some(200) => Ok(()),
        other => Err(format!("unexpected claims update reply code {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_replies_are_checked() {
        let ok = br#"{"server":{},"data":{"account":"A","code":200,"message":"jwt updated"}}"#;
        assert!(check_update_reply(ok).is_ok());
        let refused = br#"{"error":{"account":"A","code":500,"description":"bad"}}"#;
        assert!(check_update_reply(refused).unwrap_err().contains("bad"));
        assert!(check_update_reply(b"nope").is_err());
        assert_eq!(claims_lookup("AB"), "$SYS.REQ.ACCOUNT.AB.CLAIMS.LOOKUP");
    }
}
