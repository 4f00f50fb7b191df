//! `plant state` (being written).

use std::io::Write;

use crate::context::GlobalArgs;

/// Arguments of `plant state`.
#[derive(Debug, clap::Args)]
pub struct StateArgs {}

impl StateArgs {
    /// Runs the command.
    pub async fn run(self, _global: &GlobalArgs, _out: &mut dyn Write) -> anyhow::Result<()> {
        anyhow::bail!("not implemented yet")
    }
}
