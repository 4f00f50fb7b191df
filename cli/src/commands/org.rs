//! `plant org create|get|list`: organizations users belong to.
//!
//! Admin operations (`plantd.identity.admin.org.*`), refused at the server for non-admins.

use std::io::Write;

use plantd_schemas::identity::v1::{
    Org, OrgCreateRequest, OrgGetRequest, OrgListRequest, OrgListResponse,
};
use serde::Serialize;

use super::user::admin_call;
use crate::commands::state::rfc3339;
use crate::context::GlobalArgs;
use crate::output::{self, OutputFormat};

/// Arguments of `plant org`.
#[derive(Debug, clap::Args)]
pub struct OrgArgs {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    /// Create an organization.
    Create {
        /// Name.
        name: String,
    },
    /// Show an organization.
    Get {
        /// Name.
        name: String,
    },
    /// List organizations.
    List,
}

/// One organization, as printed.
#[derive(Debug, Serialize)]
struct OrgOutput {
    name: String,
    created: Option<String>,
}

impl OrgArgs {
    /// Runs the verb and prints its result.
    pub async fn run(self, global: &GlobalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
        let orgs: Vec<Org> = match self.verb {
            Verb::Create { name } => {
                vec![admin_call(global, "org.create", &OrgCreateRequest { name }).await?]
            }
            Verb::Get { name } => {
                vec![admin_call(global, "org.get", &OrgGetRequest { name }).await?]
            }
            Verb::List => {
                let reply: OrgListResponse =
                    admin_call(global, "org.list", &OrgListRequest {}).await?;
                let mut orgs = reply.orgs;
                orgs.sort_by(|a, b| a.name.cmp(&b.name));
                return print(out, global.output, orgs, false);
            }
        };
        print(out, global.output, orgs, true)
    }
}

fn print(
    out: &mut dyn Write,
    format: OutputFormat,
    orgs: Vec<Org>,
    single: bool,
) -> anyhow::Result<()> {
    let orgs: Vec<OrgOutput> = orgs
        .into_iter()
        .map(|o| OrgOutput {
            name: o.name,
            created: o.created.as_ref().map(rfc3339),
        })
        .collect();
    let rows = orgs
        .iter()
        .map(|o| {
            vec![
                o.name.clone(),
                o.created.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let headers = ["NAME", "CREATED"];
    match (single, orgs.first()) {
        (true, Some(org)) if format == OutputFormat::Json => {
            output::render(out, format, org, &headers, rows)?
        }
        _ => output::render(out, format, &orgs, &headers, rows)?,
    }
    Ok(())
}
