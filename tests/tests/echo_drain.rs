//! Stopping an echo instance end to end, proving the shared runtime's drain: on SIGTERM an
//! instance finishes every request it already has (all answered, then exit 0) and leaves the
//! queue group at once, so requests sent meanwhile are answered by another instance and none is
//! lost. Uses `slow` requests to keep work in flight while the signal arrives.

mod foundation;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::Client;
use foundation::{DEADLINE, header, instance_of, json_body, spawn_echo, wait_for_instances};
use futures::StreamExt as _;
use plantd_schemas::echo::v1::{EchoReply, EchoRequest};
use plantd_shared::call::{self, CallError};
use plantd_shared::codec::Encoding;
use plantd_tests::{NatsServer, Signal};
use tokio::time::Instant;

const ECHO: &str = "plantd.echo.echo";
const SLOW: &str = "plantd.echo.slow";
const TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `count` `slow` requests of `ms` each without waiting, and returns the subscription
/// their replies arrive on. Once this returns, the server has routed every request to an
/// instance (the flush's PONG comes after the server processed our PUBs).
async fn fire_slow(
    client: &Client,
    count: usize,
    ms: u32,
) -> anyhow::Result<async_nats::Subscriber> {
    let inbox = client.new_inbox();
    let replies = client.subscribe(format!("{inbox}.*")).await?;
    let payload = format!(r#"{{"duration_ms":{ms}}}"#);
    for i in 0..count {
        client
            .publish_with_reply(SLOW, format!("{inbox}.{i}"), payload.clone().into())
            .await?;
    }
    client.flush().await?;
    Ok(replies)
}

/// Collects `count` replies from `replies`, asserting each is a success that slept `ms`.
/// Returns how many each instance answered.
async fn expect_slow_replies(
    replies: &mut async_nats::Subscriber,
    count: usize,
    ms: u32,
) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut by_instance = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_millis(u64::from(ms)) + DEADLINE;
    for received in 0..count {
        let reply = tokio::time::timeout_at(deadline, replies.next())
            .await
            .map_err(|_| anyhow::anyhow!("only {received} of {count} slow replies arrived"))?
            .ok_or_else(|| anyhow::anyhow!("reply subscription closed"))?;
        assert_eq!(
            header(&reply, "Nats-Service-Error-Code"),
            None,
            "in-flight request failed: {:?} {:?}",
            reply.headers,
            String::from_utf8_lossy(&reply.payload)
        );
        let body = json_body(&reply);
        assert_eq!(body["slept_ms"], ms, "{body}");
        let instance = body["instance"].as_str().unwrap_or_default().to_owned();
        *by_instance.entry(instance).or_default() += 1;
    }
    Ok(by_instance)
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests() -> anyhow::Result<()> {
    const IN_FLIGHT: usize = 10;
    const SLEEP_MS: u32 = 1500;
    let server = NatsServer::start().await?;
    let client = server.client().await;
    let mut echo = spawn_echo(&server, &[])?;
    wait_for_instances(&client, "echo", 1, &mut [&mut echo]).await?;

    let mut replies = fire_slow(&client, IN_FLIGHT, SLEEP_MS).await?;
    // The flush in fire_slow guarantees the requests reached the instance's connection; this
    // margin (for ordering, not readiness) makes it likely their handlers are already sleeping
    // when SIGTERM arrives, which is the case the drain exists for.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    echo.signal(Signal::SIGTERM)?;

    let by_instance = expect_slow_replies(&mut replies, IN_FLIGHT, SLEEP_MS).await?;
    assert_eq!(by_instance.get(&instance_of(&echo)), Some(&IN_FLIGHT));
    let status = echo.wait_with_deadline(DEADLINE).await;
    println!(
        "{IN_FLIGHT} in-flight requests answered, exit {status:?} {:?} after SIGTERM",
        signalled.elapsed()
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "exit status {status:?}; stderr:\n{}",
        echo.stderr()
    );
    Ok(())
}

/// A stopping instance leaves the queue group at once, so requests sent after its SIGTERM are
/// all answered, by the other instance, while it is still draining its own. (An earlier runtime
/// used async-nats' `Subscriber::drain`, which forgets the subscription before the server has
/// processed the UNSUB and lost requests routed just before; see `micro::service::drain`.)
#[tokio::test]
async fn sigterm_sends_new_requests_to_the_other_instance() -> anyhow::Result<()> {
    const IN_FLIGHT: usize = 10;
    const SLEEP_MS: u32 = 3000;
    /// Consecutive replies from the survivor that show the stopping instance left the queue
    /// group (by chance, with both in it: 2^-20).
    const STREAK: usize = 20;
    let server = NatsServer::start().await?;
    let client = server.client().await;
    let mut stopping = spawn_echo(&server, &[])?;
    let mut survivor = spawn_echo(&server, &[])?;
    wait_for_instances(&client, "echo", 2, &mut [&mut stopping, &mut survivor]).await?;
    let (stopping_id, survivor_id) = (instance_of(&stopping), instance_of(&survivor));

    let mut replies = fire_slow(&client, IN_FLIGHT, SLEEP_MS).await?;
    tokio::time::sleep(Duration::from_millis(200)).await; // ordering margin, as above
    let signalled = Instant::now();
    stopping.signal(Signal::SIGTERM)?;

    // Every request sent from now on succeeds; soon they all go to the survivor.
    let request = EchoRequest {
        message: "after sigterm".into(),
    };
    let mut streak = 0;
    let mut sent = 0;
    while streak < STREAK {
        assert!(
            signalled.elapsed() < Duration::from_millis(u64::from(SLEEP_MS) - 500),
            "the stopping instance still gets new requests {:?} after SIGTERM ({sent} sent)",
            signalled.elapsed()
        );
        let reply: EchoReply =
            call::request(&client, ECHO, &request, Encoding::Json, TIMEOUT).await?;
        sent += 1;
        streak = if reply.instance == survivor_id {
            streak + 1
        } else {
            assert_eq!(reply.instance, stopping_id);
            0
        };
    }
    let switched = signalled.elapsed();
    assert!(
        stopping.is_running(),
        "the stopping instance must still be draining, else this proves nothing"
    );
    for _ in 0..STREAK {
        let reply: EchoReply =
            call::request(&client, ECHO, &request, Encoding::Json, TIMEOUT).await?;
        assert_eq!(reply.instance, survivor_id);
    }
    assert!(stopping.is_running(), "still draining its slow requests");
    println!("new requests all go to the survivor {switched:?} after SIGTERM ({sent} sent)");

    let by_instance = expect_slow_replies(&mut replies, IN_FLIGHT, SLEEP_MS).await?;
    println!("in-flight slow requests answered by {by_instance:?}");
    let status = stopping.wait_with_deadline(DEADLINE).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "exit status {status:?}; stderr:\n{}",
        stopping.stderr()
    );
    assert!(survivor.is_running());
    Ok(())
}

