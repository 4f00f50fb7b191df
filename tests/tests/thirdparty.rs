//! plantd interoperates with a NATS client that is not ours: `tests/python/thirdparty_test.py`
//! uses only nats-py (and `jsonschema`) against a real nats-server running echo and state, and
//! must find discovery replies valid against the micro v1 schemas, echo answering plain JSON
//! requests (and bad ones with the ADR-32 error reply), and a state `set` visible in a watch of
//! the `plantd-state` KV bucket made with nats-py's own KV API. This test starts the processes
//! and runs the script; the checks and their output are the script's.

mod foundation;

use std::path::Path;
use std::time::Duration;

use foundation::{spawn_echo, spawn_state, wait_for_instances};
use plantd_tests::{ChildProcess, NatsServer};

/// The script exits with this when a Python module (nats-py, jsonschema) is missing.
const MISSING_DEPENDENCY: i32 = 3;

#[tokio::test]
async fn nats_py_client_sees_the_wire_contract() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let client = server.client().await;
    let data = tempfile::tempdir()?;
    let mut echo = spawn_echo(&server, &[])?;
    let mut state = spawn_state(&server, data.path())?;
    wait_for_instances(&client, "echo", 1, &mut [&mut echo]).await?;
    wait_for_instances(&client, "state", 1, &mut [&mut state]).await?;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/thirdparty_test.py");
    let shown = script.display().to_string();
    let mut python = ChildProcess::spawn(
        "python3",
        [
            script.into_os_string(),
            "--server".into(),
            server.url().into(),
        ],
        [("PYTHONDONTWRITEBYTECODE", "1")],
    )
    .map_err(|err| {
        err.context("cannot run python3: install Python 3, then run `bash deploy/install-deps.sh`")
    })?;
    let status = python.wait_with_deadline(Duration::from_secs(60)).await;
    let (stdout, stderr) = (python.stdout(), python.stderr());
    println!("--- {shown} stdout ---\n{stdout}");
    if !stderr.is_empty() {
        println!("--- stderr ---\n{stderr}");
    }
    let status = status.ok_or_else(|| anyhow::anyhow!("the script did not finish within 60 s"))?;
    assert!(
        status.code() != Some(MISSING_DEPENDENCY) && !stderr.contains("No module named"),
        "a Python dependency is missing: run `bash deploy/install-deps.sh` ({stderr})"
    );
    assert!(
        status.success(),
        "third-party checks failed ({status}):\n{stdout}\n{stderr}\n--- state stderr ---\n{}",
        state.stderr()
    );
    assert!(stdout.contains("all third-party checks passed"), "{stdout}");
    Ok(())
}
