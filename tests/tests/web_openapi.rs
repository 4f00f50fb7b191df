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

use std::time::Duration;

use identity_common::Hub;

const OPERATOR: (&str, &str) = ("otto", "otto-password-1");

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

    let stdout = plantd_tests::python::run_script(
        "openapi_check.py",
        &[
            "--url",
            &hub.http_url,
            "--user",
            OPERATOR.0,
            "--password",
            OPERATOR.1,
            "--scope",
            "site1",
            "--key",
            "line.speed",
        ],
        &[],
        SCRIPT_DEADLINE,
        "OPENAPI-OK",
        &[],
    )
    .await?;
    assert!(stdout.contains("OPENAPI-OK"), "{stdout}");
    assert!(
        hub.stop().await?,
        "plant up did not stop cleanly after the check"
    );
    Ok(())
}
