//! The bench's output: small serializable structs for `--output json`, and for people a
//! scenario table, footnotes, a memory table and the goals section.
//!
//! Every figure of the table is the median over the rounds with the min–max range in
//! parentheses (just the median when there was one round).

use std::io::Write;

use serde::Serialize;

use super::{
    goals::Goal,
    memory::ServiceMemory,
    stats::{PathSummary, Ratio, Spread},
};
use crate::output::{self, OutputFormat};

/// One scenario's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioReport {
    /// Scenario name.
    pub name: &'static str,
    /// Operations per round and path.
    pub count: usize,
    /// Operations in flight.
    pub concurrency: usize,
    /// Why it did not run, if it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// What the plantd path's `mirror_catch_up_ms` waits for, and from which event (see
    /// [`super::args::Scenario::follower`]); for the table's notes.
    #[serde(skip)]
    pub follower: (&'static str, &'static str),
    /// The plantd path.
    pub plantd: Option<PathSummary>,
    /// The raw baseline measured in the same run.
    pub baseline: Option<PathSummary>,
    /// plantd relative to the baseline.
    pub ratio: Option<Ratio>,
    /// Failed operations, one line per round that had any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

impl ScenarioReport {
    /// A scenario that was not run, and why.
    pub fn skipped(name: &'static str, count: usize, concurrency: usize, why: String) -> Self {
        ScenarioReport {
            name,
            count,
            concurrency,
            skipped: Some(why),
            follower: ("", ""),
            plantd: None,
            baseline: None,
            ratio: None,
            failures: Vec::new(),
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// `local` (own server and services) or `server` (`--server`).
    pub mode: &'static str,
    /// The server's URL.
    pub server: String,
    /// The server's version as it announced it.
    pub nats_server_version: String,
    /// `release` or `debug` build of `plant` (and, with `--local`, of the services).
    pub build: &'static str,
    /// Request encoding.
    pub encoding: &'static str,
    /// CPU cores the OS reports.
    pub cores: usize,
    /// Rounds per path.
    pub rounds: usize,
    /// Longest round, seconds.
    pub round_limit_s: f64,
    /// Per scenario.
    pub scenarios: Vec<ScenarioReport>,
    /// Per process started (`--local` only).
    pub memory: Vec<ServiceMemory>,
    /// The goals.
    pub goals: Vec<Goal>,
}

/// Writes the report as JSON or as tables.
pub fn render(
    out: &mut dyn Write,
    format: OutputFormat,
    report: &BenchReport,
) -> std::io::Result<()> {
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            writeln!(out)
        }
        OutputFormat::Table => tables(out, report),
    }
}

fn tables(out: &mut dyn Write, report: &BenchReport) -> std::io::Result<()> {
    writeln!(
        out,
        "plant bench: {} nats-server {} at {}; {} build; {}; {} cores",
        report.mode,
        report.nats_server_version,
        report.server,
        report.build,
        report.encoding,
        report.cores
    )?;
    let cell = if report.rounds > 1 {
        "median (min–max) over the rounds"
    } else {
        "one round"
    };
    writeln!(
        out,
        "{} round(s) per path, baseline and plantd interleaved; each cell: {cell}\n",
        report.rounds
    )?;
    let headers = [
        "SCENARIO",
        "PATH",
        "COUNT",
        "CONC",
        "OPS/S",
        "P50 µs",
        "P99 µs",
        "MAX µs",
        "VS BASELINE",
    ];
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for s in &report.scenarios {
        if let Some(why) = &s.skipped {
            rows.push(vec![
                s.name.to_string(),
                "skipped".into(),
                s.count.to_string(),
                s.concurrency.to_string(),
            ]);
            notes.push(format!("{}: skipped: {why}", s.name));
            continue;
        }
        let ratio = s
            .ratio
            .map(|r| format!("thr {} · p50 {}", times(r.throughput), times(r.p50)));
        for (i, path) in [&s.plantd, &s.baseline].into_iter().flatten().enumerate() {
            rows.push(vec![
                if i == 0 {
                    s.name.to_string()
                } else {
                    String::new()
                },
                path.path.clone(),
                s.count.to_string(),
                s.concurrency.to_string(),
                spread(path.throughput, 0),
                spread(path.p50_us, 0),
                spread(path.p99_us, 0),
                spread(path.max_us, 0),
                if i == 0 {
                    ratio.clone().unwrap_or_default()
                } else {
                    String::new()
                },
            ]);
            if let Some(lag) = path.mirror_catch_up_ms {
                let (what, after) = s.follower;
                notes.push(format!(
                    "{} {}: {what} caught up {} ms after each round's last {after}",
                    s.name,
                    path.path,
                    spread(lag, 1)
                ));
            }
            if let Some(load) = path.load_per_s {
                notes.push(format!(
                    "{} {}: the background load beside each round ran at {} ops/s",
                    s.name,
                    path.path,
                    spread(load, 0)
                ));
            }
            if path.truncated_rounds > 0 {
                notes.push(format!(
                    "{} {}: {} round(s) stopped at the {:.0}s limit before their count",
                    s.name, path.path, path.truncated_rounds, report.round_limit_s
                ));
            }
        }
        notes.extend(s.failures.iter().map(|f| format!("{}: {f}", s.name)));
    }
    output::table(out, &headers, &rows)?;
    if !notes.is_empty() {
        writeln!(out)?;
        for note in notes {
            writeln!(out, "  * {note}")?;
        }
    }
    if !report.memory.is_empty() {
        writeln!(
            out,
            "\nmemory (idle = VmRSS once ready, before load; peak = VmHWM after its load)"
        )?;
        let rows: Vec<Vec<String>> = report
            .memory
            .iter()
            .map(|m| {
                let mb = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.1}"));
                vec![
                    m.service.clone(),
                    m.pid.to_string(),
                    mb(m.idle_mb),
                    mb(m.peak_mb),
                ]
            })
            .collect();
        output::table(out, &["PROCESS", "PID", "IDLE MB", "PEAK MB"], &rows)?;
    }
    writeln!(out, "\ngoals (reported, not asserted)")?;
    let rows: Vec<Vec<String>> = report
        .goals
        .iter()
        .map(|g| {
            vec![
                g.goal.clone(),
                g.target.clone(),
                g.measured.clone().unwrap_or_else(|| "-".into()),
                g.verdict().to_string(),
            ]
        })
        .collect();
    output::table(out, &["GOAL", "TARGET", "MEASURED", "RESULT"], &rows)
}

