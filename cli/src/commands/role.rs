//! `plant role assign|unassign USER ROLE [--scope S]`: granting and taking back roles.
//!
//! Admin operations (`plantd.identity.admin.role.*`). A change revokes the user's outstanding
//! JWTs, which carry the old permissions, so the user logs in again to get the new ones.

use std::io::Write;

use plantd_schemas::identity::v1::{RoleAssignRequest, RoleBinding, RoleUnassignRequest, User};

use super::user::{admin_call, print_users};
use crate::context::GlobalArgs;

/// Arguments of `plant role`.
#[derive(Debug, clap::Args)]
pub struct RoleArgs {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    /// Grant ROLE to USER (on --scope, default everywhere).
    Assign(Binding),
    /// Take ROLE on --scope back from USER.
    Unassign(Binding),
}

#[derive(Debug, clap::Args)]
struct Binding {
    /// Username.
    user: String,
    /// Role name (`admin`, `operator`, `viewer`, …).
    role: String,
    /// Scope pattern the role applies to, e.g. `site1.>`; default everywhere.
    #[arg(long, default_value = "")]
    scope: String,
}

impl Binding {
    fn binding(&self) -> RoleBinding {
        RoleBinding {
            role: self.role.clone(),
            scope: self.scope.clone(),
        }
    }
}

impl RoleArgs {
    /// Runs the verb and prints the user as it is now.
    pub async fn run(self, global: &GlobalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
        let user: User = match &self.verb {
            Verb::Assign(b) => {
                let request = RoleAssignRequest {
                    username: b.user.clone(),
                    binding: Some(b.binding()),
                };
                admin_call(global, "role.assign", &request).await?
            }
            Verb::Unassign(b) => {
                let request = RoleUnassignRequest {
                    username: b.user.clone(),
                    binding: Some(b.binding()),
                };
                admin_call(global, "role.unassign", &request).await?
            }
        };
        print_users(out, global.output, vec![user], true)
    }
}
