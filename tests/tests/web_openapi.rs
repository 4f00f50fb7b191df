//! The web-api bridge's OpenAPI document, judged by tools that are not ours, against a real
//! `plant up` (nats-server, identity, state, echo and the bridge as child processes).
//!
//! `tests/python/openapi_check.py` downloads `/api/v1/openapi.json`, validates it with
//! `openapi-spec-validator` (PyPI; it must detect 3.1), then acts as a client driven from the
//! document: each call is looked up in `paths`, its URL built from the declared parameters, its
//! body checked against the declared `requestBody`, the bearer token sent where `security` says,
//! and every response (errors too) validated with `jsonschema` against the schema declared for
//! its status, strictly (an undeclared property is a failure). A missing Python module fails
//! the test; it is never skipped.

mod identity_common;

use std::path::Path;
use std::time::Duration;

use identity_common::Hub;
use plantd_tests::ChildProcess;

const OPERATOR: (&str, &str) = ("otto", "otto-password-1");

/// The script exits with this when a Python module is missing.
const MISSING_DEPENDENCY: i32 = 3;

/// How long the script may run.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_validates_and_drives_a_client() -> anyhow::Result<()> {
    let hub = Hub::start(&[]).await?;
    anyhow::ensure!(!hub.http_url.is_empty(), "no http line:\n{}", hub.banner);
    hub.create_user(OPERATOR.0, OPERATOR.1, &["operator@site1"])
        .await?;
    hub.admin(&["scope", "create", "site1"], None).await?;
    hub.admin(&["state", "set", "site1", "line.speed", "12"], None)
        .await?;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/openapi_check.py");
    let mut python = ChildProcess::spawn(
        "python3",
        [
            script.as_os_str(),
            "--url".as_ref(),
            hub.http_url.as_ref(),
            "--user".as_ref(),
            OPERATOR.0.as_ref(),
            "--password".as_ref(),
            OPERATOR.1.as_ref(),
            "--scope".as_ref(),
            "site1".as_ref(),
            "--key".as_ref(),
            "line.speed".as_ref(),
        ],
        [("PYTHONDONTWRITEBYTECODE", "1")],
    )
    .map_err(|err| {
        err.context("cannot run python3: install Python 3, then run `bash deploy/install-deps.sh`")
    })?;
    let status = python.wait_with_deadline(SCRIPT_DEADLINE).await;
    let (stdout, stderr) = (python.stdout(), python.stderr());
    println!("--- openapi_check.py stdout ---\n{stdout}");
    if !stderr.is_empty() {
        println!("--- stderr ---\n{stderr}");
    }
    let Some(status) = status else {
        python.kill()?;
        anyhow::bail!(
            "openapi_check.py did not finish within {} s",
            SCRIPT_DEADLINE.as_secs()
        );
    };
    assert_ne!(
        status.code(),
        Some(MISSING_DEPENDENCY),
        "a Python dependency is missing: run `bash deploy/install-deps.sh` ({stderr})"
    );
    assert!(
        status.success(),
        "openapi_check.py failed ({status}):\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("OPENAPI-OK"), "{stdout}");
    assert!(
        hub.stop().await?,
        "plant up did not stop cleanly after the check"
    );
    Ok(())
}
