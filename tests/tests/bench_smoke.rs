//! Smoke test of `plant bench --local`: every scenario runs end to end against a private
//! nats-server and real service children, and the JSON report carries numbers for both paths.
//!
//! It asserts no timing thresholds — a debug build on a shared machine says nothing about
//! performance; docs/performance.md holds the release figures — only that the bench works:
//! exit 0, a parseable report, every scenario measured on both paths without failures and
//! with its whole count done, a ratio, memory readings for the services it started (the bus
//! service included), and a verdict slot for every goal.

use std::time::Duration;

use plantd_tests::{ChildProcess, bin_path};
use serde_json::Value;

/// Far above the ~5 s the tiny run takes in a debug build, for a loaded machine.
const DEADLINE: Duration = Duration::from_secs(120);

const SCENARIOS: [&str; 17] = [
    "echo-1",
    "echo-64",
    "state-get-64",
    "state-set-1",
    "state-set-64",
    "state-set-naive-64",
    "state-watch",
    "state-set-full-64",
    "bus-pub",
    "bus-pub-captured",
    "bus-capture",
    "pipe-64",
    "control-under-load",
    "http-state-get-64",
    "http-proxy-get-64",
    "http-watch",
    "edge-catchup",
];

/// Operations per round and path of the smoke run.
const COUNT: u64 = 40;

fn positive(value: &Value) -> bool {
    value.as_f64().is_some_and(|v| v > 0.0 && v.is_finite())
}

#[tokio::test]
async fn bench_local_measures_every_scenario() -> anyhow::Result<()> {
    let count = COUNT.to_string();
    let mut bench = ChildProcess::spawn(
        bin_path("plant"),
        [
            "bench",
            "--local",
            "--count",
            count.as_str(),
            "--rounds",
            "1",
            "--keys",
            "200",
            "-o",
            "json",
        ],
        std::iter::empty::<(&str, &str)>(),
    )?;
    let Some(status) = bench.wait_with_deadline(DEADLINE).await else {
        bench.kill()?;
        panic!(
            "plant bench did not finish within {DEADLINE:?}; stderr:\n{}",
            bench.stderr()
        );
    };
    assert!(
        status.success(),
        "plant bench exited with {status}; stderr:\n{}",
        bench.stderr()
    );
    let report: Value = serde_json::from_str(&bench.stdout())
        .map_err(|e| anyhow::anyhow!("report is not JSON ({e}):\n{}", bench.stdout()))?;

    let scenarios = report["scenarios"]
        .as_array()
        .expect("the report lists its scenarios");
    let names: Vec<&str> = scenarios
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, SCENARIOS, "every scenario, in order");
    for scenario in scenarios {
        let name = scenario["name"].as_str().unwrap_or("?");
        assert!(
            scenario.get("skipped").is_none(),
            "{name} was skipped: {scenario}"
        );
        assert!(
            scenario.get("failures").is_none(),
            "{name} had failures: {scenario}"
        );
        assert_eq!(scenario["count"], COUNT, "{name}");
        for path in ["plantd", "baseline"] {
            let numbers = &scenario[path];
            for figure in ["throughput", "p50_us", "p99_us", "max_us"] {
                assert!(
                    positive(&numbers[figure]["median"]),
                    "{name} {path} {figure}: {numbers}"
                );
            }
            assert_eq!(numbers["errors"], 0, "{name} {path}");
            assert_eq!(numbers["rounds"].as_array().map(Vec::len), Some(1));
            assert_eq!(
                numbers["rounds"][0]["completed"], COUNT,
                "{name} {path}: every operation (message, item) of the round done: {numbers}"
            );
        }
        for ratio in ["throughput", "p50"] {
            assert!(
                positive(&scenario["ratio"][ratio]["median"]),
                "{name} ratio {ratio}: {scenario}"
            );
        }
    }
    let named = |wanted: &str| {
        scenarios
            .iter()
            .find(|s| s["name"] == wanted)
            .unwrap_or_else(|| panic!("no scenario {wanted}"))
    };
    let set = named("state-set-64");
    assert!(
        set["plantd"]["mirror_catch_up_ms"]["median"].is_f64(),
        "the mirror caught up after each state-set-64 round: {set}"
    );
    let bus_pub = named("bus-pub");
    assert!(
        bus_pub["plantd"]["mirror_catch_up_ms"]["median"].is_f64(),
        "the data bus's capture stream stored each bus-pub round: {bus_pub}"
    );
    let captured = named("bus-pub-captured");
    for path in ["plantd", "baseline"] {
        assert!(
            captured[path]["mirror_catch_up_ms"]["median"].is_f64(),
            "both bus-pub-captured paths waited for their capture streams: {captured}"
        );
    }
    let control = named("control-under-load");
    assert!(
        positive(&control["plantd"]["load_per_s"]["median"]),
        "the data bus was flooded beside the loaded control-under-load round: {control}"
    );
    assert!(
        control["baseline"].get("load_per_s").is_none(),
        "the idle control-under-load round ran alone: {control}"
    );

    let memory = report["memory"].as_array().expect("memory readings");
    for process in [
        "echo",
        "state (normal)",
        "state (full)",
        "buses",
        "nats-server",
    ] {
        let entry = memory
            .iter()
            .find(|m| m["service"] == process)
            .unwrap_or_else(|| panic!("no memory reading for {process}: {memory:?}"));
        assert!(positive(&entry["idle_mb"]), "{process}: {entry}");
        assert!(positive(&entry["peak_mb"]), "{process}: {entry}");
    }

    let goals = report["goals"].as_array().expect("goals");
    assert!(
        goals.len() >= 10 + 8,
        "10 scenario goals and 2 per service: {goals:?}"
    );
    for goal in goals {
        assert!(goal["met"].is_boolean(), "every goal measured: {goal}");
    }
    Ok(())
}
