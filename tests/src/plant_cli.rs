//! Running the `plant` CLI once, the way a person at a shell would, for tests of its output.
//!
//! The command inherits no `PLANTD_*` setting from the environment the tests run in (a
//! developer's `PLANTD_SERVER` or `PLANTD_CREDS` must not point a test at their hub); a test
//! sets what it needs on the returned [`tokio::process::Command`]. Long-running `plant`
//! processes (`plant up`, `plant state watch`) use [`crate::ChildProcess`] instead.

use std::process::{Output, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::AsyncWriteExt as _;

use crate::bin_path;

/// `plant <args>` with every `PLANTD_*` variable removed from its environment.
pub fn plant_command<I, S>(args: I) -> tokio::process::Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = tokio::process::Command::new(bin_path("plant"));
    command.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PLANTD_") {
            command.env_remove(name);
        }
    }
    command
}

/// Runs `command` to its end: `stdin` (if any) is written and closed, stdout and stderr are
/// captured, and the process is killed if it is still running after `deadline`.
pub async fn run_to_end(
    mut command: tokio::process::Command,
    stdin: Option<&str>,
    deadline: Duration,
) -> anyhow::Result<Output> {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().context("cannot run plant")?;
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().context("stdin is piped")?;
        pipe.write_all(text.as_bytes())
            .await
            .context("cannot write plant's stdin")?;
    }
    tokio::time::timeout(deadline, child.wait_with_output())
        .await
        .with_context(|| format!("plant did not finish within {deadline:?}"))?
        .context("cannot read plant's output")
}
