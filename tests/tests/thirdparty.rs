//! plantd interoperates with a NATS client that is not ours. Each test starts a real
//! nats-server and the services a script needs, then runs the script, which uses only nats-py
//! (and `jsonschema`); the checks and their output are the script's.
//!
//! * `tests/python/thirdparty_test.py`, against echo and state, must find discovery replies
//!   valid against the micro v1 schemas, echo answering plain JSON requests (and bad ones with
//!   the ADR-32 error reply), and a state `set` visible in a watch of the `plantd-state` KV
//!   bucket made with nats-py's own KV API.
//! * `tests/python/bus_test.py`, against the bus service, publishes on the `data` bus with
//!   nats-py's JetStream publish, replays it through `plantd.buses.replay.data.site1` with a
//!   plain JSON request (all of it, then from a sequence), reading the push deliveries itself,
//!   and gets bad replay requests refused with the field named.

mod foundation;

use std::time::Duration;

use foundation::{spawn_echo, spawn_service, spawn_state, wait_for_instances};
use plantd_tests::{ChildProcess, NatsServer};

/// How long a script may run.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(60);

/// Runs `tests/python/<script> --server <url>` and asserts it passed (exit 0 and `passed` in
/// its stdout); `services` are the processes under test, whose stderr is shown on a failure.
async fn run_script(
    script: &str,
    server: &NatsServer,
    passed: &str,
    services: &[&ChildProcess],
) -> anyhow::Result<()> {
    let url = server.url();
    plantd_tests::python::run_script(
        script,
        &["--server", &url],
        &[],
        SCRIPT_DEADLINE,
        passed,
        services,
    )
    .await
    .map(drop)
}

#[tokio::test]
async fn nats_py_client_sees_the_wire_contract() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let client = server.client().await;
    let data = tempfile::tempdir()?;
    let mut echo = spawn_echo(&server, &[])?;
    let mut state = spawn_state(&server, data.path())?;
    wait_for_instances(&client, "echo", 1, &mut [&mut echo]).await?;
    wait_for_instances(&client, "state", 1, &mut [&mut state]).await?;
    run_script(
        "thirdparty_test.py",
        &server,
        "all third-party checks passed",
        &[&state],
    )
    .await
}

#[tokio::test]
async fn nats_py_client_publishes_on_a_bus_and_replays_it() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let client = server.client().await;
    let mut buses = spawn_service("plantd-bus", &server.url(), &[])?;
    // The service answers PING only once it has created the capture streams.
    wait_for_instances(&client, "buses", 1, &mut [&mut buses]).await?;
    run_script("bus_test.py", &server, "all bus checks passed", &[&buses]).await
}
