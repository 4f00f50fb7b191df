//! The metric module: how the machine, the module and its NATS connection are doing, in the
//! three forms people use.
//!
//! Every `interval_ms` it samples the host (cpu, load, memory, disk) and its own process from
//! `/proc` ([`sample`]) plus its NATS connection's counters, and then
//!
//! * publishes the sample as JSON on the data bus, topic `<scope>.metric.<host>` (captured by
//!   the bus's stream, readable by any viewer of the scope);
//! * keeps it as the answer of `plantd.metric.get` (JSON or protobuf, `plantd.metric.v1`);
//! * adds it to the Prometheus text of `GET /metrics` on its health port ([`exposition`]),
//!   after the series every service has.
//!
//! It is a module on the SDK ([`plantd_shared::module`]): registry entry, health (`sampler`
//! degrades when a read fails, with the reason), drain requests.
#![forbid(unsafe_code)]

pub mod config;
pub mod exposition;
pub mod sample;

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use async_nats::Client;
use plantd_schemas::metric::v1::{
    GetReply, GetRequest, HostMetrics, NatsMetrics, ProcessMetrics, Sample,
};
use plantd_shared::{
    ErrorCode, ServiceError,
    bus::Topic,
    codec::Encoding,
    health::{Health, Status},
    module::{Module, host_name, spec::ModuleSpec},
    process::ServeError,
    shutdown::Shutdown,
    subjects, timestamp,
};

pub use config::MetricConfig;

/// Service name: micro name, queue group, subject token, capability.
pub const SERVICE: &str = "metric";

/// The latest sample, shared by the sampler, `plantd.metric.get` and `/metrics`.
pub type Latest = Arc<RwLock<Option<Sample>>>;

/// Runs the metric module until `shutdown` or a drain request, then drains.
pub async fn run(config: MetricConfig, shutdown: Shutdown) -> Result<(), ServeError> {
    ServeError::check_config(&config.problems())?;
    let spec = ModuleSpec::new(SERVICE, env!("CARGO_PKG_VERSION"))
        .map_err(|err| ServeError::Setup(format!("invalid module declaration: {err}")))?;
    let latest: Latest = Arc::default();
    let module = Module::start(spec, &config.module, &config.common, shutdown).await?;
    let for_metrics = Arc::clone(&latest);
    module.metrics().collect(move |out| {
        if let Some(sample) = read_latest(&for_metrics) {
            exposition::render_into(&sample, out);
        }
    });
    let host = host_token(&host_name());
    let topic = if config.bus.is_empty() {
        None
    } else {
        let topic = format!("{}.metric.{host}", config.scope);
        Some(Topic::new(&config.bus, &topic).map_err(|e| ServeError::Setup(e.to_string()))?)
    };
    let sampler = tokio::spawn(sample_until_stopped(SamplerTask {
        client: module.client().clone(),
        health: module.health().clone(),
        latest: Arc::clone(&latest),
        sampler: sample::Sampler::new(&config.disk_path),
        host,
        topic,
        every: Duration::from_millis(config.interval_ms),
        shutdown: module.shutdown().clone(),
    }));
    let for_get = Arc::clone(&latest);
    let builder = module
        .service()
        .description("Host, process and NATS figures: latest sample, data bus, /metrics")
        .endpoint(
            "get",
            subjects::module_op(SERVICE, "get"),
            move |_ctx, _req: GetRequest| {
                let latest = Arc::clone(&for_get);
                async move { get(&latest) }
            },
        );
    let served = module.serve(builder).await;
    sampler.abort();
    served?;
    Ok(())
}

/// `plantd.metric.get`: the latest sample, or 503 before the first one.
fn get(latest: &Latest) -> Result<GetReply, ServiceError> {
    let sample = read_latest(latest).ok_or_else(|| {
        ServiceError::new(ErrorCode::Unavailable, "no sample taken yet; retry shortly")
    })?;
    Ok(GetReply {
        sample: Some(sample),
    })
}

/// A copy of the latest sample.
pub fn read_latest(latest: &Latest) -> Option<Sample> {
    latest
        .read()
        .expect("sample lock is never poisoned: no panics while held")
        .clone()
}

/// The host name as one subject token (dots and wildcards become `-`).
pub fn host_token(host: &str) -> String {
    let token: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if token.is_empty() {
        "localhost".into()
    } else {
        token
    }
}

struct SamplerTask {
    client: Client,
    health: Health,
    latest: Latest,
    sampler: sample::Sampler,
    host: String,
    topic: Option<Topic>,
    every: Duration,
    shutdown: Shutdown,
}

async fn sample_until_stopped(mut task: SamplerTask) {
    let mut ticker = tokio::time::interval(task.every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sequence = 0;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = task.shutdown.wait() => return,
        }
        let (host, process) = match task.sampler.sample() {
            Ok(sampled) => sampled,
            Err(err) => {
                tracing::warn!(error = %err, "cannot sample");
                task.health
                    .set("sampler", Status::Degraded, err.to_string());
                continue;
            }
        };
        sequence += 1;
        let sample = build_sample(&task, sequence, host, process);
        *task
            .latest
            .write()
            .expect("sample lock is never poisoned: no panics while held") = Some(sample.clone());
        let mut status = (Status::Healthy, String::new());
        if let Some(topic) = &task.topic {
            let headers = Encoding::Json.headers();
            let payload = Encoding::Json.encode(&sample);
            if let Err(err) = topic.publish(&task.client, Some(headers), payload).await {
                status = (Status::Degraded, format!("cannot publish samples: {err}"));
            }
        }
        task.health.set("sampler", status.0, status.1);
    }
}

fn build_sample(
    task: &SamplerTask,
    sequence: u64,
    host: sample::HostSample,
    process: sample::ProcessSample,
) -> Sample {
    use std::sync::atomic::Ordering::Relaxed;
    let stats = task.client.statistics();
    Sample {
        host: task.host.clone(),
        sampled_at: Some(timestamp::now()),
        sequence,
        host_metrics: Some(HostMetrics {
            cpu_busy_ratio: host.cpu_busy_ratio,
            cpus: host.cpus,
            load1: host.load1,
            memory_total_bytes: host.memory_total_bytes,
            memory_available_bytes: host.memory_available_bytes,
            disk_path: host.disk_path,
            disk_total_bytes: host.disk_total_bytes,
            disk_available_bytes: host.disk_available_bytes,
        }),
        process: Some(ProcessMetrics {
            rss_bytes: process.rss_bytes,
            cpu_seconds_total: process.cpu_seconds_total,
            threads: process.threads,
            open_fds: process.open_fds,
        }),
        nats: Some(NatsMetrics {
            in_msgs: stats.in_messages.load(Relaxed),
            out_msgs: stats.out_messages.load(Relaxed),
            in_bytes: stats.in_bytes.load(Relaxed),
            out_bytes: stats.out_bytes.load(Relaxed),
            connects: stats.connects.load(Relaxed),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_become_one_token() {
        assert_eq!(host_token("plant-a.example.com"), "plant-a-example-com");
        assert_eq!(host_token("a*b>c d"), "a-b-c-d");
        assert_eq!(host_token(""), "localhost");
    }

    #[test]
    fn get_before_the_first_sample_is_503() {
        let latest: Latest = Arc::default();
        let err = get(&latest).unwrap_err();
        assert_eq!(err.code, ErrorCode::Unavailable);
        *latest.write().unwrap() = Some(Sample {
            sequence: 7,
            ..Sample::default()
        });
        assert_eq!(get(&latest).unwrap().sample.unwrap().sequence, 7);
    }
}
