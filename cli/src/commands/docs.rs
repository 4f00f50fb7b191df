//! `plant completions SHELL` and `plant man --dir DIR`: shell completions and man pages,
//! generated from the same clap definitions that parse the command line, so they can never
//! disagree with it. `deploy/release.sh` puts both into the release archive.

use std::{io::Write, path::PathBuf};

use anyhow::Context as _;
use clap::CommandFactory as _;

use super::Cli;

/// Arguments of `plant completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    shell: clap_complete::Shell,
}

impl CompletionsArgs {
    /// Writes the completion script to `out`.
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<()> {
        let mut command = Cli::command();
        // Into memory first: clap_complete panics on a write error (a closed pipe).
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut command, "plant", &mut script);
        out.write_all(&script)?;
        Ok(())
    }
}

/// Arguments of `plant man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Where to write `plant.1` and one `plant-<command>.1` per command.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
}

impl ManArgs {
    /// Writes the pages and lists them.
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let command = Cli::command();
        let mut written = Vec::new();
        write_page(&self.dir, "plant", command.clone(), &mut written)?;
        for sub in command.get_subcommands() {
            let name = format!("plant-{}", sub.get_name());
            let sub = sub
                .clone()
                .display_name(name.clone())
                .bin_name(format!("plant {}", sub.get_name()))
                .version(env!("CARGO_PKG_VERSION"));
            write_page(&self.dir, &name, sub, &mut written)?;
        }
        for path in written {
            writeln!(out, "{}", path.display())?;
        }
        Ok(())
    }
}

fn write_page(
    dir: &std::path::Path,
    name: &str,
    command: clap::Command,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .title(name.to_uppercase())
        .render(&mut page)?;
    std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
    written.push(path);
    Ok(())
}
