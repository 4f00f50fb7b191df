//! OpenTelemetry tracing, off unless configured: spans around requests, W3C trace context in
//! NATS headers, OTLP/HTTP export.
//!
//! With `otlp_endpoint` set (a collector's base URL, e.g. `http://127.0.0.1:4318`), the
//! process's tracing spans are exported as OpenTelemetry spans ([`layer`]). A request carries
//! the caller's span as a `traceparent` header ([`inject_current`], done by
//! [`crate::call::request_raw`]); the runtime makes the handler's span its child
//! ([`set_parent_from`]), so `plant state set` → the state service → the KV mirror is one trace.
//! Off, nothing is created and no header is added: tracing costs nothing.
//!
//! The exporter runs on the SDK's batch thread with a blocking HTTP client, built on a thread of
//! its own (a blocking client must not be made inside the async runtime).

use std::sync::OnceLock;

use async_nats::HeaderMap;
use opentelemetry::{
    global,
    propagation::{Extractor, Injector},
    trace::TracerProvider as _,
};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether spans are exported (and trace context propagated).
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// The tracing layer exporting `service`'s spans to the collector at `endpoint`.
pub fn layer<S>(service: &str, endpoint: &str) -> Result<impl tracing_subscriber::Layer<S>, String>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let service = service.to_string();
    let provider = std::thread::spawn(move || {
        use opentelemetry_otlp::WithExportConfig as _;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(url)
            .build()
            .map_err(|e| format!("cannot set up OTLP export: {e}"))?;
        Ok::<_, String>(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(Resource::builder().with_service_name(service).build())
                .build(),
        )
    })
    .join()
    .map_err(|_| "the OTLP set-up thread panicked".to_string())??;
    global::set_text_map_propagator(TraceContextPropagator::new());
    let tracer = provider.tracer("plantd");
    let _ = PROVIDER.set(provider);
    Ok(tracing_opentelemetry::layer().with_tracer(tracer))
}

/// Exports what is buffered and stops the exporter (at process end).
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.force_flush();
        let _ = provider.shutdown();
    }
}

struct Inject<'a>(&'a mut HeaderMap);

impl Injector for Inject<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

struct Extract<'a>(&'a HeaderMap);

impl Extractor for Extract<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_ref()).collect()
    }
}

/// Adds the current span's context (`traceparent`) to `headers`, when tracing is on.
pub fn inject_current(headers: &mut HeaderMap) {
    if !enabled() {
        return;
    }
    let context = tracing::Span::current().context();
    global::get_text_map_propagator(|p| p.inject_context(&context, &mut Inject(headers)));
}

/// Makes `span` a child of the trace context in `headers`, when tracing is on.
pub fn set_parent_from(span: &tracing::Span, headers: Option<&HeaderMap>) {
    let (true, Some(headers)) = (enabled(), headers) else {
        return;
    };
    let context = global::get_text_map_propagator(|p| p.extract(&Extract(headers)));
    let _ = span.set_parent(context);
}

/// The `traceparent` of the current span, to carry it past a queue (the state mirror).
pub fn current_traceparent() -> Option<String> {
    if !enabled() {
        return None;
    }
    let mut headers = HeaderMap::new();
    inject_current(&mut headers);
    headers.get("traceparent").map(|v| v.as_str().to_string())
}

/// A header map holding `traceparent`, for [`set_parent_from`].
pub fn headers_with(traceparent: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", traceparent);
    headers
}
