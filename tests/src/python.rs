//! Running the third-party client scripts of `tests/python/` (nats-py, jsonschema,
//! openapi-spec-validator), the one way every test that drives a script does it.
//!
//! Each script prints `ok …` per check and a final marker, exits non-zero on a failed check
//! and [`MISSING_DEPENDENCY`] when a Python module is not installed, which is a failure here
//! (never a skip): the install step (`deploy/install-deps.sh`) provides them.

use std::path::Path;
use std::time::Duration;

use crate::ChildProcess;

/// The exit code of a script that misses a Python module (`checks.missing_module`).
pub const MISSING_DEPENDENCY: i32 = 3;

/// Runs `tests/python/<script>` with `args` and `envs`, printing its output, and asserts that
/// it finished within `deadline`, had its modules, exited 0 and printed `passed`. On a failure
/// the stderr of `related` (the processes under test) is shown too. Returns its stdout.
pub async fn run_script(
    script: &str,
    args: &[&str],
    envs: &[(&str, &str)],
    deadline: Duration,
    passed: &str,
    related: &[&ChildProcess],
) -> anyhow::Result<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(script);
    let shown = path.display().to_string();
    let mut all_args = vec![shown.as_str()];
    all_args.extend_from_slice(args);
    let mut all_envs = vec![("PYTHONDONTWRITEBYTECODE", "1")];
    all_envs.extend_from_slice(envs);
    let mut python = ChildProcess::spawn("python3", all_args, all_envs).map_err(|err| {
        err.context("cannot run python3: install Python 3, then run `bash deploy/install-deps.sh`")
    })?;
    let status = python.wait_with_deadline(deadline).await;
    let (stdout, stderr) = (python.stdout(), python.stderr());
    println!("--- {shown} stdout ---\n{stdout}");
    if !stderr.is_empty() {
        println!("--- stderr ---\n{stderr}");
    }
    let Some(status) = status else {
        python.kill()?;
        anyhow::bail!("{shown} did not finish within {} s", deadline.as_secs());
    };
    assert!(
        status.code() != Some(MISSING_DEPENDENCY) && !stderr.contains("No module named"),
        "a Python dependency is missing: run `bash deploy/install-deps.sh` ({stderr})"
    );
    let related: Vec<String> = related.iter().map(|p| p.stderr()).collect();
    assert!(
        status.success(),
        "{shown} failed ({status}):\n{stdout}\n{stderr}\n--- stderr of the processes under test ---\n{}",
        related.join("\n---\n")
    );
    assert!(
        stdout.contains(passed),
        "{shown} did not print {passed:?}:\n{stdout}"
    );
    Ok(stdout)
}
