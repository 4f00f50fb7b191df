//! `plant scope create|delete|list`: managing the scopes keys live in.
//!
//! Requests go to `plantd.state.scope.<op>.<scope>` and `plantd.state.scope.list` in protobuf
//! encoding, for the reason given in [`super::state`]. Creating is idempotent (the output says
//! whether the scope was new); deleting removes the scope's keys, each mirrored as a KV delete,
//! and prints how many there were. Neither touches sub-scopes: `site1` and `site1.line2` are
//! separate scopes.

use std::io::Write;

use plantd_schemas::state::v1::{
    ScopeCreateRequest, ScopeCreateResponse, ScopeDeleteRequest, ScopeDeleteResponse,
    ScopeListRequest, ScopeListResponse,
};
use plantd_shared::{call, codec::Encoding, subjects};
use serde::Serialize;

use super::state::{checked, rfc3339, text};
use crate::{context::GlobalArgs, output};

/// Arguments of `plant scope`.
#[derive(Debug, clap::Args)]
pub struct ScopeArgs {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    /// Create a scope (no error if it exists).
    Create {
        /// Scope, e.g. `site1.line2.oven`.
        scope: String,
    },
    /// Delete a scope and every key in it; prints how many keys were deleted.
    Delete {
        /// Scope.
        scope: String,
    },
    /// List every scope with its number of keys.
    List,
}

/// `create` output.
#[derive(Debug, Serialize)]
struct CreateOutput {
    scope: String,
    created: bool,
}

/// `delete` output.
#[derive(Debug, Serialize)]
struct DeleteOutput {
    scope: String,
    existed: bool,
    deleted_keys: u64,
}

/// One `list` row.
#[derive(Debug, Serialize)]
struct ScopeOutput {
    name: String,
    keys: u64,
    created: Option<String>,
}

impl ScopeArgs {
    /// Runs the verb and prints its result.
    pub async fn run(self, global: &GlobalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
        match self.verb {
            Verb::Create { scope } => {
                checked(&scope)?;
                let client = global.connect().await?;
                let subject = subjects::state::scope_op("create", &scope);
                let resp: ScopeCreateResponse = call::request(
                    &client,
                    &subject,
                    &ScopeCreateRequest {},
                    Encoding::Protobuf,
                    global.timeout,
                )
                .await?;
                if !resp.created {
                    eprintln!("note: scope {scope:?} already existed");
                }
                let output = CreateOutput {
                    scope: resp.scope,
                    created: resp.created,
                };
                let row = vec![output.scope.clone(), output.created.to_string()];
                output::render(
                    out,
                    global.output,
                    &output,
                    &["SCOPE", "CREATED"],
                    vec![row],
                )?;
            }
            Verb::Delete { scope } => {
                checked(&scope)?;
                let client = global.connect().await?;
                let subject = subjects::state::scope_op("delete", &scope);
                let resp: ScopeDeleteResponse = call::request(
                    &client,
                    &subject,
                    &ScopeDeleteRequest {},
                    Encoding::Protobuf,
                    global.timeout,
                )
                .await?;
                if !resp.existed {
                    eprintln!("note: scope {scope:?} did not exist");
                }
                let output = DeleteOutput {
                    scope: resp.scope,
                    existed: resp.existed,
                    deleted_keys: resp.deleted_keys,
                };
                let row = vec![
                    output.scope.clone(),
                    output.existed.to_string(),
                    output.deleted_keys.to_string(),
                ];
                output::render(
                    out,
                    global.output,
                    &output,
                    &["SCOPE", "EXISTED", "DELETED KEYS"],
                    vec![row],
                )?;
            }
            Verb::List => {
                let client = global.connect().await?;
                let resp: ScopeListResponse = call::request(
                    &client,
                    &subjects::state::scope_list(),
                    &ScopeListRequest {},
                    Encoding::Protobuf,
                    global.timeout,
                )
                .await?;
                let mut scopes: Vec<ScopeOutput> = resp
                    .scopes
                    .into_iter()
                    .map(|s| ScopeOutput {
                        name: s.name,
                        keys: s.key_count,
                        created: s.created.as_ref().map(rfc3339),
                    })
                    .collect();
                scopes.sort_by(|a, b| a.name.cmp(&b.name));
                let rows = scopes
                    .iter()
                    .map(|s| vec![s.name.clone(), s.keys.to_string(), text(&s.created)])
                    .collect();
                output::render(
                    out,
                    global.output,
                    &scopes,
                    &["NAME", "KEYS", "CREATED"],
                    rows,
                )?;
            }
        }
        Ok(())
    }
}
