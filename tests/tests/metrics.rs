//! `/metrics` of every service, scraped and parsed by Prometheus' own Python parser
//! (tests/python/metrics_scrape.py): a real echo and a real state service over a real
//! nats-server, after requests that succeed and fail. The series every service has (requests,
//! errors by code, handling-time histograms, in-flight, NATS client counters) and the state
//! service's own (commit groups, write queue, mirror lag) are there, labelled by service.

mod foundation;

use std::time::Duration;

use foundation::{DEADLINE, gather_json, plant, spawn_echo, spawn_state, wait_for_instances};
use plantd_tests::NatsServer;

async fn metrics_url(client: &async_nats::Client, service: &str) -> anyhow::Result<String> {
    let infos = gather_json(client, &format!("$SRV.INFO.{service}"), 1).await?;
    let url = infos[0]["metadata"]["health_url"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("{service} has no health_url: {}", infos[0]))?;
    Ok(url.replace("/healthz", "/metrics"))
}

#[tokio::test]
async fn every_service_serves_prometheus_metrics() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let client = server.client().await;
    let data = tempfile::tempdir()?;
    let mut echo = spawn_echo(&server, &[("log_ship", "false")])?;
    let mut state = spawn_state(&server, data.path())?;
    wait_for_instances(&client, "echo", 1, &mut [&mut echo]).await?;
    wait_for_instances(&client, "state", 1, &mut [&mut state]).await?;
    let url = server.url();
    for args in [
        vec!["scope", "create", "site1"],
        vec!["state", "set", "site1", "temp", "21"],
        vec!["state", "get", "site1", "temp"],
        vec!["req", "plantd.echo.echo", r#"{"message":"hi"}"#],
    ] {
        let run = plant(&[&["--server", url.as_str()], args.as_slice()].concat()).await?;
        assert!(run.ok, "{args:?}: {}", run.stderr);
    }
    let missing = plant(&["--server", &url, "state", "get", "site1", "nope"]).await?;
    assert!(!missing.ok, "a missing key is a 404");
    let too_long = format!(r#"{{"duration_ms":{}}}"#, u32::MAX);
    let bad = plant(&["--server", &url, "req", "plantd.echo.slow", &too_long]).await?;
    assert!(!bad.ok, "an over-long sleep is a 400");

    let checks: [(&str, Vec<&str>); 2] = [
        ("echo", vec!["--errors", "slow:400"]),
        (
            "state",
            vec![
                "--family",
                "plantd_state_commit_groups:counter",
                "--family",
                "plantd_state_commit_ops:counter",
                "--family",
                "plantd_state_write_queue:gauge",
                "--family",
                "plantd_state_mirror_lag:gauge",
                "--errors",
                "get:404",
            ],
        ),
    ];
    for (service, extra) in checks {
        let metrics = metrics_url(&client, service).await?;
        let mut args = vec!["--url", metrics.as_str(), "--service", service];
        args.extend(extra);
        plantd_tests::python::run_script(
            "metrics_scrape.py",
            &args,
            &[],
            Duration::from_secs(30).min(DEADLINE),
            "metrics scrape passed",
            &[&echo, &state],
        )
        .await?;
    }
    Ok(())
}
