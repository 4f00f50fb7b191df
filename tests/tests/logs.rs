//! Logs end to end against a real nats-server and the real `plantd-logger`: every running
//! service's records reach `plant logs -f` within a second; a query by service, level, time and
//! text returns exactly the matching records and pages without loss; a process keeps logging
//! without waiting while NATS is down, and its backlog arrives afterwards with the drops
//! counted.

mod foundation;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use foundation::{spawn_service, wait_for_instances};
use plantd_schemas::logger::v1::{LogRecord, QueryRequest, QueryResponse};
use plantd_shared::{
    call::{self, CallError},
    codec::Encoding,
    log_ship,
    shutdown::Shutdown,
    subjects::log,
    timestamp,
};
use plantd_tests::{ChildProcess, NatsServer, eventually, plant_command};
use time::OffsetDateTime;
use tokio::io::AsyncBufReadExt as _;
use tracing_subscriber::prelude::*;

const TIMEOUT: Duration = Duration::from_secs(5);

async fn query(
    client: &async_nats::Client,
    req: &QueryRequest,
) -> Result<QueryResponse, CallError> {
    call::request(client, &log::query(), req, Encoding::Json, TIMEOUT).await
}

async fn start_logger(server: &NatsServer) -> anyhow::Result<(ChildProcess, async_nats::Client)> {
    let mut logger = spawn_service("plantd-logger", &server.url(), &[])?;
    let client = server.client().await;
    wait_for_instances(&client, "logger", 1, &mut [&mut logger]).await?;
    Ok((logger, client))
}

#[tokio::test]
async fn every_service_reaches_plant_logs_follow_within_a_second() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let (mut logger, client) = start_logger(&server).await?;
    let data = tempfile::tempdir()?;
    let data_dir = data.path().display().to_string();
    let mut children = vec![
        ("echo", spawn_service("plantd-echo", &server.url(), &[])?),
        (
            "state",
            spawn_service("plantd-state", &server.url(), &[("data_dir", &data_dir)])?,
        ),
        ("buses", spawn_service("plantd-bus", &server.url(), &[])?),
    ];
    for (name, child) in &mut children {
        wait_for_instances(&client, name, 1, &mut [child]).await?;
    }
    let mut follow = plant_command([
        "--server",
        &server.url(),
        "-o",
        "json",
        "logs",
        "-f",
        "--since",
        "1m",
    ]);
    follow
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut follower = follow.spawn().context("cannot run plant logs -f")?;
    let mut lines = tokio::io::BufReader::new(follower.stdout.take().context("stdout")?).lines();
    let mut next_record = async move || -> anyhow::Result<LogRecord> {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .context("plant logs -f printed nothing for 10 s")??
            .context("plant logs -f ended")?;
        serde_json::from_str(&line).with_context(|| format!("not a record: {line}"))
    };
    // Start-up records of every service are there.
    let mut started = std::collections::BTreeSet::new();
    while started.len() < 4 {
        let record = next_record().await?;
        if record.message == "service started" {
            started.insert(record.service.clone());
        }
    }
    assert_eq!(
        started.into_iter().collect::<Vec<_>>(),
        ["buses", "echo", "logger", "state"]
    );
    // A fresh warning from each: a message without a reply subject is logged, not applied.
    let probes = [
        ("echo", "plantd.echo.echo"),
        ("state", "plantd.state.get.logprobe"),
        ("buses", "plantd.buses.info"),
        ("logger", "plantd.logger.query"),
    ];
    for (service, subject) in probes {
        let sent = Instant::now();
        client.publish(subject, "{}".into()).await?;
        client.flush().await?;
        loop {
            let record = next_record().await?;
            if record.service == service
                && record.level == "warn"
                && record.fields.get("subject").map(String::as_str) == Some(subject)
            {
                let took = sent.elapsed();
                println!("{service}: warning visible in plant logs -f after {took:?}");
                assert!(took < Duration::from_secs(1), "{service} took {took:?}");
                assert!(
                    record.message.contains("without a reply subject"),
                    "{record:?}"
                );
                assert!(!record.instance.is_empty() && record.time.is_some());
                break;
            }
        }
    }
    follower.kill().await?;
    logger.kill()?;
    Ok(())
}

