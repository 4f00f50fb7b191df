//! `plant whoami`: who the server thinks this session is.
//!
//! Asks the identity service (`plantd.identity.whoami`) with a user proof made from the creds
//! in use (`--creds`, else the login session), so the answer reflects the server's current view
//! (roles changed since login, a revoked session) rather than the local sidecar.

use std::io::Write;

use plantd_schemas::identity::v1::{WhoamiRequest, WhoamiResponse};
use plantd_shared::{call, codec::Encoding, creds::Creds, subjects};
use serde::Serialize;

use crate::commands::state::rfc3339;
use crate::context::{GlobalArgs, connect_as};
use crate::identity_client::{self, Role, roles_label};
use crate::output;

/// Arguments of `plant whoami`.
#[derive(Debug, clap::Args)]
pub struct WhoamiArgs {}

/// `whoami` output.
#[derive(Debug, Serialize)]
struct WhoamiOutput {
    username: String,
    org: String,
    roles: Vec<Role>,
    public_key: String,
    expires: Option<String>,
    inbox_prefix: String,
}

impl WhoamiArgs {
    /// Asks and prints.
    pub async fn run(self, global: &GlobalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
        let auth = global.auth()?;
        let Some(path) = auth.creds.clone() else {
            anyhow::bail!("not logged in: run `plant login` (or pass --creds FILE)");
        };
        let creds = Creds::read(&path)?;
        let client = connect_as(&global.server, &auth, "plant-whoami").await?;
        let subject = subjects::identity::op("whoami");
        let reply: WhoamiResponse = call::request(
            &client,
            &subject,
            &WhoamiRequest {
                proof: Some(identity_client::proof(&creds, &subject)?),
            },
            Encoding::Protobuf,
            global.timeout,
        )
        .await?;
        let output = WhoamiOutput {
            username: reply.username,
            org: reply.org,
            roles: reply.roles.iter().map(Role::from).collect(),
            public_key: reply.public_key,
            expires: reply.expires.as_ref().map(rfc3339),
            inbox_prefix: reply.inbox_prefix,
        };
        let row = vec![
            output.username.clone(),
            dash(&output.org),
            roles_label(&output.roles),
            output.expires.clone().unwrap_or_else(|| "never".into()),
            dash(&output.inbox_prefix),
            output.public_key.clone(),
        ];
        output::render(
            out,
            global.output,
            &output,
            &[
                "USER",
                "ORG",
                "ROLES",
                "EXPIRES",
                "INBOX PREFIX",
                "PUBLIC KEY",
            ],
            vec![row],
        )?;
        Ok(())
    }
}

fn dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text.to_string()
    }
}
