//! `plant user create|get|update|delete|list`: managing people in the identity service.
//!
//! Admin operations (`plantd.identity.admin.user.*`), allowed to admins by subject permission
//! at the server; anyone else's request is refused by nats-server before it reaches the
//! service. Passwords are prompted for without echo (twice when set) or read from the first
//! line of stdin with `--password-stdin`; they are never arguments, which would leave them in
//! shell history and `ps`.

use std::io::Write;

use plantd_schemas::identity::v1::{
    RoleBinding, User, UserCreateRequest, UserDeleteRequest, UserDeleteResponse, UserGetRequest,
    UserListRequest, UserListResponse, UserUpdateRequest,
};
use plantd_shared::{call, codec::Encoding, subjects};
use serde::Serialize;

use crate::commands::state::rfc3339;
use crate::context::GlobalArgs;
use crate::identity_client::{self, Role, SecretSource, roles_label};
use crate::output::{self, OutputFormat};

/// Arguments of `plant user`.
#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    /// Create a user (prompts for the password).
    Create {
        /// Username.
        username: String,
        /// Organization.
        #[arg(long, default_value = "")]
        org: String,
        /// A role, `ROLE` or `ROLE@SCOPE` (e.g. `operator@site1.>`); repeatable.
        #[arg(long = "role", value_name = "ROLE[@SCOPE]")]
        roles: Vec<String>,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Show a user.
    Get {
        /// Username.
        username: String,
    },
    /// Change a user's password, org, or enabled state (revokes its sessions).
    Update {
        /// Username.
        username: String,
        /// Set a new password (prompted for, or read from stdin with --password-stdin).
        #[arg(long)]
        password: bool,
        /// Read the new password from the first line of stdin (implies --password).
        #[arg(long)]
        password_stdin: bool,
        /// Disable the user (revokes its sessions).
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Enable the user.
        #[arg(long)]
        enable: bool,
        /// Move the user to another organization.
        #[arg(long)]
        org: Option<String>,
    },
    /// Delete a user (revokes its sessions).
    Delete {
        /// Username.
        username: String,
    },
    /// List users.
    List,
}

/// One user, as printed.
#[derive(Debug, Serialize)]
pub(super) struct UserOutput {
    username: String,
    org: String,
    disabled: bool,
    roles: Vec<Role>,
    created: Option<String>,
}

impl From<User> for UserOutput {
    fn from(u: User) -> UserOutput {
        UserOutput {
            username: u.username,
            org: u.org,
            disabled: u.disabled,
            roles: u.roles.iter().map(Role::from).collect(),
            created: u.created.as_ref().map(rfc3339),
        }
    }
}

/// `delete` output.
#[derive(Debug, Serialize)]
struct DeleteOutput {
    username: String,
    existed: bool,
}

