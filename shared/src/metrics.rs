//! `GET /metrics` on every service's health port: Prometheus text of what the runtime counts,
//! plus whatever the service adds.
//!
//! The runtime already counts each endpoint's requests, errors by code and handling time
//! ([`crate::micro::stats`]) and bounds handlers in flight; the NATS client counts messages and
//! connects. [`Metrics`] renders those for every instance the process serves, and the
//! collectors a service registers (the state service's commit groups and mirror lag, the metric
//! module's samples) after them. Every series carries `service`.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::{
    Router,
    http::{StatusCode, header},
    routing::get,
};

use crate::{micro::service::ServiceShared, micro::stats::LATENCY_BUCKETS, prometheus::Exposition};

type Collector = Box<dyn Fn(&mut Exposition) + Send + Sync>;

#[derive(Default)]
struct Inner {
    service: String,
    instances: Vec<Arc<ServiceShared>>,
    client: Option<async_nats::Client>,
    collectors: Vec<Collector>,
}

/// What one process exposes on `/metrics`. Cheap to clone; clones share.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics of service `service`.
    pub fn new(service: &str) -> Metrics {
        let metrics = Metrics::default();
        metrics.lock().service = service.to_string();
        metrics
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .expect("metrics lock is never poisoned: no panics while held")
    }

    /// Counts this NATS client's messages and connects.
    pub fn set_client(&self, client: async_nats::Client) {
        self.lock().client = Some(client);
    }

    /// Adds a running instance's endpoints.
    pub fn add_instance(&self, shared: Arc<ServiceShared>) {
        self.lock().instances.push(shared);
    }

    /// Adds series of the service's own, rendered after the runtime's.
    pub fn collect(&self, collector: impl Fn(&mut Exposition) + Send + Sync + 'static) {
        self.lock().collectors.push(Box::new(collector));
    }

    /// The `/metrics` route.
    pub fn routes(&self) -> Router {
        let metrics = self.clone();
        Router::new().route(
            "/metrics",
            get(move || {
                let text = metrics.render();
                async move {
                    (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, crate::prometheus::CONTENT_TYPE)],
                        text,
                    )
                }
            }),
        )
    }

    /// The Prometheus text.
    pub fn render(&self) -> String {
        let inner = self.lock();
        let mut out = Exposition::new();
        let service = inner.service.as_str();
        render_endpoints(&mut out, service, &inner.instances);
        if let Some(client) = &inner.client {
            render_client(&mut out, service, client);
        }
        for collector in &inner.collectors {
            collector(&mut out);
        }
        out.finish()
    }
}

fn render_endpoints(out: &mut Exposition, service: &str, instances: &[Arc<ServiceShared>]) {
    let endpoints: Vec<_> = instances
        .iter()
        .flat_map(|i| {
            i.endpoints
                .iter()
                .map(|e| (e.name.as_str(), e.counters.snapshot()))
        })
        .collect();
    for (endpoint, s) in &endpoints {
        out.counter(
            "plantd_requests_total",
            "Requests answered, errors included.",
            &[("service", service), ("endpoint", endpoint)],
            s.requests as f64,
        );
    }
    for (endpoint, s) in &endpoints {
        for (code, n) in &s.errors_by_code {
            let code = code.as_u16().to_string();
            out.counter(
                "plantd_request_errors_total",
                "Requests answered with an error, by ADR-32 error code.",
                &[
                    ("service", service),
                    ("endpoint", endpoint),
                    ("code", &code),
                ],
                *n as f64,
            );
        }
    }
    for (endpoint, s) in &endpoints {
        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
            .iter()
            .copied()
            .zip(s.latency_buckets.iter().copied())
            .collect();
        out.histogram(
            "plantd_request_duration_seconds",
            "Handling time of answered requests.",
            &[("service", service), ("endpoint", endpoint)],
            &buckets,
            s.processing_ns as f64 / 1e9,
            s.requests,
        );
    }
    for instance in instances {
        out.gauge(
            "plantd_in_flight",
            "Handlers running now.",
            &[("service", service), ("instance", &instance.id)],
            instance.in_flight() as f64,
        );
    }
    for instance in instances {
        out.gauge(
            "plantd_max_in_flight",
            "The instance's bound on handlers running at once.",
            &[("service", service), ("instance", &instance.id)],
            instance.max_in_flight as f64,
        );
    }
}

fn render_client(out: &mut Exposition, service: &str, client: &async_nats::Client) {
    use std::sync::atomic::Ordering::Relaxed;
    let stats = client.statistics();
    let labels = [("service", service)];
    let connects = stats.connects.load(Relaxed);
    out.counter(
        "plantd_nats_reconnects_total",
        "Reconnects to NATS after the first connect.",
        &labels,
        connects.saturating_sub(1) as f64,
    );
    for (name, help, value) in [
        (
            "plantd_nats_client_in_msgs_total",
            "Messages received.",
            stats.in_messages.load(Relaxed),
        ),
        (
            "plantd_nats_client_out_msgs_total",
            "Messages sent.",
            stats.out_messages.load(Relaxed),
        ),
        (
            "plantd_nats_client_in_bytes_total",
            "Payload bytes received.",
            stats.in_bytes.load(Relaxed),
        ),
        (
            "plantd_nats_client_out_bytes_total",
            "Payload bytes sent.",
            stats.out_bytes.load(Relaxed),
        ),
    ] {
        out.counter(name, help, &labels, value as f64);
    }
}
