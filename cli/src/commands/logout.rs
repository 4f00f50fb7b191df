//! `plant logout`: revoke the login session's JWT at the server and delete the session files.
//!
//! The identity service adds the session's key to the account's revocations and pushes the
//! account to the server, which closes every connection using that JWT (DESIGN.md, "Security
//! model"). The local files are deleted even when the revocation fails (a session file is a
//! secret; it should not outlive a logout), and the failure is reported: the JWT then stays
//! valid until it expires.
//!
//! Only a login session can be logged out: a creds file without a session sidecar (an admin's
//! or a service's) is refused, so a typo cannot revoke a service.

use std::io::Write;

use plantd_schemas::identity::v1::{LogoutRequest, LogoutResponse};
use plantd_shared::{call, codec::Encoding, creds::Creds, subjects};
use serde::Serialize;

use crate::context::{GlobalArgs, connect_as};
use crate::{identity_client, output};

/// Arguments of `plant logout`.
#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// Only delete the local session files; do not ask the server to revoke the JWT.
    #[arg(long)]
    local: bool,
}

/// `logout` output.
#[derive(Debug, Serialize)]
struct LogoutOutput {
    username: String,
    revoked: bool,
    removed: String,
}

impl LogoutArgs {
    /// Revokes and removes the session.
    pub async fn run(self, global: &GlobalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
        let auth = global.auth_allow_expired()?;
        let Some(path) = auth.creds.clone() else {
            anyhow::bail!(
                "not logged in (no session in {})",
                identity_client::config_dir()?.display()
            );
        };
        let Some(session) = auth.session.clone() else {
            anyhow::bail!(
                "{} is not a login session (it has no sidecar); logout only drops sessions \
                 made by `plant login`",
                path.display()
            );
        };
        let revoked = if self.local || session.expired() {
            Ok(false)
        } else {
            revoke(global, &auth, &path).await
        };
        identity_client::remove_session(&path)?;
        let revoked = match revoked {
            Ok(revoked) => revoked,
            Err(err) => {
                return Err(err.context(format!(
                    "removed the session files in {}, but the server did not revoke the JWT of \
                     {}: it stays valid until {}",
                    path.display(),
                    session.username,
                    session.expires.as_deref().unwrap_or("it expires")
                )));
            }
        };
        let output = LogoutOutput {
            username: session.username,
            revoked,
            removed: path.display().to_string(),
        };
        let row = vec![
            output.username.clone(),
            output.revoked.to_string(),
            output.removed.clone(),
        ];
        output::render(
            out,
            global.output,
            &output,
            &["USER", "REVOKED", "REMOVED"],
            vec![row],
        )?;
        Ok(())
    }
}

async fn revoke(
    global: &GlobalArgs,
    auth: &crate::context::Auth,
    path: &std::path::Path,
) -> anyhow::Result<bool> {
    let creds = Creds::read(path)?;
    let client = connect_as(&global.server, auth, "plant-logout").await?;
    let subject = subjects::identity::op("logout");
    let reply: LogoutResponse = call::request(
        &client,
        &subject,
        &LogoutRequest {
            proof: Some(identity_client::proof(&creds, &subject)?),
        },
        Encoding::Protobuf,
        global.timeout,
    )
    .await?;
    Ok(reply.revoked)
}