impl UserArgs {
    /// Runs the verb and prints its result.
    pub async fn run(self, global: &GlobalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
        match self.verb {
            Verb::Create {
                username,
                org,
                roles,
                password_stdin,
            } => {
                let roles = roles
                    .iter()
                    .map(|r| parse_binding(r))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let password = password(password_stdin).await?;
                let user: User = admin_call(
                    global,
                    "user.create",
                    &UserCreateRequest {
                        username,
                        password,
                        org,
                        roles,
                    },
                )
                .await?;
                print_users(out, global.output, vec![user], true)
            }
            Verb::Get { username } => {
                let user: User =
                    admin_call(global, "user.get", &UserGetRequest { username }).await?;
                print_users(out, global.output, vec![user], true)
            }
            Verb::Update {
                username,
                password: set_password,
                password_stdin,
                disable,
                enable,
                org,
            } => {
                let password = if set_password || password_stdin {
                    Some(password(password_stdin).await?)
                } else {
                    None
                };
                let disabled = (disable || enable).then_some(disable);
                anyhow::ensure!(
                    password.is_some() || disabled.is_some() || org.is_some(),
                    "nothing to update: pass --password, --disable, --enable or --org"
                );
                let user: User = admin_call(
                    global,
                    "user.update",
                    &UserUpdateRequest {
                        username,
                        password,
                        disabled,
                        org,
                    },
                )
                .await?;
                print_users(out, global.output, vec![user], true)
            }
            Verb::Delete { username } => {
                let reply: UserDeleteResponse = admin_call(
                    global,
                    "user.delete",
                    &UserDeleteRequest {
                        username: username.clone(),
                    },
                )
                .await?;
                if !reply.existed {
                    eprintln!("note: user {username:?} did not exist");
                }
                let output = DeleteOutput {
                    username,
                    existed: reply.existed,
                };
                let row = vec![output.username.clone(), output.existed.to_string()];
                output::render(out, global.output, &output, &["USER", "EXISTED"], vec![row])?;
                Ok(())
            }
            Verb::List => {
                let reply: UserListResponse =
                    admin_call(global, "user.list", &UserListRequest {}).await?;
                let mut users = reply.users;
                users.sort_by(|a, b| a.username.cmp(&b.username));
                print_users(out, global.output, users, false)
            }
        }
    }
}

/// Sends an admin request (`plantd.identity.admin.<op>`) and decodes the reply.
pub(super) async fn admin_call<Req, Resp>(
    global: &GlobalArgs,
    op: &str,
    request: &Req,
) -> anyhow::Result<Resp>
where
    Req: plantd_shared::codec::WireMessage,
    Resp: plantd_shared::codec::WireMessage,
{
    let client = global.connect().await?;
    let reply = call::request(
        &client,
        &subjects::identity::admin(op),
        request,
        Encoding::Protobuf,
        global.timeout,
    )
    .await?;
    Ok(reply)
}

/// Prints users: a table, or JSON (one object when `single`, else an array).
pub(super) fn print_users(
    out: &mut dyn Write,
    format: OutputFormat,
    users: Vec<User>,
    single: bool,
) -> anyhow::Result<()> {
    let users: Vec<UserOutput> = users.into_iter().map(UserOutput::from).collect();
    let rows = users
        .iter()
        .map(|u| {
            vec![
                u.username.clone(),
                if u.org.is_empty() {
                    "-".into()
                } else {
                    u.org.clone()
                },
                if u.disabled { "disabled" } else { "enabled" }.to_string(),
                roles_label(&u.roles),
                u.created.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let headers = ["USER", "ORG", "STATE", "ROLES", "CREATED"];
    match (single, users.first()) {
        (true, Some(user)) if format == OutputFormat::Json => {
            output::render(out, format, user, &headers, rows)?
        }
        _ => output::render(out, format, &users, &headers, rows)?,
    }
    Ok(())
}

/// `ROLE` or `ROLE@SCOPE`.
pub(super) fn parse_binding(text: &str) -> anyhow::Result<RoleBinding> {
    let (role, scope) = text.split_once('@').unwrap_or((text, ""));
    anyhow::ensure!(
        !role.is_empty(),
        "role {text:?} has no name (use ROLE or ROLE@SCOPE)"
    );
    Ok(RoleBinding {
        role: role.to_string(),
        scope: scope.to_string(),
    })
}

async fn password(from_stdin: bool) -> anyhow::Result<String> {
    let source = if from_stdin {
        SecretSource::Stdin
    } else {
        SecretSource::Prompt
    };
    tokio::task::spawn_blocking(move || identity_client::read_secret(source, "password: ", true))
        .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_parse() {
        let b = parse_binding("operator@site1.>").unwrap();
        assert_eq!((b.role.as_str(), b.scope.as_str()), ("operator", "site1.>"));
        let b = parse_binding("admin").unwrap();
        assert_eq!((b.role.as_str(), b.scope.as_str()), ("admin", ""));
        assert!(parse_binding("@site1").is_err());
    }
}
