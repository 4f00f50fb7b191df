//! `plant scope` (being written).

use std::io::Write;

use crate::context::GlobalArgs;

/// Arguments of `plant scope`.
#[derive(Debug, clap::Args)]
pub struct ScopeArgs {}

impl ScopeArgs {
    /// Runs the command.
    pub async fn run(self, _global: &GlobalArgs, _out: &mut dyn Write) -> anyhow::Result<()> {
        anyhow::bail!("not implemented yet")
    }
}
