//! Pipelines end to end against a real nats-server and the real `plantd-bus`: each pushed item
//! goes to exactly one of several workers; an item whose worker is `kill -9`ed is redelivered
//! to another; an item that gives out becomes a dead letter with its reason (both when the
//! server stops delivering it and when its worker gives up), and `plant pipe dlq retry` puts it
//! back; bad requests are refused with the field named.

mod foundation;

use std::{collections::BTreeMap, time::Duration};

use anyhow::Context as _;
use async_nats::HeaderMap;
use bytes::Bytes;
use foundation::{bus_service::start, plant};
use plantd_schemas::bus::v1::{
    DlqListRequest, DlqListResponse, DlqRetryRequest, DlqRetryResponse, PipesRequest, PipesResponse,
};
use plantd_shared::{
    call::{self, CallError},
    codec::Encoding,
    pipe::{self, PipeError, Worker, WorkerOptions},
    subjects,
};
use plantd_tests::{ChildProcess, eventually};

/// Two pipes: `jobs` (defaults) and `flaky` (3 deliveries, 1 s ack wait).
const CONFIG: &str = "pipes:\n  - name: jobs\n    ack_wait_secs: 2\n  - name: flaky\n    max_deliver: 3\n    ack_wait_secs: 1\n";

const TIMEOUT: Duration = Duration::from_secs(5);

fn js(client: &async_nats::Client) -> async_nats::jetstream::Context {
    async_nats::jetstream::new(client.clone())
}

async fn stats(client: &async_nats::Client, name: &str) -> anyhow::Result<PipeStatsView> {
    let resp: PipesResponse = call::request(
        client,
        &subjects::pipe::stats(),
        &PipesRequest {},
        Encoding::Json,
        TIMEOUT,
    )
    .await?;
    let p = resp
        .pipes
        .into_iter()
        .find(|p| p.name == name)
        .with_context(|| format!("no stats for pipe {name}"))?;
    Ok(PipeStatsView {
        pending: p.pending,
        in_progress: p.in_progress,
        dead: p.dead,
    })
}

#[derive(Debug, PartialEq, Eq)]
struct PipeStatsView {
    pending: u64,
    in_progress: u64,
    dead: u64,
}

async fn dead_letters(client: &async_nats::Client, name: &str) -> anyhow::Result<DlqListResponse> {
    Ok(call::request(
        client,
        &subjects::pipe::dlq_list(name),
        &DlqListRequest::default(),
        Encoding::Json,
        TIMEOUT,
    )
    .await?)
}

#[tokio::test]
async fn each_item_goes_to_exactly_one_of_three_workers() -> anyhow::Result<()> {
    let b = start(Some(CONFIG)).await?;
    const ITEMS: usize = 300;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut workers = Vec::new();
    for w in 0..3 {
        // Each worker on its own connection, as separate processes would be.
        let client = async_nats::connect(b.server.url()).await?;
        let mut worker = Worker::bind(&js(&client), "jobs", WorkerOptions { prefetch: 4 }).await?;
        let tx = tx.clone();
        workers.push(tokio::spawn(async move {
            while let Some(item) = worker.next().await {
                let item = item.expect("a delivery");
                tx.send((w, item.seq(), item.payload().clone()))
                    .expect("test listens");
                item.ack().await.expect("ack confirmed");
            }
            drop(client);
        }));
    }
    let js = js(&b.client);
    let mut pushed = BTreeMap::new();
    for i in 0..ITEMS {
        let payload = Bytes::from(format!("item-{i}"));
        let seq = pipe::push(&js, "jobs", None, None, payload.clone()).await?;
        pushed.insert(seq, payload);
    }
    let mut taken: BTreeMap<u64, Bytes> = BTreeMap::new();
    let mut per_worker = [0usize; 3];
    while taken.len() < ITEMS {
        let (w, seq, payload) = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .context("items stopped arriving")?
            .context("workers ended")?;
        assert!(
            taken.insert(seq, payload).is_none(),
            "item {seq} was delivered twice"
        );
        per_worker[w] += 1;
    }
    assert_eq!(taken, pushed, "every pushed item, each exactly once");
    // Nothing more comes: no item is delivered a second time.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rx.recv())
            .await
            .is_err()
    );
    println!("items per worker: {per_worker:?}");
    assert!(
        per_worker.iter().filter(|&&n| n > 0).count() >= 2,
        "work is shared: {per_worker:?}"
    );
    let s = eventually(TIMEOUT, || async {
        let s = stats(&b.client, "jobs").await?;
        anyhow::ensure!(s.pending == 0 && s.in_progress == 0, "{s:?}");
        Ok(s)
    })
    .await?;
    assert_eq!(s.dead, 0);
    for w in workers {
        w.abort();
    }
    Ok(())
}