/// `median (min–max)` with `decimals`, or just the median when all rounds agree exactly.
fn spread(s: Spread, decimals: usize) -> String {
    if s.min == s.max {
        format!("{:.*}", decimals, s.median)
    } else {
        format!(
            "{:.*} ({:.*}–{:.*})",
            decimals, s.median, decimals, s.min, decimals, s.max
        )
    }
}

/// A ratio spread as `0.93× (0.90–0.95)`.
fn times(s: Spread) -> String {
    if s.min == s.max {
        format!("{:.2}×", s.median)
    } else {
        format!("{:.2}× ({:.2}–{:.2})", s.median, s.min, s.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::bench::stats::RoundStats;

    #[test]
    fn spreads_print_median_then_range() {
        let s = Spread {
            median: 2.0,
            min: 1.0,
            max: 3.5,
        };
        assert_eq!(spread(s, 0), "2 (1–4)");
        assert_eq!(spread(s, 1), "2.0 (1.0–3.5)");
        assert_eq!(times(s), "2.00× (1.00–3.50)");
        let one = Spread {
            median: 7.0,
            min: 7.0,
            max: 7.0,
        };
        assert_eq!(times(one), "7.00×");
    }

    #[test]
    fn renders_every_section() {
        let round = RoundStats::from_samples(
            vec![std::time::Duration::from_micros(100)],
            0,
            std::time::Duration::from_millis(1),
            false,
        );
        let path = |name: &str| PathSummary::new(name, vec![round.clone()]);
        let report = BenchReport {
            mode: "local",
            server: "nats://127.0.0.1:1".into(),
            nats_server_version: "2.15.1".into(),
            build: "debug",
            encoding: "protobuf",
            cores: 2,
            rounds: 1,
            round_limit_s: 10.0,
            scenarios: vec![
                ScenarioReport {
                    name: "echo-1",
                    count: 1,
                    concurrency: 1,
                    skipped: None,
                    follower: ("the KV mirror", "ack"),
                    ratio: Some(Ratio::paired(
                        std::slice::from_ref(&round),
                        std::slice::from_ref(&round),
                    )),
                    plantd: Some(path("plantd")),
                    baseline: Some(path("raw echo")),
                    failures: vec![],
                },
                ScenarioReport::skipped("state-set-64", 1, 64, "not running".into()),
            ],
            memory: vec![],
            goals: super::super::goals::evaluate(&[], &[]),
        };
        let mut out = Vec::new();
        render(&mut out, OutputFormat::Table, &report).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.lines()
                .any(|l| l.starts_with("echo-1 ") && l.contains(" plantd ")),
            "{text}"
        );
        assert!(text.contains("thr 1.00× · p50 1.00×"), "{text}");
        assert!(
            text.contains("state-set-64: skipped: not running"),
            "{text}"
        );
        assert!(text.contains("not measured"), "{text}");
        let mut json = Vec::new();
        render(&mut json, OutputFormat::Json, &report).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            value["scenarios"][0]["plantd"]["throughput"]["median"],
            1000.0
        );
    }
}
