//! One trace from `plant state set` through the state service to its commit and KV publish,
//! received by an OTLP/HTTP collector this test runs in-process.
//!
//! `plant` (with `PLANTD_OTLP_ENDPOINT`) sends the request with its span as `traceparent`; the
//! state service (with `otlp_endpoint`) makes its request span a child of it and its group
//! commit span a child of that, and the KV mirror's message carries the trace's `traceparent`.
//! The collector decodes the OTLP protobuf export
//! (`ExportTraceServiceRequest`, the fields read here are declared below) and the test checks
//! the three spans share one trace and nest. Without the settings nothing is exported
//! (`every_service_serves_prometheus_metrics` and the rest run with tracing off).

mod foundation;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, routing::post};
use foundation::{DEADLINE, no_env, wait_for_instances};
use plantd_tests::{ChildProcess, NatsServer, bin_path, eventually};
use prost::Message as _;

/// The OTLP messages, as far as this test reads them (opentelemetry-proto field numbers).
mod otlp {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportTraceServiceRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_spans: Vec<ResourceSpans>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceSpans {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        #[prost(message, repeated, tag = "2")]
        pub scope_spans: Vec<ScopeSpans>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        #[prost(string, tag = "1")]
        pub string_value: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeSpans {
        #[prost(message, repeated, tag = "2")]
        pub spans: Vec<Span>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub span_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "4")]
        pub parent_span_id: Vec<u8>,
        #[prost(string, tag = "5")]
        pub name: String,
    }
}

/// One received span: `(service, name, trace id, span id, parent span id)`, ids in hex.
type Received = (String, String, String, String, String);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn collect(State(spans): State<Arc<Mutex<Vec<Received>>>>, body: Bytes) -> &'static str {
    if let Ok(request) = otlp::ExportTraceServiceRequest::decode(body) {
        let mut spans = spans.lock().expect("spans");
        for rs in request.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(|v| v.string_value.clone())
                .unwrap_or_default();
            for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                spans.push((
                    service.clone(),
                    span.name,
                    hex(&span.trace_id),
                    hex(&span.span_id),
                    hex(&span.parent_span_id),
                ));
            }
        }
    }
    ""
}

#[tokio::test]
async fn a_state_set_is_one_trace_from_the_cli_to_the_commit() -> anyhow::Result<()> {
    let spans: Arc<Mutex<Vec<Received>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let collector = format!("http://{}", listener.local_addr()?);
    let app = Router::new()
        .route("/v1/traces", post(collect))
        .with_state(Arc::clone(&spans));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let server = NatsServer::start().await?;
    let client = server.client().await;
    let data = tempfile::tempdir()?;
    let mut state = ChildProcess::spawn(
        bin_path("plantd-state"),
        [
            format!("--set=nats_url={}", server.url()),
            format!("--set=data_dir={}", data.path().display()),
            format!("--set=otlp_endpoint={collector}"),
            "--set=log_ship=false".into(),
        ],
        no_env(),
    )?;
    wait_for_instances(&client, "state", 1, &mut [&mut state]).await?;
    let url = server.url();
    for args in [
        vec!["--server", url.as_str(), "scope", "create", "site1"],
        vec![
            "--server",
            url.as_str(),
            "state",
            "set",
            "site1",
            "temp",
            "21",
        ],
    ] {
        let mut command = plantd_tests::plant_command(&args);
        command.env("PLANTD_OTLP_ENDPOINT", &collector);
        let out = plantd_tests::run_to_end(command, None, DEADLINE).await?;
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The KV mirror's message carries the writer's trace, so a watcher can join it.
    let js = async_nats::jetstream::new(client.clone());
    let stream = js.get_stream("KV_plantd-state").await?;
    let subject = format!(
        "$KV.plantd-state.{}",
        plantd_state::kvkey::encode("site1", "temp")
    );
    // Polled: the mirror may store the change just after the set's reply.
    let (stream, subject) = (&stream, &subject);
    let traceparent = eventually(Duration::from_secs(10), || async move {
        let message = stream.get_last_raw_message_by_subject(subject).await?;
        message
            .headers
            .get("traceparent")
            .map(|v| v.as_str().to_string())
            .ok_or_else(|| anyhow::anyhow!("no traceparent on {subject}"))
    })
    .await?;
    println!("KV message {subject}: traceparent {traceparent}");
    // `00-<trace id>-<span id>-<flags>`: the set's trace, which the spans must form.
    let set_trace = traceparent
        .split('-')
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        set_trace.len(),
        32,
        "the KV message carries a traceparent: {traceparent:?}"
    );

    // The state service exports on its batch interval (5 s by default).
    let trace = eventually(Duration::from_secs(30), || async {
        let spans = spans.lock().expect("spans").clone();
        let root = spans
            .iter()
            .find(|s| {
                s.0 == "plant"
                    && s.1 == "plant"
                    && s.2 == set_trace
                    && spans.iter().any(|c| c.1 == "state.commit" && c.2 == s.2)
            })
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no complete trace {set_trace} yet: {spans:?}"))?;
        let in_trace: Vec<Received> = spans.into_iter().filter(|s| s.2 == root.2).collect();
        anyhow::Ok(in_trace)
    })
    .await?;
    let by_id: BTreeMap<&str, &Received> = trace.iter().map(|s| (s.3.as_str(), s)).collect();
    for span in &trace {
        let parent = by_id
            .get(span.4.as_str())
            .map(|p| format!("{} {}", p.0, p.1));
        println!(
            "trace {}: {} {} (parent: {})",
            span.2,
            span.0,
            span.1,
            parent.as_deref().unwrap_or("-")
        );
    }
    let find = |service: &str, name: &str| {
        trace
            .iter()
            .find(|s| s.0 == service && s.1 == name)
            .unwrap_or_else(|| panic!("{service} {name} in the trace: {trace:?}"))
    };
    let (root, request, commit) = (
        find("plant", "plant"),
        find("state", "request"),
        find("state", "state.commit"),
    );
    assert!(
        root.4.is_empty() || !by_id.contains_key(root.4.as_str()),
        "plant's span is the root"
    );
    assert_eq!(
        request.4, root.3,
        "the state service's request span is a child of plant's"
    );
    assert_eq!(
        commit.4, request.3,
        "the commit span is a child of the request span"
    );
    Ok(())
}
