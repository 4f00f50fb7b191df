//! `plant bench` (being written).

use std::io::Write;

use crate::context::GlobalArgs;

/// Arguments of `plant bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

impl BenchArgs {
    /// Runs the command.
    pub async fn run(self, _global: &GlobalArgs, _out: &mut dyn Write) -> anyhow::Result<()> {
        anyhow::bail!("not implemented yet")
    }
}
