//! Running a scenario: warm-up, then baseline and plantd rounds interleaved.
//!
//! Both paths first run a short unmeasured warm-up (connections, caches, SQLite pages, JIT-free
//! but allocator-warm). Then the rounds alternate — baseline, plantd, plantd, baseline, … (the
//! first path of each pair swaps every round) — so a slow drift of the machine (another build,
//! a page-cache flush) lands on both paths alike, and round *i* of plantd is compared with
//! round *i* of its baseline.

use super::{
    args::{BenchArgs, Scenario},
    load::closed_loop,
    mirror_wait,
    progress::Progress,
    report::ScenarioReport,
    scenarios::{Drive, Pair, Side},
    stats::{PathSummary, Ratio, RoundStats},
};

/// Operations `scenario` plans for the progress bar (warm-ups and every round of both paths).
pub fn planned_ops(scenario: Scenario, args: &BenchArgs) -> u64 {
    let per_path = args.warmup_for(scenario) + args.count_for(scenario) * args.round_count();
    (per_path * 2) as u64
}

/// Measures both sides of `scenario`.
pub async fn measure(
    scenario: Scenario,
    pair: &Pair,
    args: &BenchArgs,
    progress: &mut Progress,
) -> ScenarioReport {
    let name = scenario.name();
    let warmup = args.warmup_for(scenario);
    let mut failures = Vec::new();
    for side in [&pair.baseline, &pair.plantd] {
        progress.phase(format!("{name}: warming up {}", side.label));
        let (_, error) = round(side, scenario, warmup, args, progress).await;
        if let Some(err) = error {
            failures.push(format!("{} warm-up: {err}", side.label));
        }
    }
    let rounds = args.round_count();
    let (mut plantd, mut baseline) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let order = if r % 2 == 0 {
            [(&pair.baseline, false), (&pair.plantd, true)]
        } else {
            [(&pair.plantd, true), (&pair.baseline, false)]
        };
        for (side, is_plantd) in order {
            progress.phase(format!("{name}: round {}/{rounds} {}", r + 1, side.label));
            let count = args.count_for(scenario);
            let (stats, error) = round(side, scenario, count, args, progress).await;
            if let Some(err) = error {
                let message = format!(
                    "{} round {}: {} failed, first: {err}",
                    side.label,
                    r + 1,
                    stats.errors
                );
                progress.note(&format!("{name}: {message}"));
                failures.push(message);
            }
            if is_plantd {
                plantd.push(stats);
            } else {
                baseline.push(stats);
            }
        }
    }
    ScenarioReport {
        name,
        count: args.count_for(scenario),
        concurrency: scenario.concurrency(),
        skipped: None,
        follower: scenario.follower(),
        ratio: Some(Ratio::paired(&plantd, &baseline)),
        plantd: Some(PathSummary::new(&pair.plantd.label, plantd)),
        baseline: Some(PathSummary::new(&pair.baseline.label, baseline)),
        failures,
    }
}

/// One round of `count` operations of one side; waits for the mirror (or capture stream) after
/// plantd writes.
async fn round(
    side: &Side,
    scenario: Scenario,
    count: usize,
    args: &BenchArgs,
    progress: &mut Progress,
) -> (RoundStats, Option<String>) {
    let before = match &side.mirror {
        Some(kv) => mirror_wait::last_sequence(kv).await.ok(),
        None => None,
    };
    let out = match &side.drive {
        Drive::Ops(op) => {
            closed_loop(op, count, scenario.concurrency(), args.duration, progress).await
        }
        Drive::Round(round) => round(count, args.duration, progress.clone()).await,
    };
    let mut stats = out.stats;
    if let (Some(kv), Some(before)) = (&side.mirror, before) {
        stats.mirror_catch_up_ms = mirror_wait::caught_up(kv, before + stats.completed as u64)
            .await
            .map(|d| d.as_secs_f64() * 1e3);
    }
    progress.block_done(count as u64);
    (stats, out.first_error)
}
