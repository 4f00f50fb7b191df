//! `plant login [USERNAME] [--password-stdin]`: a short-lived NATS identity for a person.
//!
//! The flow keeps every secret where it belongs (DESIGN.md, "Security model"):
//!
//! 1. connect with the *login-only* creds (`<data-dir>/auth/creds/login.creds`, or
//!    `--login-creds`), which may publish `plantd.identity.login` and hear `_INBOX_login.>`
//!    and nothing else;
//! 2. make a fresh user nkey and a curve key here; send the username, the password and the two
//!    public keys;
//! 3. the identity service checks the password, signs a JWT for *that* public key with the
//!    user's permissions, and seals the grant to the curve key, so another client of the
//!    shared login creds that could see the reply cannot read or use it;
//! 4. open the grant, check the JWT is bound to our key, and write a standard creds file plus
//!    its sidecar (0600; see [`crate::identity_client`]).
//!
//! The seed never leaves this process except into the creds file; the password only travels
//! in the request. Neither is printed.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use plantd_identity::bootstrap::CredsFiles;
use plantd_identity::permissions::LOGIN_INBOX_PREFIX;

use serde::Serialize;

use crate::commands::state::rfc3339;
use crate::context::{Auth, GlobalArgs, connect_as};
use crate::identity_client::{self, Role, SecretSource, Session, roles_label};
use crate::output;

/// Arguments of `plant login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Who logs in (prompted for when omitted).
    username: Option<String>,
    /// Read the password from the first line of stdin instead of prompting.
    #[arg(long)]
    password_stdin: bool,
    /// The login-only creds; default `<data-dir>/auth/creds/login.creds`.
    #[arg(long, value_name = "FILE")]
    login_creds: Option<PathBuf>,
    /// The hub's data dir, where the default login creds are.
    #[arg(long, env = "PLANTD_DATA_DIR", default_value = ".plantd")]
    data_dir: PathBuf,
}

/// `login` output.
#[derive(Debug, Serialize)]
struct LoginOutput {
    username: String,
    roles: Vec<Role>,
    expires: Option<String>,
    inbox_prefix: String,
    creds: String,
}

impl LoginArgs {
    /// Logs in and writes the session.
    pub async fn run(self, global: &GlobalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
        let username = match self.username {
            Some(name) => name,
            None if self.password_stdin => {
                anyhow::bail!("give the USERNAME when the password comes from stdin")
            }
            None => {
                tokio::task::spawn_blocking(|| identity_client::prompt_visible("username: "))
                    .await??
            }
        };
        anyhow::ensure!(!username.is_empty(), "the username is empty");
        let source = if self.password_stdin {
            SecretSource::Stdin
        } else {
            SecretSource::Prompt
        };
        let password = tokio::task::spawn_blocking(move || {
            identity_client::read_secret(source, "password: ", false)
        })
        .await??;

        let login_creds = self
            .login_creds
            .unwrap_or_else(|| CredsFiles::in_dir(&super::admin::auth_dir(&self.data_dir)).login);
        anyhow::ensure!(
            login_creds.exists(),
            "no login creds at {}: pass --login-creds FILE (the hub's \
             <data-dir>/auth/creds/login.creds) or --data-dir",
            login_creds.display()
        );
        // The login user may hear only `_INBOX_login.>`.
        let login_auth = Auth {
            creds: Some(login_creds),
            inbox_prefix: Some(LOGIN_INBOX_PREFIX.to_string()),
            session: None,
        };
        let client = connect_as(&global.server, &login_auth, "plant-login").await?;

        let logged_in =
            plantd_identity::client::login(&client, &username, &password, global.timeout)
                .await
                .with_context(|| format!("login as {username:?} failed"))?;
        let grant = &logged_in.grant;

        let roles: Vec<Role> = grant.roles.iter().map(Role::from).collect();
        let expires_unix = logged_in.expires_unix;
        let expires = grant.expires.as_ref().map(rfc3339).or_else(|| {
            expires_unix.map(|s| {
                rfc3339(&plantd_schemas::wkt::Timestamp {
                    seconds: s,
                    nanos: 0,
                })
            })
        });
        let session = Session {
            username: grant.username.clone(),
            inbox_prefix: grant.inbox_prefix.clone(),
            public_key: logged_in.key.public_key(),
            expires_unix,
            expires: expires.clone(),
            roles: roles.clone(),
            server: global.server.clone(),
        };
        let path = identity_client::session_creds_path()?;
        let seed = logged_in.seed()?;
        identity_client::write_session(&path, &grant.jwt, &seed, &session)?;

        let output = LoginOutput {
            username: session.username,
            roles,
            expires,
            inbox_prefix: session.inbox_prefix,
            creds: path.display().to_string(),
        };
        let row = vec![
            output.username.clone(),
            roles_label(&output.roles),
            output.expires.clone().unwrap_or_else(|| "never".into()),
            output.inbox_prefix.clone(),
            output.creds.clone(),
        ];
        output::render(
            out,
            global.output,
            &output,
            &["USER", "ROLES", "EXPIRES", "INBOX PREFIX", "CREDS"],
            vec![row],
        )?;
        Ok(())
    }
}