/// A record of the fake service `probe`, logged at `time`.
fn record(level: &str, message: &str, time: OffsetDateTime) -> LogRecord {
    LogRecord {
        time: Some(timestamp::of(time)),
        service: "probe".into(),
        instance: "test/1".into(),
        level: level.into(),
        target: "logs_test".into(),
        message: message.into(),
        fields: [("n".to_string(), message.to_string())].into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_query_returns_exactly_the_matching_records_and_pages_without_loss() -> anyhow::Result<()>
{
    let server = NatsServer::start().await?;
    let (_logger, client) = start_logger(&server).await?;
    let js = async_nats::jetstream::new(client.clone());
    let t0 = OffsetDateTime::now_utc() - Duration::from_secs(60);
    let levels = ["error", "warn", "info", "debug"];
    let mut published = Vec::new();
    for i in 0..40u32 {
        let level = levels[i as usize % levels.len()];
        let r = record(
            level,
            &format!("m{i}"),
            t0 + Duration::from_secs(u64::from(i)),
        );
        let seq = js
            .publish(log::record("probe", level), serde_json::to_vec(&r)?.into())
            .await?
            .await?
            .sequence;
        published.push((seq, r));
    }
    // warn or worse, logged in [t0+10s, t0+30s), containing "m1" or "m2"… here: all of them.
    let req = QueryRequest {
        service: "probe".into(),
        min_level: "warn".into(),
        since: Some(timestamp::of(t0 + Duration::from_secs(10))),
        until: Some(timestamp::of(t0 + Duration::from_secs(30))),
        ..Default::default()
    };
    let expected: Vec<String> = (10..30u32)
        .filter(|i| i % 4 < 2)
        .map(|i| format!("m{i}"))
        .collect();
    let got = query(&client, &req).await?;
    let messages: Vec<&str> = got.records.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages, expected, "exactly the matching records, in order");
    assert!(!got.more);
    for r in &got.records {
        let (seq, sent) = published
            .iter()
            .find(|(_, p)| p.message == r.message)
            .unwrap();
        assert_eq!(r.seq, *seq);
        assert_eq!(r.fields, sent.fields);
    }
    // Text.
    let only = query(
        &client,
        &QueryRequest {
            contains: "m13".into(),
            ..req.clone()
        },
    )
    .await?;
    assert_eq!(only.records.len(), 1);
    assert_eq!(only.records[0].message, "m13");
    // Pages of 3 with the cursor: the same records, none twice, none skipped.
    let mut paged = Vec::new();
    let mut cursor = 0;
    for _ in 0..20 {
        let page = query(
            &client,
            &QueryRequest {
                limit: 3,
                cursor,
                ..req.clone()
            },
        )
        .await?;
        paged.extend(page.records.into_iter().map(|r| r.message));
        cursor = page.next_cursor;
        if !page.more {
            break;
        }
    }
    assert_eq!(paged, expected);
    // Bad requests name the field.
    for (bad, field) in [
        (
            QueryRequest {
                min_level: "loud".into(),
                ..Default::default()
            },
            "min_level",
        ),
        (
            QueryRequest {
                service: "a.*".into(),
                ..Default::default()
            },
            "service",
        ),
        (
            QueryRequest {
                limit: 1001,
                ..Default::default()
            },
            "limit",
        ),
    ] {
        match query(&client, &bad).await {
            Err(CallError::Service(e)) => {
                assert_eq!(
                    (e.code.as_u16(), e.field.as_deref()),
                    (400, Some(field)),
                    "{e}"
                );
            }
            other => panic!("{field}: expected a 400, got {other:?}"),
        }
    }
    Ok(())
}

#[tokio::test]
async fn logging_never_waits_for_nats_and_the_backlog_arrives_with_drops_counted()
-> anyhow::Result<()> {
    const BUFFER: usize = 20;
    const DURING_OUTAGE: usize = 100;
    let mut server = NatsServer::start().await?;
    let (mut logger, _) = start_logger(&server).await?;
    let (layer, shipper) = log_ship::channel("outage", BUFFER);
    let _guard = tracing_subscriber::registry().with(layer).set_default();
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(server.url())
        .await?;
    let shutdown = Shutdown::new();
    let shipping = shipper.spawn(client.clone(), shutdown.clone());
    tracing::info!(n = 0, "before the outage");

    server.stop().await?;
    eventually(TIMEOUT, || async {
        anyhow::ensure!(client.connection_state() != async_nats::connection::State::Connected);
        Ok(())
    })
    .await?;
    let started = Instant::now();
    for n in 1..=DURING_OUTAGE {
        tracing::info!(n, "during the outage");
    }
    let took = started.elapsed();
    println!("{DURING_OUTAGE} records logged with NATS down in {took:?}");
    assert!(
        took < Duration::from_millis(200),
        "logging waited: {took:?}"
    );

    server.restart().await?;
    let checker = server.client().await;
    let req = QueryRequest {
        service: "outage".into(),
        limit: 1000,
        ..Default::default()
    };
    let records = eventually(Duration::from_secs(20), || async {
        let got = query(&checker, &req).await?;
        anyhow::ensure!(
            got.records.iter().any(|r| r.fields.contains_key("dropped")),
            "no drop report yet: {} records",
            got.records.len()
        );
        Ok(got.records)
    })
    .await?;
    let during: Vec<u64> = records
        .iter()
        .filter(|r| r.message == "during the outage")
        .map(|r| r.fields["n"].parse().unwrap())
        .collect();
    let report = records
        .iter()
        .find(|r| r.fields.contains_key("dropped"))
        .unwrap();
    let dropped: usize = report.fields["dropped"].parse()?;
    println!(
        "kept {} of {DURING_OUTAGE} (buffer {BUFFER}), dropped {dropped}: {}",
        during.len(),
        report.message
    );
    assert!(records.iter().any(|r| r.message == "before the outage"));
    assert_eq!(
        during.len() + dropped,
        DURING_OUTAGE,
        "each record kept or counted"
    );
    assert!(
        during.len() >= BUFFER && during.len() <= BUFFER + 1,
        "{during:?}"
    );
    assert_eq!(
        during,
        (1..=during.len() as u64).collect::<Vec<_>>(),
        "the oldest are kept, in order"
    );
    assert_eq!(report.level, "warn");
    shutdown.trigger();
    shipping.await?;
    logger.kill()?;
    Ok(())
}
