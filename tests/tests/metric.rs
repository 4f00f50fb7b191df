//! The metric module end to end: a real `plantd-metric` beside a real nats-server, read by
//! third-party tools only (tests/python/metric_check.py): nats-py hears its samples on the data
//! bus and asks `plantd.metric.get`; Prometheus' Python parser reads its `/metrics`. It is a
//! module, so it is in the registry with its health URL, and bad settings stop it with every
//! problem named.

mod foundation;

use std::time::Duration;

use foundation::{DEADLINE, spawn_service};
use plantd_shared::module::registry;
use plantd_tests::{NatsServer, eventually};

#[tokio::test]
async fn third_party_clients_read_samples_get_and_prometheus_text() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let metric = spawn_service(
        "plantd-metric",
        &server.url(),
        &[("interval_ms", "200"), ("log_ship", "false")],
    )?;
    let js = async_nats::jetstream::new(server.client().await);
    let js = &js;
    let entry = eventually(DEADLINE, || async move {
        let all = registry::list(js).await?;
        all.into_iter()
            .find(|d| d.name == "metric" && d.phase == "serving")
            .ok_or_else(|| anyhow::anyhow!("metric not serving yet"))
    })
    .await?;
    assert_eq!(entry.provides, ["metric@0.1.0"]);
    let metrics_url = entry.health_url.replace("/healthz", "/metrics");
    let url = server.url();
    plantd_tests::python::run_script(
        "metric_check.py",
        &["--server", &url, "--metrics", &metrics_url],
        &[],
        Duration::from_secs(60),
        "all metric checks passed",
        &[&metric],
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn bad_settings_are_all_named_before_it_starts() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let mut metric = spawn_service(
        "plantd-metric",
        &server.url(),
        &[
            ("interval_ms", "5"),
            ("scope", "a.b"),
            ("registry_ttl_s", "1"),
        ],
    )?;
    let status = metric.wait_with_deadline(DEADLINE).await;
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "{}",
        metric.stderr()
    );
    let stderr = metric.stderr();
    for setting in ["interval_ms", "scope", "registry_ttl_s"] {
        assert!(stderr.contains(setting), "names {setting}: {stderr}");
    }
    Ok(())
}
