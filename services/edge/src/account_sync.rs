//! At a site: applying the hub's account JWT, and so its revocations, to the site's own server.
//!
//! A site's nats-server checks people's JWTs against the plantd account JWT it holds, so it
//! keeps authorizing while the hub is unreachable. Revocations live in that account JWT, and
//! the hub's identity pushes it only into the hub's server. So while the link is up this task
//! asks the hub's identity for the account JWT it last saw applied
//! (`plantd.identity.admin.account`) every `account_sync_ms`, and at once when the link comes
//! back, and pushes any new one into the site's server (`$SYS.REQ.CLAIMS.UPDATE`, as the site's
//! SYS user). The server verifies the operator's signature; it then disconnects and refuses the
//! people the hub revoked.

use std::time::Duration;

use plantd_schemas::identity::v1::{AccountJwtRequest, AccountJwtResponse};
use plantd_shared::{
    call,
    codec::Encoding,
    health::{Health, Status},
    shutdown::Shutdown,
    subjects, timestamp,
};

use crate::link::Link;

/// Fetches and applies the hub's account JWT until shutdown.
pub async fn run(
    client: async_nats::Client,
    sys: async_nats::Client,
    link: Link,
    every: Duration,
    health: Health,
    shutdown: Shutdown,
) {
    let mut applied: Option<String> = None;
    loop {
        if link.snapshot().up {
            match sync_once(&client, &sys, applied.as_deref()).await {
                Ok(new) => {
                    if let Some(jwt) = new {
                        tracing::info!(
                            "applied the hub's account jwt (revocations) to this site's server"
                        );
                        applied = Some(jwt);
                    }
                    link.update(|s| s.account_synced = Some(timestamp::now()));
                    health.set(
                        "account",
                        Status::Healthy,
                        "the hub's account jwt is applied",
                    );
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot apply the hub's account jwt");
                    health.set("account", Status::Degraded, err);
                }
            }
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = link.came_up.notified() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// One round: the new JWT if one was applied, `None` if the site already had it.
async fn sync_once(
    client: &async_nats::Client,
    sys: &async_nats::Client,
    applied: Option<&str>,
) -> Result<Option<String>, String> {
    let reply: AccountJwtResponse = call::request(
        client,
        &subjects::identity::admin("account"),
        &AccountJwtRequest {},
        Encoding::Protobuf,
        Duration::from_secs(5),
    )
    .await
    .map_err(|e| format!("cannot fetch the hub's account jwt: {e}"))?;
    if applied == Some(reply.jwt.as_str()) {
        return Ok(None);
    }
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        sys.request("$SYS.REQ.CLAIMS.UPDATE", reply.jwt.clone().into()),
    )
    .await
    .map_err(|_| "the site's server did not answer the claims update".to_string())?
    .map_err(|e| format!("claims update: {e}"))?;
    let value: serde_json::Value = serde_json::from_slice(&answer.payload)
        .map_err(|_| "the claims update reply is not JSON".to_string())?;
    if value["data"]["code"].as_i64() != Some(200) {
        return Err(format!(
            "the site's server refused the account jwt: {value}"
        ));
    }
    Ok(Some(reply.jwt))
}