/// Under steady load from several callers, stopping one of two instances loses no request:
/// every one is answered, before, during and after the drain (open server; the same under
/// issued creds is `drain_operator.rs`).
#[tokio::test]
async fn no_request_is_lost_while_an_instance_stops() -> anyhow::Result<()> {
    const CALLERS: usize = 8;
    let server = NatsServer::start().await?;
    let client = server.client().await;
    let mut stopping = spawn_echo(&server, &[])?;
    let mut survivor = spawn_echo(&server, &[])?;
    wait_for_instances(&client, "echo", 2, &mut [&mut stopping, &mut survivor]).await?;

    let done = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let client = client.clone();
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    let request = EchoRequest {
                        message: "load".into(),
                    };
                    let result: Result<EchoReply, CallError> =
                        call::request(&client, ECHO, &request, Encoding::Json, TIMEOUT).await;
                    outcomes.push(result.map(|reply| reply.instance));
                }
                outcomes
            })
        })
        .collect();
    // Load before the signal (for ordering, not readiness), through the drain, and after.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stopping.signal(Signal::SIGTERM)?;
    let status = stopping.wait_with_deadline(DEADLINE).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    done.store(true, Ordering::Relaxed);

    let mut answered: BTreeMap<String, usize> = BTreeMap::new();
    let mut failed = Vec::new();
    for caller in callers {
        for outcome in caller.await? {
            match outcome {
                Ok(instance) => *answered.entry(instance).or_default() += 1,
                Err(err) => failed.push(err.to_string()),
            }
        }
    }
    println!("answered by {answered:?}; {} failed", failed.len());
    assert!(
        status.is_some_and(|s| s.success()),
        "exit {status:?}; stderr:\n{}",
        stopping.stderr()
    );
    assert!(
        failed.is_empty(),
        "{} requests failed while an instance stopped: {failed:?}",
        failed.len()
    );
    assert_eq!(answered.len(), 2, "both instances served: {answered:?}");
    Ok(())
}
