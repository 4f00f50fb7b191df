//! Every request gets exactly one reply or is counted: the runtime's promises on the paths
//! where a reply could be lost (issue #16, item 3) or a message applied that nobody asked
//! for (issue #9, reflected replies).
//!
//! An in-process service on a real nats-server whose `max_payload` is 512 KiB (smaller than
//! async-nats' and our own old assumption of 1 MiB):
//! * a handler whose reply is larger than the server takes: the caller gets a 413 error reply
//!   at once (not a timeout), and `$SRV.STATS` counts the error;
//! * a message without a reply subject on an endpoint (what another service's reply looks like
//!   when a caller points its reply subject here): the handler never runs, STATS counts it;
//! * (on a default server) a handler that never finishes: 504 at the deadline, slot freed.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use futures::FutureExt as _;
use plantd_shared::{
    ServiceError,
    error::{ERROR_CODE_HEADER, ERROR_HEADER},
    micro::{ServiceBuilder, endpoint::Handler, service::RuntimeOptions},
};
use plantd_tests::NatsServer;
use serde_json::Value;

/// The server's payload limit in this test.
const MAX_PAYLOAD: usize = 512 * 1024;

const TEMPLATE: &str = "server_name: plantd-small-payload\n\
                        listen: 127.0.0.1:{{port}}\n\
                        max_payload: 512KB\n\
                        jetstream { store_dir: \"{{data_dir}}\" }\n\
                        {{extra}}\n";

/// A handler that counts its calls and answers `size` bytes.
fn sized(size: usize, calls: Arc<AtomicU64>) -> Handler {
    Arc::new(move |_ctx, _body| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<Bytes, ServiceError>(Bytes::from(vec![b'x'; size])) }.boxed()
    })
}

async fn stats(client: &async_nats::Client) -> anyhow::Result<Value> {
    let reply = client
        .request("$SRV.STATS.rtest", Bytes::new())
        .await
        .map_err(|e| anyhow::anyhow!("stats: {e}"))?;
    Ok(serde_json::from_slice(&reply.payload)?)
}

fn endpoint<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["endpoints"]
        .as_array()
        .and_then(|eps| eps.iter().find(|e| e["name"] == name))
        .unwrap_or_else(|| panic!("no endpoint {name} in {stats}"))
}

#[tokio::test]
async fn oversized_replies_are_refused_and_replyless_messages_never_handled() -> anyhow::Result<()>
{
    let server = NatsServer::start_with_template(TEMPLATE).await?;
    let client = server.client().await;
    assert_eq!(client.server_info().max_payload, MAX_PAYLOAD);

    let (big_calls, small_calls) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let service = ServiceBuilder::new("rtest", "1.0.0")
        .raw_endpoint(
            "big",
            "rtest.big".into(),
            sized(MAX_PAYLOAD + 1000, big_calls.clone()),
        )
        .raw_endpoint(
            "small",
            "rtest.small".into(),
            sized(10, small_calls.clone()),
        )
        .start(
            &client,
            RuntimeOptions {
                max_in_flight: 8,
                drain_timeout: Duration::from_secs(2),
                handler_timeout: Duration::from_secs(10),
            },
        )
        .await?;

    // Oversized: an error reply, at once, counted.
    let caller = server.client().await;
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        caller.request("rtest.big", Bytes::new()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("no answer: the reply was lost"))?
    .map_err(|e| anyhow::anyhow!("request failed: {e}"))?;
    let headers = reply.headers.expect("an error reply has headers");
    assert_eq!(
        headers.get(ERROR_CODE_HEADER).map(|v| v.as_str()),
        Some("413")
    );
    let text = headers.get(ERROR_HEADER).map(|v| v.to_string());
    assert!(
        text.as_deref().is_some_and(|t| t.contains("max_payload")),
        "{text:?}"
    );
    let body: Value = serde_json::from_slice(&reply.payload)?;
    assert_eq!(body["code"], 413, "{body}");
    let s = stats(&caller).await?;
    assert_eq!(endpoint(&s, "big")["num_errors"], 1, "{s}");
    assert_eq!(big_calls.load(Ordering::SeqCst), 1);

    // Without a reply subject: never handled, counted as an error.
    caller.publish("rtest.small", Bytes::from("{}")).await?;
    caller.flush().await?;
    let counted = plantd_tests::eventually(Duration::from_secs(5), || {
        let caller = caller.clone();
        async move {
            let s = stats(&caller).await?;
            let e = endpoint(&s, "small").clone();
            anyhow::ensure!(e["num_errors"] == 1, "not counted yet: {e}");
            anyhow::Ok(e)
        }
    })
    .await?;
    assert!(
        counted["last_error"]
            .as_str()
            .is_some_and(|t| t.contains("reply subject")),
        "{counted}"
    );
    assert_eq!(
        small_calls.load(Ordering::SeqCst),
        0,
        "the handler never ran"
    );
    // A proper request still works.
    let ok = caller.request("rtest.small", Bytes::new()).await?;
    assert_eq!(ok.payload.len(), 10);
    assert!(service.stop().await, "drains cleanly");
    Ok(())
}

