//! Numbers from latency samples: one round's throughput and percentiles, and the median with
//! min–max of a figure across rounds.
//!
//! Percentiles are read from the sorted samples (nearest rank), which is exact and needs no
//! histogram crate: a round holds at most a few tens of thousands of samples.

use std::time::Duration;

use serde::Serialize;

/// What one round of one path measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundStats {
    /// Operations that succeeded.
    pub completed: usize,
    /// Operations that failed.
    pub errors: usize,
    /// Whether the round stopped at `--duration` before its count.
    pub truncated: bool,
    /// Wall time of the round, seconds.
    pub elapsed_s: f64,
    /// Successful operations per second.
    pub throughput: f64,
    /// Median latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
    /// Slowest operation, microseconds.
    pub max_us: f64,
    /// For plantd writes: how long after the round the KV mirror had caught up, ms (for
    /// `bus-pub`, the capture stream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror_catch_up_ms: Option<f64>,
    /// For a round run beside a background load (`control-under-load`): that load's
    /// successful operations per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_per_s: Option<f64>,
}

impl RoundStats {
    /// Summarises the latencies of the successful operations of a round.
    pub fn from_samples(
        mut latencies: Vec<Duration>,
        errors: usize,
        elapsed: Duration,
        truncated: bool,
    ) -> RoundStats {
        latencies.sort_unstable();
        let secs = elapsed.as_secs_f64();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        RoundStats {
            completed: latencies.len(),
            errors,
            truncated,
            elapsed_s: secs,
            throughput: if secs > 0.0 {
                latencies.len() as f64 / secs
            } else {
                0.0
            },
            p50_us: us(percentile(&latencies, 50.0)),
            p99_us: us(percentile(&latencies, 99.0)),
            max_us: us(latencies.last().copied().unwrap_or_default()),
            mirror_catch_up_ms: None,
            load_per_s: None,
        }
    }
}

/// The nearest-rank percentile `p` (0–100) of sorted samples; zero when there are none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A figure across rounds: its median and its range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Median over the rounds (mean of the middle two for an even number).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; all zero when empty.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Spread {
                median: 0.0,
                min: 0.0,
                max: 0.0,
            };
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Spread {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }
}

/// The rounds of one path, summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathSummary {
    /// What this path is (`plantd`, `raw echo`, …).
    pub path: String,
    /// Operations per second.
    pub throughput: Spread,
    /// Median latency, µs.
    pub p50_us: Spread,
    /// 99th percentile, µs.
    pub p99_us: Spread,
    /// Slowest operation, µs.
    pub max_us: Spread,
    /// Failed operations over all rounds.
    pub errors: usize,
    /// Rounds cut short by `--duration`.
    pub truncated_rounds: usize,
    /// For plantd writes: time for the KV mirror (capture stream) to catch up after a round, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror_catch_up_ms: Option<Spread>,
    /// For rounds run beside a background load: its operations per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_per_s: Option<Spread>,
    /// Every round.
    pub rounds: Vec<RoundStats>,
}

impl PathSummary {
    /// Summarises `rounds` of the path `path`.
    pub fn new(path: &str, rounds: Vec<RoundStats>) -> PathSummary {
        PathSummary {
            path: path.to_string(),
            throughput: Spread::of(rounds.iter().map(|r| r.throughput)),
            p50_us: Spread::of(rounds.iter().map(|r| r.p50_us)),
            p99_us: Spread::of(rounds.iter().map(|r| r.p99_us)),
            max_us: Spread::of(rounds.iter().map(|r| r.max_us)),
            errors: rounds.iter().map(|r| r.errors).sum(),
            truncated_rounds: rounds.iter().filter(|r| r.truncated).count(),
            mirror_catch_up_ms: rounds
                .iter()
                .any(|r| r.mirror_catch_up_ms.is_some())
                .then(|| Spread::of(rounds.iter().filter_map(|r| r.mirror_catch_up_ms))),
            load_per_s: rounds
                .iter()
                .any(|r| r.load_per_s.is_some())
                .then(|| Spread::of(rounds.iter().filter_map(|r| r.load_per_s))),
            rounds,
        }
    }
}

/// plantd relative to its baseline, from the rounds paired in run order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ratio {
    /// plantd throughput / baseline throughput (above 1: plantd is faster).
    pub throughput: Spread,
    /// plantd p50 / baseline p50 (below 1: plantd answers sooner).
    pub p50: Spread,
}

impl Ratio {
    /// Pairs round i of plantd with round i of the baseline.
    pub fn paired(plantd: &[RoundStats], baseline: &[RoundStats]) -> Ratio {
        let div = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        let pairs = || plantd.iter().zip(baseline);
        Ratio {
            throughput: Spread::of(pairs().map(|(p, b)| div(p.throughput, b.throughput))),
            p50: Spread::of(pairs().map(|(p, b)| div(p.p50_us, b.p50_us))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(v: u64) -> Duration {
        Duration::from_micros(v)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<Duration> = (1..=100).map(us).collect();
        assert_eq!(percentile(&sorted, 50.0), us(50));
        assert_eq!(percentile(&sorted, 99.0), us(99));
        assert_eq!(percentile(&sorted, 100.0), us(100));
        assert_eq!(percentile(&sorted, 0.0), us(1));
        assert_eq!(percentile(&[us(7)], 99.0), us(7));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
        let three = [us(1), us(2), us(3)];
        assert_eq!(percentile(&three, 50.0), us(2));
    }

    #[test]
    fn round_stats_sort_and_rate() {
        let stats = RoundStats::from_samples(
            vec![us(300), us(100), us(200), us(400)],
            1,
            Duration::from_millis(2),
            false,
        );
        assert_eq!(stats.completed, 4);
        assert_eq!(stats.errors, 1);
        assert!((stats.throughput - 2000.0).abs() < 1e-6);
        assert!((stats.p50_us - 200.0).abs() < 1e-6);
        assert!((stats.p99_us - 400.0).abs() < 1e-6);
        assert!((stats.max_us - 400.0).abs() < 1e-6);
        let empty = RoundStats::from_samples(vec![], 3, Duration::ZERO, true);
        assert_eq!((empty.throughput, empty.p50_us), (0.0, 0.0));
    }

    #[test]
    fn spread_takes_median_and_range() {
        assert_eq!(
            Spread::of([3.0, 1.0, 2.0]),
            Spread {
                median: 2.0,
                min: 1.0,
                max: 3.0
            }
        );
        assert_eq!(Spread::of([4.0, 1.0]).median, 2.5);
        assert_eq!(Spread::of([f64::NAN, 5.0]).median, 5.0);
        assert_eq!(Spread::of([]).max, 0.0);
    }

    #[test]
    fn ratios_pair_rounds() {
        let round = |throughput, p50_us| RoundStats {
            completed: 1,
            errors: 0,
            truncated: false,
            elapsed_s: 1.0,
            throughput,
            p50_us,
            p99_us: 0.0,
            max_us: 0.0,
            mirror_catch_up_ms: None,
            load_per_s: None,
        };
        let plantd = [round(90.0, 110.0), round(100.0, 100.0), round(80.0, 120.0)];
        let base = [
            round(100.0, 100.0),
            round(100.0, 100.0),
            round(100.0, 100.0),
        ];
        let ratio = Ratio::paired(&plantd, &base);
        assert!((ratio.throughput.median - 0.9).abs() < 1e-9);
        assert!((ratio.throughput.min - 0.8).abs() < 1e-9);
        assert!((ratio.p50.max - 1.2).abs() < 1e-9);
    }
}
