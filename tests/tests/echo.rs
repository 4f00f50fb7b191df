//! The echo module end to end, proving the shared service runtime over a real nats-server:
//! JSON and protobuf requests get replies in their own encoding; three instances share the load
//! through the queue group and all answer discovery; a request nobody serves fails fast with
//! `no responders`; bad input gets an ADR-32 error reply (headers and JSON body naming the
//! field), is counted in `$SRV.STATS`, and does not stop the service; and bad settings are all
//! reported before the process exits with 64. Stopping (SIGTERM, drain) is in `echo_drain.rs`.

mod foundation;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use async_nats::{Client, HeaderMap, Message};
use bytes::Bytes;
use foundation::{
    DEADLINE, gather_json, header, instance_of, json_body, no_env, spawn_echo, wait_for_instances,
};
use futures::StreamExt as _;
use plantd_schemas::echo::v1::{EchoReply, EchoRequest};
use plantd_shared::call::{self, CallError};
use plantd_shared::codec::Encoding;
use plantd_tests::{ChildProcess, NatsServer, Signal, bin_path};
use prost::Message as _;
use tokio::time::Instant;

const ECHO: &str = "plantd.echo.echo";
const SLOW: &str = "plantd.echo.slow";
const TIMEOUT: Duration = Duration::from_secs(5);

/// A raw request with the given `Content-Type` (none if `None`).
async fn raw_request(
    client: &Client,
    subject: &str,
    content_type: Option<&str>,
    payload: impl Into<Bytes>,
) -> anyhow::Result<Message> {
    let mut headers = HeaderMap::new();
    if let Some(content_type) = content_type {
        headers.insert("Content-Type", content_type);
    }
    let request = async_nats::Request::new()
        .headers(headers)
        .payload(payload.into())
        .timeout(Some(TIMEOUT));
    Ok(client.send_request(subject.to_owned(), request).await?)
}

/// The STATS counters of one endpoint of the single running echo instance, once they show
/// `requests` requests and `errors` errors. Polled, because an instance counts a request just
/// after sending its reply, so a STATS request sent on receipt of the reply can overtake it.
async fn endpoint_stats(
    client: &Client,
    endpoint: &str,
    requests: u64,
    errors: u64,
) -> anyhow::Result<serde_json::Value> {
    plantd_tests::eventually(Duration::from_secs(5), || async move {
        let stats = gather_json(client, "$SRV.STATS.echo", 1).await?;
        anyhow::ensure!(stats.len() == 1, "one STATS reply expected: {stats:?}");
        let counters = stats[0]["endpoints"]
            .as_array()
            .and_then(|endpoints| endpoints.iter().find(|e| e["name"] == endpoint))
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no endpoint {endpoint} in STATS: {}", stats[0]))?;
        anyhow::ensure!(
            counters["num_requests"] == requests && counters["num_errors"] == errors,
            "expected {requests} requests and {errors} errors: {counters}"
        );
        Ok(counters)
    })
    .await
}

/// Checks that `reply` is an ADR-32 error reply with `code` and returns its JSON body.
fn assert_error_reply(reply: &Message, code: u16) -> serde_json::Value {
    let code_text = code.to_string();
    assert_eq!(
        header(reply, "Nats-Service-Error-Code"),
        Some(code_text.as_str()),
        "error code header; headers {:?}",
        reply.headers
    );
    let text = header(reply, "Nats-Service-Error").expect("Nats-Service-Error header");
    assert!(!text.is_empty(), "Nats-Service-Error is empty");
    assert_eq!(header(reply, "Content-Type"), Some("application/json"));
    let body = json_body(reply);
    assert_eq!(body["code"], code, "body {body}");
    let message = body["message"].as_str().expect("message is a string");
    assert!(!message.is_empty(), "empty message in {body}");
    assert_eq!(message, text, "header and body tell the same story");
    body
}