#[tokio::test]
async fn an_item_of_a_killed_worker_goes_to_another() -> anyhow::Result<()> {
    let b = start(Some(CONFIG)).await?;
    let mut doomed = ChildProcess::spawn(
        env!("CARGO_BIN_EXE_pipe_worker"),
        [b.server.url(), "jobs".into(), "hold".into()],
        foundation::no_env(),
    )?;
    let seq = pipe::push(&js(&b.client), "jobs", None, None, "weld part 7".into()).await?;
    eventually(Duration::from_secs(10), || async {
        anyhow::ensure!(
            doomed
                .stdout()
                .contains(&format!("took {seq} 1 weld part 7")),
            "not taken yet: {}",
            doomed.stdout()
        );
        Ok(())
    })
    .await?;
    doomed.kill()?;
    let mut survivor = Worker::bind(&js(&b.client), "jobs", WorkerOptions::default()).await?;
    // Redelivered once the ack wait (2 s) of the killed worker's delivery ran out.
    let item = tokio::time::timeout(Duration::from_secs(10), survivor.next())
        .await
        .context("the item was not redelivered")?
        .context("pull ended")??;
    assert_eq!(item.seq(), seq);
    assert_eq!(item.deliveries(), 2);
    assert_eq!(item.payload().as_ref(), b"weld part 7");
    item.ack().await?;
    eventually(TIMEOUT, || async {
        let s = stats(&b.client, "jobs").await?;
        anyhow::ensure!(s.pending == 0 && s.in_progress == 0, "{s:?}");
        Ok(())
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn items_that_give_out_are_dead_lettered_with_why_and_retry_requeues_them()
-> anyhow::Result<()> {
    let b = start(Some(CONFIG)).await?;
    let url = b.server.url();
    let js = js(&b.client);
    let mut headers = HeaderMap::new();
    headers.insert("Batch", "b-42");
    // One item no worker ever finishes: the server stops after 3 deliveries and the bus
    // service dead-letters it from the advisory.
    let abandoned = pipe::push(&js, "flaky", None, Some(headers), "abandoned".into()).await?;
    let mut worker = Worker::bind(&js, "flaky", WorkerOptions::default()).await?;
    for delivery in 1..=3 {
        let item = tokio::time::timeout(Duration::from_secs(10), worker.next())
            .await
            .context("no delivery")?
            .context("pull ended")??;
        assert_eq!((item.seq(), item.deliveries()), (abandoned, delivery));
        assert_eq!(item.is_last_delivery(), delivery == 3);
        drop(item); // unfinished: redelivered after the 1 s ack wait
    }
    // No fourth delivery. nats-server 2.15 notices an item gave out only while a worker is
    // pulling, as this wait does (docs/pipelines.md).
    assert!(
        tokio::time::timeout(Duration::from_secs(3), worker.next())
            .await
            .is_err(),
        "an item is delivered at most max_deliver times"
    );
    // One item its worker rejects every time: dead-lettered by the worker on the last try,
    // with the worker's reason.
    let rejected = pipe::push(&js, "flaky", None, None, "not json".into()).await?;
    let mut dead_by_worker = false;
    for _ in 0..3 {
        let item = tokio::time::timeout(Duration::from_secs(10), worker.next())
            .await
            .context("no delivery")?
            .context("pull ended")??;
        assert_eq!(item.seq(), rejected);
        dead_by_worker = item
            .fail("payload is not JSON", Duration::from_millis(50))
            .await?;
    }
    assert!(dead_by_worker, "the third failure dead-letters the item");

    let list = eventually(Duration::from_secs(10), || async {
        let list = dead_letters(&b.client, "flaky").await?;
        anyhow::ensure!(
            list.dead_letters.len() == 2,
            "{list:?}\n--- bus service ---\n{}",
            b.service.stderr()
        );
        Ok(list)
    })
    .await?;
    let by_seq: BTreeMap<u64, _> = list.dead_letters.iter().map(|d| (d.pipe_seq, d)).collect();
    let gone = by_seq[&abandoned];
    assert_eq!(
        (gone.deliveries, gone.payload.as_slice()),
        (3, b"abandoned".as_slice())
    );
    assert!(
        gone.reason
            .contains("no worker acknowledged it in 3 deliveries"),
        "{}",
        gone.reason
    );
    assert_eq!(gone.headers.get("Batch").map(String::as_str), Some("b-42"));
    let refused = by_seq[&rejected];
    assert_eq!(
        (refused.deliveries, refused.reason.as_str()),
        (3, "payload is not JSON")
    );
    let s = stats(&b.client, "flaky").await?;
    assert_eq!(
        s,
        PipeStatsView {
            pending: 0,
            in_progress: 0,
            dead: 2
        }
    );

    // What people see, and the retry.
    let ls = plant(&["--server", &url, "pipe", "dlq", "ls", "flaky"]).await?;
    assert!(ls.ok, "{}", ls.stderr);
    assert!(
        ls.stdout.contains("payload is not JSON") && ls.stdout.contains("abandoned"),
        "{}",
        ls.stdout
    );
    let dead_seq = gone.seq.to_string();
    let retry = plant(&[
        "--server", &url, "-o", "json", "pipe", "dlq", "retry", "flaky", &dead_seq,
    ])
    .await?;
    assert!(retry.ok, "{}", retry.stderr);
    let retried: serde_json::Value = serde_json::from_str(&retry.stdout)?;
    assert_eq!(retried["retried"], "1", "{retried}"); // proto3 JSON: 64-bit as text
    let item = tokio::time::timeout(Duration::from_secs(10), worker.next())
        .await
        .context("the retried item was not delivered")?
        .context("pull ended")??;
    assert_eq!(
        (item.payload().as_ref(), item.deliveries()),
        (b"abandoned".as_slice(), 1)
    );
    let batch = item
        .headers()
        .and_then(|h| h.get("Batch"))
        .map(|v| v.as_str().to_string());
    assert_eq!(
        batch.as_deref(),
        Some("b-42"),
        "the item's own headers come back"
    );
    assert!(
        item.headers()
            .and_then(|h| h.get(pipe::HEADER_REASON))
            .is_none(),
        "dead-letter headers do not"
    );
    item.ack().await?;
    let left = dead_letters(&b.client, "flaky").await?;
    assert_eq!(left.dead_letters.len(), 1);
    assert_eq!(left.dead_letters[0].pipe_seq, rejected);
    let stats_out = plant(&["--server", &url, "pipe", "stats"]).await?;
    assert!(
        stats_out.ok && stats_out.stdout.contains("flaky"),
        "{}",
        stats_out.stderr
    );
    Ok(())
}

/// The code and `field: message` of a service's refusal.
fn refusal(result: Result<impl std::fmt::Debug, CallError>) -> (u16, String) {
    match result {
        Err(CallError::Service(e)) => (
            e.code.as_u16(),
            format!("{}: {}", e.field.unwrap_or_default(), e.message),
        ),
        other => panic!("expected a service error, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_pipe_requests_are_refused_with_the_field_named() -> anyhow::Result<()> {
    let b = start(Some(CONFIG)).await?;
    let js = js(&b.client);
    match pipe::push(&js, "nosuch", None, None, "x".into()).await {
        Err(PipeError::NoSuchPipe(name)) => assert_eq!(name, "nosuch"),
        other => panic!("push onto an unknown pipe: {other:?}"),
    }
    assert!(matches!(
        pipe::push(&js, "Bad.Name", None, None, "x".into()).await,
        Err(PipeError::InvalidName(_))
    ));
    // A repeated id is stored once.
    let first = pipe::push(&js, "jobs", Some("order-1"), None, "a".into()).await?;
    let again = pipe::push(&js, "jobs", Some("order-1"), None, "a".into()).await?;
    assert_eq!(first, again);

    let list = |pipe_name: &str, req: DlqListRequest| {
        let subject = subjects::pipe::dlq_list(pipe_name);
        let client = b.client.clone();
        async move {
            call::request::<_, DlqListResponse>(&client, &subject, &req, Encoding::Json, TIMEOUT)
                .await
        }
    };
    let (code, text) = refusal(list("nosuch", DlqListRequest::default()).await);
    assert_eq!(code, 404, "{text}");
    assert!(
        text.contains("no pipe \"nosuch\"") && text.contains("jobs, flaky"),
        "{text}"
    );
    let (code, text) = refusal(
        list(
            "jobs",
            DlqListRequest {
                from_seq: 0,
                limit: 5000,
            },
        )
        .await,
    );
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("limit"), "{text}");

    let retry = |req: DlqRetryRequest| {
        let client = b.client.clone();
        async move {
            call::request::<_, DlqRetryResponse>(
                &client,
                &subjects::pipe::dlq_retry("jobs"),
                &req,
                Encoding::Json,
                TIMEOUT,
            )
            .await
        }
    };
    let (code, text) = refusal(retry(DlqRetryRequest::default()).await);
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("seqs"), "{text}");
    let (code, text) = refusal(
        retry(DlqRetryRequest {
            seqs: vec![1],
            all: true,
        })
        .await,
    );
    assert_eq!(code, 400, "{text}");
    let (code, text) = refusal(
        retry(DlqRetryRequest {
            seqs: vec![99],
            all: false,
        })
        .await,
    );
    assert_eq!(code, 404, "{text}");
    assert!(text.contains("seqs[0]: no dead letter 99"), "{text}");

    let bad = plant(&["--server", &b.server.url(), "pipe", "push", "nosuch", "x"]).await?;
    assert!(!bad.ok);
    assert!(bad.stderr.contains("no pipe \"nosuch\""), "{}", bad.stderr);
    Ok(())
}
