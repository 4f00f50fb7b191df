//! Service discovery (ADR-32) end to end: every plantd service instance answers
//! `$SRV.PING|INFO|STATS` on all three subject forms (all services, by name, by name and id),
//! and every reply validates against the NATS maintainers' micro v1 JSON schemas copied in
//! `tests/schemas/micro-v1/`. Replies also say the right things: endpoints with their subjects
//! and queue groups, counters that move, a health URL that answers `/healthz`.
//!
//! The workspace has no JSON Schema crate, so the schemas are interpreted by the small
//! draft-07 subset in `foundation/micro_schema.rs`, which refuses any keyword it does not
//! implement (a schema update cannot be half-checked silently). The full validation with
//! Python's `jsonschema` runs in `tests/python/thirdparty_test.py`.

mod foundation;
#[path = "foundation/micro_schema.rs"]
mod micro_schema;

use std::time::Duration;

use foundation::{gather, gather_json, header, spawn_echo, spawn_state, wait_for_instances};
use micro_schema::assert_valid;
use plantd_tests::{NatsServer, eventually};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// GET `url` (plain `http://host:port/path`) and returns the status line and the body.
async fn http_get(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("not an http URL: {url}"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    stream
        .write_all(format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response)).await??;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no HTTP header end in {response:?}"))?;
    Ok((
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    ))
}

#[tokio::test]
async fn discovery_replies_match_the_micro_schemas() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let client = server.client().await;
    let data = tempfile::tempdir()?;
    let mut echo = spawn_echo(&server, &[])?;
    let mut state = spawn_state(&server, data.path())?;
    wait_for_instances(&client, "echo", 1, &mut [&mut echo]).await?;
    wait_for_instances(&client, "state", 1, &mut [&mut state]).await?;

    // `$SRV.<VERB>` reaches every service; each reply is valid and no error.
    for verb in ["PING", "INFO", "STATS"] {
        let subject = format!("$SRV.{verb}");
        let replies = gather(&client, &subject, "", 2, Duration::from_secs(2)).await?;
        assert_eq!(replies.len(), 2, "{subject}: one reply per service");
        let mut names = Vec::new();
        for reply in &replies {
            assert_eq!(header(reply, "Nats-Service-Error-Code"), None);
            let body: Value = serde_json::from_slice(&reply.payload)?;
            assert_valid(&verb.to_ascii_lowercase(), &body);
            names.push(body["name"].as_str().unwrap_or_default().to_owned());
        }
        names.sort();
        assert_eq!(names, ["echo", "state"], "{subject}");
    }

    // By name, and by name and id; every reply of an instance has the same identity.
    for service in ["echo", "state"] {
        let ping = gather_json(&client, &format!("$SRV.PING.{service}"), 1).await?;
        assert_eq!(ping.len(), 1, "{service}: {ping:?}");
        assert_valid("ping", &ping[0]);
        let id = ping[0]["id"].as_str().expect("id").to_owned();
        for verb in ["PING", "INFO", "STATS"] {
            for subject in [
                format!("$SRV.{verb}.{service}"),
                format!("$SRV.{verb}.{service}.{id}"),
            ] {
                let replies = gather_json(&client, &subject, 1).await?;
                assert_eq!(replies.len(), 1, "{subject}: {replies:?}");
                assert_valid(&verb.to_ascii_lowercase(), &replies[0]);
                assert_eq!(replies[0]["id"], id.as_str(), "{subject}");
                assert_eq!(replies[0]["name"], service, "{subject}");
                assert_eq!(replies[0]["version"], ping[0]["version"], "{subject}");
            }
        }
    }
    // Another id or an unknown service: nobody answers.
    let unknown = gather(
        &client,
        "$SRV.PING.echo.NOSUCHID",
        "",
        1,
        Duration::from_millis(300),
    );
    assert!(unknown.await?.is_empty());
    let result = client.request("$SRV.PING.nosuch", "".into()).await;
    assert!(
        result
            .as_ref()
            .is_err_and(|e| e.kind() == async_nats::RequestErrorKind::NoResponders),
        "{result:?}"
    );

    // INFO describes the endpoints as they are served.
    let info = &gather_json(&client, "$SRV.INFO.echo", 1).await?[0];
    assert!(!info["description"].as_str().unwrap_or_default().is_empty());
    let endpoints: Vec<(String, String, String)> = info["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (field("name"), field("subject"), field("queue_group"))
        })
        .collect();
    assert_eq!(
        endpoints,
        [
            ("echo".into(), "plantd.echo.echo".into(), "echo".into()),
            ("slow".into(), "plantd.echo.slow".into(), "echo".into()),
        ]
    );
    let info = &gather_json(&client, "$SRV.INFO.state", 1).await?[0];
    let subjects: Vec<&str> = info["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .filter_map(|e| e["subject"].as_str())
        .collect();
    for subject in [
        "plantd.state.get.>",
        "plantd.state.set.>",
        "plantd.state.scope.create.>",
    ] {
        assert!(subjects.contains(&subject), "{subject} in {subjects:?}");
    }

    // STATS counts what was served.
    let _ = client
        .request("plantd.echo.echo", r#"{"message":"count me"}"#.into())
        .await?;
    let counted = eventually(Duration::from_secs(5), || async {
        let stats = gather_json(&client, "$SRV.STATS.echo", 1).await?;
        let echo_stats = stats[0]["endpoints"]
            .as_array()
            .and_then(|es| es.iter().find(|e| e["name"] == "echo"))
            .cloned()
            .unwrap_or_default();
        anyhow::ensure!(echo_stats["num_requests"] == 1, "{echo_stats}");
        anyhow::Ok(echo_stats)
    })
    .await?;
    assert_eq!(counted["num_errors"], 0);
    assert_eq!(counted["last_error"], "");
    assert!(counted["processing_time"].as_u64() > Some(0), "{counted}");
    assert_eq!(
        counted["average_processing_time"],
        counted["processing_time"]
    );

    // The health URL a service announces in its metadata answers /healthz.
    for service in ["echo", "state"] {
        let ping = &gather_json(&client, &format!("$SRV.PING.{service}"), 1).await?[0];
        let url = ping["metadata"]["health_url"]
            .as_str()
            .unwrap_or_else(|| panic!("{service} announces no health_url: {ping}"));
        // Polled: a service may report `warn` while it is still settling (state's mirror).
        let health = eventually(Duration::from_secs(10), || async {
            let (status, body) = http_get(url).await?;
            let health: Value = serde_json::from_str(&body)?;
            anyhow::ensure!(
                status.contains(" 200") && health["status"] == "pass",
                "{service} {url}: {status} {body}"
            );
            anyhow::Ok(health)
        })
        .await?;
        assert!(health["checks"].is_object(), "{health}");
    }
    Ok(())
}