#[tokio::test]
async fn echo_in_json_and_protobuf() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let client = server.client().await;
    let mut echo = spawn_echo(&server, &[])?;
    wait_for_instances(&client, "echo", 1, &mut [&mut echo]).await?;
    let instance = instance_of(&echo);

    // JSON, as `nats req` sends it: no Content-Type at all.
    let reply = raw_request(&client, ECHO, None, r#"{"message":"hello"}"#).await?;
    assert_eq!(header(&reply, "Nats-Service-Error-Code"), None);
    assert_eq!(header(&reply, "Content-Type"), Some("application/json"));
    let body = json_body(&reply);
    assert_eq!(body["message"], "hello");
    assert_eq!(body["instance"], instance.as_str());
    let timestamp = body["timestamp"]
        .as_str()
        .expect("timestamp is an RFC 3339 string");
    // proto3 canonical JSON says "Z-normalized"; pbjson-types writes `+00:00`, which is still
    // RFC 3339 UTC (reported to the lead), so both are accepted here.
    assert!(
        timestamp.get(10..11) == Some("T")
            && (timestamp.ends_with('Z') || timestamp.ends_with("+00:00")),
        "{timestamp}"
    );

    // JSON announced explicitly, through the typed client helper.
    let typed: EchoReply = call::request(
        &client,
        ECHO,
        &EchoRequest {
            message: "typed json".into(),
        },
        Encoding::Json,
        TIMEOUT,
    )
    .await?;
    assert_eq!(typed.message, "typed json");
    assert_eq!(typed.instance, instance);

    // Protobuf: the reply comes back in protobuf and decodes with prost.
    let request = EchoRequest {
        message: "binary ünïcode".into(),
    };
    let reply = raw_request(
        &client,
        ECHO,
        Some("application/protobuf"),
        request.encode_to_vec(),
    )
    .await?;
    assert_eq!(header(&reply, "Nats-Service-Error-Code"), None);
    assert_eq!(header(&reply, "Content-Type"), Some("application/protobuf"));
    assert!(
        serde_json::from_slice::<serde_json::Value>(&reply.payload).is_err(),
        "a protobuf reply is not JSON"
    );
    let decoded = EchoReply::decode(reply.payload.as_ref())?;
    assert_eq!(decoded.message, "binary ünïcode");
    assert_eq!(decoded.instance, instance);
    let timestamp = decoded.timestamp.expect("protobuf reply has a timestamp");
    assert!(timestamp.seconds > 1_600_000_000, "{timestamp:?}");
    Ok(())
}

