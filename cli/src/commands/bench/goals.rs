//! The performance goals plantd is held to, checked against one run's figures.
//!
//! Goals are reported, never asserted: a run on a busy laptop should still print its numbers.
//! Each is met, missed, or "not measured" when its scenario was not run or was skipped.
//! Ratio goals use the median of the per-round paired ratios (see [`super::stats::Ratio`]).

use serde::Serialize;

use super::{memory::ServiceMemory, report::ScenarioReport, stats::Ratio};

/// Idle resident memory a service should stay under, MB.
pub const IDLE_MB: f64 = 15.0;
/// Peak resident memory under load a service should stay under, MB.
pub const PEAK_MB: f64 = 40.0;

/// One goal and how the run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Goal {
    /// What is measured.
    pub goal: String,
    /// The bound.
    pub target: String,
    /// The measured figure, formatted; `None` when not measured.
    pub measured: Option<String>,
    /// Whether the bound holds; `None` when not measured.
    pub met: Option<bool>,
}

impl Goal {
    fn new(
        goal: String,
        target: String,
        measured: Option<(f64, String)>,
        at_most: bool,
        bound: f64,
    ) -> Goal {
        let met = measured
            .as_ref()
            .map(|(v, _)| if at_most { *v <= bound } else { *v >= bound });
        Goal {
            goal,
            target,
            measured: measured.map(|(_, text)| text),
            met,
        }
    }

    /// `met`, `MISSED` or `not measured`.
    pub fn verdict(&self) -> &'static str {
        match self.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        }
    }
}

/// Which ratio of a scenario a goal reads.
#[derive(Clone, Copy)]
enum Figure {
    Throughput,
    P50,
}

/// The scenario goals: (scenario, figure, at most?, bound, baseline name).
///
/// What each says: the runtime adds at most 10 % to a bare responder's throughput and 15 % to
/// its latency (echo); a cached get keeps 85 % of a bare responder's throughput; SQLite truth
/// plus the pipelined mirror cost nothing over NATS's own KV (`state-set-64` vs the kv
/// responder) and group commit beats one fsync per write threefold (`state-set-full-64`); a
/// watcher hears a set at most 20 % later than it hears a bare KV put made for a request.
/// Buses: capturing the data bus costs live listeners at most 10 % of core NATS's delivery
/// rate (`bus-pub`), and plantd's bus code at most 10 % of a raw client's on a subject captured
/// the same way (`bus-pub-captured`); acked publishes onto a bus and items through a pipe keep 80 % of raw
/// JetStream's rate (`bus-capture`, `pipe-64`); a flooded data bus at most doubles a control
/// message's median latency (`control-under-load`). The web-api bridge keeps 70 % of the NATS
/// path's get throughput (`http-state-get-64`), its own layers cost at most 20 % of a bare
/// HTTP→NATS proxy's (`http-proxy-get-64`), and delivers a change by SSE at most 50 % later
/// than a NATS watch does (`http-watch`).
const SCENARIO_GOALS: [(&str, Figure, bool, f64, &str); 14] = [
    ("echo-64", Figure::Throughput, false, 0.9, "raw echo"),
    ("echo-1", Figure::P50, true, 1.15, "raw echo"),
    ("state-get-64", Figure::Throughput, false, 0.85, "raw echo"),
    (
        "state-set-64",
        Figure::Throughput,
        false,
        1.0,
        "kv responder",
    ),
    (
        "state-set-full-64",
        Figure::Throughput,
        false,
        3.0,
        "naive responder (FULL)",
    ),
    (
        "state-watch",
        Figure::P50,
        true,
        1.2,
        "request→KV put→watch",
    ),
    ("bus-pub", Figure::Throughput, false, 0.9, "raw core NATS"),
    (
        "bus-pub-captured",
        Figure::Throughput,
        false,
        0.9,
        "raw core NATS, captured",
    ),
    (
        "bus-capture",
        Figure::Throughput,
        false,
        0.8,
        "raw JetStream publish",
    ),
    ("pipe-64", Figure::Throughput, false, 0.8, "raw pull loop"),
    (
        "control-under-load",
        Figure::P50,
        true,
        2.0,
        "idle data bus",
    ),
    (
        "http-state-get-64",
        Figure::Throughput,
        false,
        0.7,
        "state-get over nats",
    ),
    (
        "http-proxy-get-64",
        Figure::Throughput,
        false,
        0.8,
        "bare HTTP→NATS proxy",
    ),
    (
        "http-watch",
        Figure::P50,
        true,
        1.5,
        "state-watch over nats",
    ),
];

/// Checks every goal against the run.
pub fn evaluate(scenarios: &[ScenarioReport], memory: &[ServiceMemory]) -> Vec<Goal> {
    let mut goals = Vec::new();
    for (name, figure, at_most, bound, baseline) in SCENARIO_GOALS {
        let ratio: Option<Ratio> = scenarios
            .iter()
            .find(|s| s.name == name && s.skipped.is_none())
            .and_then(|s| s.ratio);
        let (what, value) = match figure {
            Figure::Throughput => ("throughput", ratio.map(|r| r.throughput.median)),
            Figure::P50 => ("p50 latency", ratio.map(|r| r.p50.median)),
        };
        let sign = if at_most { "≤" } else { "≥" };
        goals.push(Goal::new(
            format!("{name} {what} vs {baseline}"),
            format!("{sign} {bound:.2}×"),
            value
                .filter(|v| v.is_finite())
                .map(|v| (v, format!("{v:.2}×"))),
            at_most,
            bound,
        ));
    }
    for service in memory.iter().filter(|m| m.has_goal) {
        for (what, value, bound) in [
            ("idle RSS", service.idle_mb, IDLE_MB),
            ("peak RSS", service.peak_mb, PEAK_MB),
        ] {
            goals.push(Goal::new(
                format!("{} {what}", service.service),
                format!("< {bound:.0} MB"),
                value.map(|v| (v, format!("{v:.1} MB"))),
                true,
                bound,
            ));
        }
    }
    goals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::bench::stats::Spread;

    fn scenario(name: &'static str, throughput: f64, p50: f64) -> ScenarioReport {
        let spread = |v| Spread {
            median: v,
            min: v,
            max: v,
        };
        ScenarioReport {
            name,
            count: 1,
            concurrency: 1,
            skipped: None,
            follower: ("", ""),
            plantd: None,
            baseline: None,
            ratio: Some(Ratio {
                throughput: spread(throughput),
                p50: spread(p50),
            }),
            failures: vec![],
        }
    }

    #[test]
    fn goals_are_met_missed_or_not_measured() {
        let scenarios = [scenario("echo-64", 0.95, 1.0), scenario("echo-1", 1.0, 1.3)];
        let memory = [ServiceMemory {
            service: "echo".into(),
            pid: 1,
            has_goal: true,
            idle_mb: Some(5.0),
            peak_mb: Some(41.0),
        }];
        let goals = evaluate(&scenarios, &memory);
        let verdict = |prefix: &str| {
            goals
                .iter()
                .find(|g| g.goal.starts_with(prefix))
                .map(Goal::verdict)
                .unwrap()
        };
        assert_eq!(verdict("echo-64 throughput"), "met");
        assert_eq!(verdict("echo-1 p50"), "MISSED");
        assert_eq!(verdict("state-watch"), "not measured");
        assert_eq!(verdict("control-under-load p50"), "not measured");
        assert_eq!(verdict("echo idle"), "met");
        assert_eq!(verdict("echo peak"), "MISSED");
    }
}
