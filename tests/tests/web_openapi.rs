//! The web-api bridge's OpenAPI document, checked by tools that are not ours, against a real
//! `plant up`: `tests/python/openapi_check.py` validates the document with
//! `openapi-spec-validator` (it must be OpenAPI 3.1 and valid), then acts as a client built
//! from the document at run time (login, whoami, get/set/list of keys, the services list, and
//! error replies), validating every request body it sends and every response body it gets
//! against the document's schemas with `jsonschema`. The checks and their output are the
//! script's; this test starts the hub, sets up a person and a key, and runs it.

mod identity_common;

use std::path::Path;
use std::time::Duration;

use identity_common::Hub;

/// The script exits with this when a Python module (openapi-spec-validator, jsonschema) is
/// missing.
const MISSING_DEPENDENCY: i32 = 3;

/// How long the script may run.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(60);

const OPERATOR: (&str, &str) = ("olga", "olga-password-1");
const SCOPE: &str = "site1";
const KEY: &str = "k";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_validates_and_drives_a_client() -> anyhow::Result<()> {
    let hub = Hub::start(&[]).await?;
    anyhow::ensure!(!hub.http_url.is_empty(), "no http line:\n{}", hub.banner);
    hub.create_user(OPERATOR.0, OPERATOR.1, &["operator@site1"])
        .await?;
    hub.admin(&["scope", "create", SCOPE], None).await?;
    hub.admin(&["state", "set", SCOPE, KEY, "v"], None).await?;

    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join("openapi_check.py");
    let shown = script.display().to_string();
    let mut command = tokio::process::Command::new("python3");
    command
        .arg(&script)
        .args(["--url", &hub.http_url])
        .args(["--user", OPERATOR.0, "--password", OPERATOR.1])
        .args(["--scope", SCOPE, "--key", KEY])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(SCRIPT_DEADLINE, command.output())
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "{shown} did not finish within {} s",
                SCRIPT_DEADLINE.as_secs()
            )
        })?
        .map_err(|err| {
            anyhow::anyhow!(
                "cannot run python3 ({err}): install Python 3, then run `bash deploy/install-deps.sh`"
            )
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("--- {shown} stdout ---\n{stdout}");
    if !stderr.is_empty() {
        println!("--- stderr ---\n{stderr}");
    }
    assert!(
        output.status.code() != Some(MISSING_DEPENDENCY) && !stderr.contains("No module named"),
        "a Python dependency (openapi-spec-validator or jsonschema) is missing: \
         run `bash deploy/install-deps.sh` ({stderr})"
    );
    assert!(
        output.status.success(),
        "{shown} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("OPENAPI-OK"), "{stdout}");
    assert!(hub.stop().await?, "plant up did not stop cleanly");
    Ok(())
}