#[tokio::test]
async fn three_instances_share_the_load() -> anyhow::Result<()> {
    const REQUESTS: usize = 300;
    let server = NatsServer::start().await?;
    let client = server.client().await;
    let mut echos = [
        spawn_echo(&server, &[])?,
        spawn_echo(&server, &[])?,
        spawn_echo(&server, &[])?,
    ];
    let mut refs: Vec<&mut ChildProcess> = echos.iter_mut().collect();
    let pings = wait_for_instances(&client, "echo", 3, &mut refs).await?;
    let ids: BTreeSet<&str> = pings.iter().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(ids.len(), 3, "three distinct instance ids: {pings:?}");

    let replies: Vec<Result<EchoReply, CallError>> = futures::stream::iter(0..REQUESTS)
        .map(|i| {
            let client = client.clone();
            async move {
                call::request(
                    &client,
                    ECHO,
                    &EchoRequest {
                        message: format!("m{i}"),
                    },
                    Encoding::Json,
                    TIMEOUT,
                )
                .await
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut share: HashMap<String, usize> = HashMap::new();
    for reply in replies {
        *share.entry(reply?.instance).or_default() += 1;
    }
    println!("load share of {REQUESTS} requests over 3 instances: {share:?}");
    let expected: BTreeSet<String> = echos.iter().map(instance_of).collect();
    let seen: BTreeSet<String> = share.keys().cloned().collect();
    assert_eq!(seen, expected, "every instance answered, and only they did");
    for (instance, count) in &share {
        // A fair share is 100; below 30 would mean the queue group is not load sharing
        // (binomial odds of < 30 by chance are about 1e-12).
        assert!(
            *count >= REQUESTS / 10,
            "{instance} answered only {count} of {REQUESTS}: {share:?}"
        );
    }

    // Discovery reaches every instance, not just one of the queue group.
    assert_eq!(gather_json(&client, "$SRV.PING.echo", 3).await?.len(), 3);
    Ok(())
}

#[tokio::test]
async fn no_responders_fails_fast() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let client = server.client().await;
    let request = EchoRequest {
        message: "anyone?".into(),
    };

    let start = Instant::now();
    let result: Result<EchoReply, CallError> =
        call::request(&client, ECHO, &request, Encoding::Json, TIMEOUT).await;
    let elapsed = start.elapsed();
    println!("no responders after {elapsed:?} (timeout was {TIMEOUT:?})");
    assert!(
        matches!(&result, Err(CallError::NoResponders { subject }) if subject == ECHO),
        "{result:?}"
    );
    assert!(elapsed < Duration::from_millis(500), "took {elapsed:?}");
    let message = result.expect_err("no responders").to_string();
    assert!(message.contains("no responders"), "{message}");

    // The same after the only instance stopped: it unsubscribed on the way out.
    let mut echo = spawn_echo(&server, &[])?;
    wait_for_instances(&client, "echo", 1, &mut [&mut echo]).await?;
    let _: EchoReply = call::request(&client, ECHO, &request, Encoding::Json, TIMEOUT).await?;
    echo.signal(Signal::SIGTERM)?;
    let status = echo.wait_with_deadline(DEADLINE).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let start = Instant::now();
    let result: Result<EchoReply, CallError> =
        call::request(&client, ECHO, &request, Encoding::Json, TIMEOUT).await;
    assert!(
        matches!(result, Err(CallError::NoResponders { .. })),
        "{result:?}"
    );
    assert!(start.elapsed() < Duration::from_millis(500));
    Ok(())
}

#[tokio::test]
async fn bad_input_gets_an_error_reply_and_the_service_keeps_serving() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let client = server.client().await;
    let mut echo = spawn_echo(&server, &[("max_slow_ms", "2000")])?;
    wait_for_instances(&client, "echo", 1, &mut [&mut echo]).await?;

    // Malformed JSON: 400 in headers and body.
    let reply = raw_request(&client, ECHO, None, r#"{"message":"#).await?;
    let body = assert_error_reply(&reply, 400);
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("JSON"), "says the JSON is bad: {body}");
    assert!(
        body["field"].as_str().unwrap_or_default().is_empty(),
        "a syntax error is about no field: {body}"
    );

    // The service is still there, and counted exactly that error.
    let reply: EchoReply = call::request(
        &client,
        ECHO,
        &EchoRequest {
            message: "still here".into(),
        },
        Encoding::Json,
        TIMEOUT,
    )
    .await?;
    assert_eq!(reply.message, "still here");
    let stats = endpoint_stats(&client, "echo", 2, 1).await?;
    let last_error = stats["last_error"].as_str().unwrap_or_default();
    assert!(last_error.starts_with("400:"), "{stats}");

    // An unknown field is named.
    let reply = raw_request(&client, ECHO, None, r#"{"mesage":"typo"}"#).await?;
    let body = assert_error_reply(&reply, 400);
    assert_eq!(body["field"], "mesage", "{body}");

    // Through the client helper, the same error comes back as a typed ServiceError.
    let result = call::request_raw(
        &client,
        ECHO,
        HeaderMap::new(),
        Bytes::from_static(br#"{"mesage":"typo"}"#),
        TIMEOUT,
    )
    .await;
    match result {
        Err(CallError::Service(err)) => {
            assert_eq!(err.code.as_u16(), 400);
            assert_eq!(err.field.as_deref(), Some("mesage"));
        }
        other => panic!("expected a service error, got {other:?}"),
    }

    // Garbage protobuf: 400, and the error body is JSON whatever the request's encoding.
    let reply = raw_request(
        &client,
        ECHO,
        Some("application/protobuf"),
        &b"\xff\xff\xff"[..],
    )
    .await?;
    assert_error_reply(&reply, 400);

    // `slow` over the configured bound: 400 naming duration_ms, answered at once.
    let start = Instant::now();
    let reply = raw_request(&client, SLOW, None, r#"{"duration_ms":60000}"#).await?;
    assert!(start.elapsed() < Duration::from_secs(2), "not slept");
    let body = assert_error_reply(&reply, 400);
    assert_eq!(body["field"], "duration_ms", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("2000"),
        "says the bound: {body}"
    );
    // Within the bound it works, in the request's encoding.
    let reply = raw_request(&client, SLOW, None, r#"{"duration_ms":10}"#).await?;
    assert_eq!(header(&reply, "Nats-Service-Error-Code"), None);
    assert_eq!(json_body(&reply)["slept_ms"], 10);

    endpoint_stats(&client, "echo", 5, 4).await?;
    let stats = endpoint_stats(&client, "slow", 2, 1).await?;
    assert!(
        stats["last_error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("400:duration_ms"),
        "{stats}"
    );
    assert!(echo.is_running(), "bad input never stops the service");
    Ok(())
}

/// DESIGN.md: a 400 "says which field was wrong". A value of the wrong type does not: the
/// field is taken from the first backquoted word of serde's message, which for
/// `invalid type: integer `5`, expected a string` is the *value* `5` (and for a number given as
/// a bad string, `{"duration_ms":"abc"}`, no field at all). Product bug in
/// `shared/src/codec.rs` (`field_of_serde_error`), reported to the lead.
#[tokio::test]
async fn wrongly_typed_field_is_named() -> anyhow::Result<()> {
    let server = NatsServer::start().await?;
    let client = server.client().await;
    let mut echo = spawn_echo(&server, &[])?;
    wait_for_instances(&client, "echo", 1, &mut [&mut echo]).await?;
    let reply = raw_request(&client, ECHO, None, r#"{"message":5}"#).await?;
    assert_eq!(assert_error_reply(&reply, 400)["field"], "message");
    let reply = raw_request(&client, SLOW, None, r#"{"duration_ms":"abc"}"#).await?;
    assert_eq!(assert_error_reply(&reply, 400)["field"], "duration_ms");
    Ok(())
}

#[tokio::test]
async fn bad_settings_are_all_reported_with_exit_64() -> anyhow::Result<()> {
    let mut echo = ChildProcess::spawn(
        bin_path("plantd-echo"),
        ["--set", "max_slow_ms=soon", "--set", "nope=1"],
        no_env(),
    )?;
    let status = echo
        .wait_with_deadline(DEADLINE)
        .await
        .expect("exits on bad settings");
    let stderr = echo.stderr();
    assert_eq!(status.code(), Some(64), "stderr:\n{stderr}");
    assert!(
        stderr.contains("max_slow_ms"),
        "names max_slow_ms:\n{stderr}"
    );
    assert!(stderr.contains("nope"), "names nope:\n{stderr}");
    Ok(())
}
