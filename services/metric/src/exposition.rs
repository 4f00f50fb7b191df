//! The latest sample as Prometheus series, added to the module's `GET /metrics`.

use plantd_schemas::metric::v1::Sample;
use plantd_shared::prometheus::Exposition;

/// The Prometheus text of one sample alone (tests, tools).
pub fn render(sample: &Sample) -> String {
    let mut out = Exposition::new();
    render_into(sample, &mut out);
    out.finish()
}

/// Adds one sample's series to `out`; every series carries `host`. The module's NATS
/// connection is in the runtime's series (`plantd_nats_client_*`), not here.
pub fn render_into(sample: &Sample, out: &mut Exposition) {
    let host = [("host", sample.host.as_str())];
    let h = sample.host_metrics.clone().unwrap_or_default();
    let p = sample.process.unwrap_or_default();
    let gauges: [(&str, &str, f64); 6] = [
        (
            "plantd_host_cpu_busy_ratio",
            "Share of all CPUs' time spent busy since the previous sample (0..1).",
            h.cpu_busy_ratio,
        ),
        ("plantd_host_cpus", "CPUs of the host.", f64::from(h.cpus)),
        ("plantd_host_load1", "One-minute load average.", h.load1),
        (
            "plantd_host_memory_total_bytes",
            "Memory of the host.",
            h.memory_total_bytes as f64,
        ),
        (
            "plantd_host_memory_available_bytes",
            "Memory that can be allocated without swapping.",
            h.memory_available_bytes as f64,
        ),
        (
            "plantd_metric_sample_sequence",
            "Number of the latest sample since the module started.",
            sample.sequence as f64,
        ),
    ];
    for (name, help, value) in gauges {
        out.gauge(name, help, &host, value);
    }
    let disk = [
        ("host", sample.host.as_str()),
        ("path", h.disk_path.as_str()),
    ];
    out.gauge(
        "plantd_host_disk_total_bytes",
        "Size of the file system holding path.",
        &disk,
        h.disk_total_bytes as f64,
    );
    out.gauge(
        "plantd_host_disk_available_bytes",
        "Bytes available to unprivileged users on the file system holding path.",
        &disk,
        h.disk_available_bytes as f64,
    );
    out.gauge(
        "plantd_process_resident_memory_bytes",
        "Resident memory of the metric module.",
        &host,
        p.rss_bytes as f64,
    );
    out.counter(
        "plantd_process_cpu_seconds_total",
        "CPU time of the metric module.",
        &host,
        p.cpu_seconds_total,
    );
    out.gauge(
        "plantd_process_threads",
        "Threads of the metric module.",
        &host,
        f64::from(p.threads),
    );
    out.gauge(
        "plantd_process_open_fds",
        "Open file descriptors of the metric module.",
        &host,
        f64::from(p.open_fds),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use plantd_schemas::metric::v1::HostMetrics;

    #[test]
    fn every_series_has_the_host_label_and_one_header() {
        let text = render(&Sample {
            host: "plant-a".into(),
            sequence: 3,
            host_metrics: Some(HostMetrics {
                cpus: 2,
                disk_path: "/".into(),
                ..HostMetrics::default()
            }),
            ..Sample::default()
        });
        assert!(
            text.contains("plantd_host_cpus{host=\"plant-a\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("plantd_host_disk_total_bytes{host=\"plant-a\",path=\"/\"} 0\n"));
        assert_eq!(
            text.matches("# TYPE plantd_process_cpu_seconds_total counter")
                .count(),
            1
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.contains("host=\"plant-a\""), "{line}");
        }
    }
}