/// A handler that never finishes (issue #16, item 4): the caller gets a 504 at the deadline,
/// the in-flight slot is freed, and with every slot once taken by a hung handler the instance
/// still serves at its full bound afterwards.
#[tokio::test]
async fn a_hung_handler_gets_a_deadline_reply_and_frees_its_slot() -> anyhow::Result<()> {
    const IN_FLIGHT: usize = 2;
    const DEADLINE: Duration = Duration::from_millis(300);
    let server = NatsServer::start().await?;
    let client = server.client().await;
    let hang: Handler =
        Arc::new(|_ctx, _body| futures::future::pending::<Result<Bytes, ServiceError>>().boxed());
    let service = ServiceBuilder::new("rtest", "1.0.0")
        .raw_endpoint("hang", "rtest.hang".into(), hang)
        .raw_endpoint("small", "rtest.small".into(), sized(10, Arc::default()))
        .start(
            &client,
            RuntimeOptions {
                max_in_flight: IN_FLIGHT,
                drain_timeout: Duration::from_secs(2),
                handler_timeout: DEADLINE,
            },
        )
        .await?;

    let caller = server.client().await;
    // Two rounds of hung requests, each taking every slot: without the deadline the second
    // round (and everything after it) would never even start.
    for round in 0..2 {
        let started = tokio::time::Instant::now();
        let replies = futures::future::join_all((0..IN_FLIGHT).map(|_| {
            tokio::time::timeout(
                Duration::from_secs(5),
                caller.request("rtest.hang", Bytes::new()),
            )
        }))
        .await;
        for reply in replies {
            let reply = reply
                .map_err(|_| anyhow::anyhow!("round {round}: no deadline reply"))?
                .map_err(|e| anyhow::anyhow!("round {round}: {e}"))?;
            let headers = reply.headers.expect("an error reply has headers");
            assert_eq!(
                headers.get(ERROR_CODE_HEADER).map(|v| v.as_str()),
                Some("504")
            );
            let body: Value = serde_json::from_slice(&reply.payload)?;
            assert_eq!(body["code"], 504, "{body}");
            assert!(
                body["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("300 ms")),
                "{body}"
            );
        }
        assert!(started.elapsed() >= DEADLINE, "answered at the deadline");
    }
    // Both slots are free again: a full bound of quick requests is answered at once.
    let quick = futures::future::join_all(
        (0..IN_FLIGHT).map(|_| caller.request("rtest.small", Bytes::new())),
    )
    .await;
    for reply in quick {
        assert_eq!(reply?.payload.len(), 10);
    }
    let s = stats(&caller).await?;
    let hang = endpoint(&s, "hang");
    assert_eq!(hang["num_requests"], 2 * IN_FLIGHT as u64, "{s}");
    assert_eq!(hang["num_errors"], 2 * IN_FLIGHT as u64, "{s}");
    assert!(
        hang["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("504:")),
        "{s}"
    );
    assert!(service.stop().await, "nothing left running");
    Ok(())
}
