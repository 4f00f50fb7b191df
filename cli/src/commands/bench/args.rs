//! The flags of `plant bench` and the scenarios it knows.
//!
//! Each scenario pairs a plantd path with the raw NATS baseline it is compared against in the
//! same run (docs/performance.md has the table). Its defaults — operations per round,
//! requests in flight — are chosen so that a full `--local` run of a release build stays within
//! about two minutes on a small machine; `--count`, `--rounds` and `--duration` shrink it.

use std::time::Duration;

use plantd_shared::codec::Encoding;
use plantd_state::store::Durability;

use super::naive::SetBaseline;
use crate::context::parse_duration;

/// Arguments of `plant bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Start a private nats-server (temp dir, free loopback port) and the services the chosen
    /// scenarios need, and stop them afterwards; without it, bench the server of `--server`.
    #[arg(long)]
    pub local: bool,
    /// Scenarios to run (repeatable or comma separated); default: all.
    #[arg(
        long = "scenario",
        value_enum,
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub scenarios: Vec<Scenario>,
    /// Operations per round and path, for every scenario (default: per scenario).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Rounds per path; baseline and plantd rounds alternate.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=50))]
    pub rounds: u64,
    /// Longest time one round may take; a round that reaches it stops early (and says so).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Keys preloaded for state-get-64.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub keys: u64,
    /// Payload encoding of the requests (both paths send the same bytes).
    #[arg(long, value_enum, default_value_t = WireEncoding::Protobuf)]
    pub encoding: WireEncoding,
}

impl BenchArgs {
    /// The selected scenarios in canonical order, without repeats; all when none is named.
    pub fn selected(&self) -> Vec<Scenario> {
        Scenario::ALL
            .into_iter()
            .filter(|s| self.scenarios.is_empty() || self.scenarios.contains(s))
            .collect()
    }

    /// Operations per round for `scenario`.
    pub fn count_for(&self, scenario: Scenario) -> usize {
        self.count.map_or(scenario.default_count(), |c| {
            usize::try_from(c).unwrap_or(usize::MAX)
        })
    }

    /// Unmeasured operations per path before the first round: a tenth of a round, 10 to 500.
    pub fn warmup_for(&self, scenario: Scenario) -> usize {
        let count = self.count_for(scenario);
        (count / 10).clamp(10, 500).min(count)
    }

    /// Preloaded keys as a `usize`.
    pub fn key_count(&self) -> usize {
        usize::try_from(self.keys).unwrap_or(usize::MAX)
    }

    /// Rounds as a `usize`.
    pub fn round_count(&self) -> usize {
        usize::try_from(self.rounds).unwrap_or(1)
    }
}

/// `--encoding protobuf|json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WireEncoding {
    /// Protobuf binary (what a Rust client sends).
    Protobuf,
    /// proto3 canonical JSON (what `nats req` sends).
    Json,
}

impl WireEncoding {
    /// The codec encoding.
    pub fn encoding(self) -> Encoding {
        match self {
            WireEncoding::Protobuf => Encoding::Protobuf,
            WireEncoding::Json => Encoding::Json,
        }
    }

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            WireEncoding::Protobuf => "protobuf",
            WireEncoding::Json => "json",
        }
    }
}

/// Which service a scenario measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The echo module.
    Echo,
    /// The state service.
    State,
    /// The buses and pipes (their streams and consumers, which the bus service creates).
    Bus,
}

/// One benchmark scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Echo through the shared runtime, 1 in flight, vs a bare queue-group echo responder.
    #[value(name = "echo-1")]
    Echo1,
    /// Echo, 64 in flight, vs the bare echo responder.
    #[value(name = "echo-64")]
    Echo64,
    /// State get of preloaded keys, 64 in flight, vs the bare echo responder.
    #[value(name = "state-get-64")]
    StateGet64,
    /// State set (durability normal), 1 in flight, vs a bare responder that only puts into KV.
    #[value(name = "state-set-1")]
    StateSet1,
    /// State set (durability normal), 64 in flight, vs the KV-only responder.
    #[value(name = "state-set-64")]
    StateSet64,
    /// State set (durability normal), 64 in flight, vs a naive SQLite-then-KV responder.
    #[value(name = "state-set-naive-64")]
    StateSetNaive64,
    /// Set request → watcher receipt through the KV mirror, vs request → KV-only responder's
    /// put → KV watcher receipt.
    #[value(name = "state-watch")]
    StateWatch,
    /// State set with durability full, 64 in flight, vs the naive responder with
    /// synchronous=FULL.
    #[value(name = "state-set-full-64")]
    StateSetFull64,
    /// Core publishes on the data bus (captured by its stream) as fast as one task sends them,
    /// delivered msgs/s to a live subscriber, vs the same on a subject no stream captures.
    #[value(name = "bus-pub")]
    BusPub,
    /// `bus-pub` with the raw subject captured too, by a stream with the data bus's config: what
    /// plantd's bus code costs live delivery, the capture being paid on both sides.
    #[value(name = "bus-pub-captured")]
    BusPubCaptured,
    /// Acked publishes onto the data bus, 64 acks outstanding, vs raw JetStream publishes onto
    /// a stream the bench creates with the data bus's limits.
    #[value(name = "bus-capture")]
    BusCapture,
    /// Items of pipe `jobs` taken by a worker and acked, 64 in flight, vs a raw pull consumer
    /// on a work-queue stream the bench creates with the pipes' settings.
    #[value(name = "pipe-64")]
    Pipe64,
    /// Control-bus acked publish → live receipt, one at a time, while another connection floods
    /// the data bus with acked publishes, vs the same with the data bus idle.
    #[value(name = "control-under-load")]
    ControlUnderLoad,
    /// `state-get-64` through the web-api bridge (HTTP/1.1 keep-alive, 64 in flight) vs the
    /// same gets over NATS.
    #[value(name = "http-state-get-64")]
    HttpStateGet64,
    /// `http-state-get-64`'s gets through the bridge vs through a bare HTTP→NATS proxy the
    /// bench serves (one route, one request, the reply as JSON): what the bridge's own layers
    /// cost apart from HTTP.
    #[value(name = "http-proxy-get-64")]
    HttpProxyGet64,
    /// `state-watch` heard through the bridge's SSE stream vs through a NATS watch.
    #[value(name = "http-watch")]
    HttpWatch,
    /// A site's backlog copied to the hub across a leaf node after the sources are re-attached
    /// (what happens when an edge link returns), msgs/s, vs a stream source on one server.
    #[value(name = "edge-catchup")]
    EdgeCatchup,
}

impl Scenario {
    /// Every scenario, in the order they run.
    pub const ALL: [Scenario; 17] = [
        Scenario::Echo1,
        Scenario::Echo64,
        Scenario::StateGet64,
        Scenario::StateSet1,
        Scenario::StateSet64,
        Scenario::StateSetNaive64,
        Scenario::StateWatch,
        Scenario::StateSetFull64,
        Scenario::BusPub,
        Scenario::BusPubCaptured,
        Scenario::BusCapture,
        Scenario::Pipe64,
        Scenario::ControlUnderLoad,
        Scenario::HttpStateGet64,
        Scenario::HttpProxyGet64,
        Scenario::HttpWatch,
        Scenario::EdgeCatchup,
    ];

    /// The name used by `--scenario` and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Echo1 => "echo-1",
            Scenario::Echo64 => "echo-64",
            Scenario::StateGet64 => "state-get-64",
            Scenario::StateSet1 => "state-set-1",
            Scenario::StateSet64 => "state-set-64",
            Scenario::StateSetNaive64 => "state-set-naive-64",
            Scenario::StateWatch => "state-watch",
            Scenario::StateSetFull64 => "state-set-full-64",
            Scenario::BusPub => "bus-pub",
            Scenario::BusPubCaptured => "bus-pub-captured",
            Scenario::BusCapture => "bus-capture",
            Scenario::Pipe64 => "pipe-64",
            Scenario::ControlUnderLoad => "control-under-load",
            Scenario::HttpStateGet64 => "http-state-get-64",
            Scenario::HttpProxyGet64 => "http-proxy-get-64",
            Scenario::HttpWatch => "http-watch",
            Scenario::EdgeCatchup => "edge-catchup",
        }
    }

    /// Requests in flight (closed-loop client tasks); for `bus-pub`, its one publishing task.
    pub fn concurrency(self) -> usize {
        match self {
            Scenario::Echo1
            | Scenario::StateSet1
            | Scenario::StateWatch
            | Scenario::HttpWatch
            | Scenario::BusPub
            | Scenario::BusPubCaptured
            | Scenario::ControlUnderLoad => 1,
            _ => 64,
        }
    }

    /// Operations per round and path unless `--count` says otherwise.
    pub fn default_count(self) -> usize {
        match self {
            Scenario::Echo1 => 5_000,
            Scenario::Echo64 => 40_000,
            Scenario::StateGet64 => 30_000,
            Scenario::StateSet1 => 2_000,
            Scenario::StateSet64 | Scenario::StateSetNaive64 => 10_000,
            Scenario::StateWatch => 1_000,
            Scenario::StateSetFull64 => 3_000,
            Scenario::BusPub | Scenario::BusPubCaptured => 200_000,
            Scenario::BusCapture => 30_000,
            Scenario::Pipe64 => 10_000,
            Scenario::ControlUnderLoad => 1_000,
            Scenario::HttpStateGet64 | Scenario::HttpProxyGet64 => 20_000,
            Scenario::HttpWatch => 1_000,
            Scenario::EdgeCatchup => 20_000,
        }
    }

    /// Whether the plantd path goes through the web-api bridge (which only `--local` starts).
    pub fn over_http(self) -> bool {
        matches!(
            self,
            Scenario::HttpStateGet64 | Scenario::HttpProxyGet64 | Scenario::HttpWatch
        )
    }

    /// The service measured.
    pub fn target(self) -> Target {
        match self {
            Scenario::Echo1 | Scenario::Echo64 => Target::Echo,
            Scenario::BusPub
            | Scenario::BusPubCaptured
            | Scenario::BusCapture
            | Scenario::Pipe64
            | Scenario::ControlUnderLoad
            | Scenario::EdgeCatchup => Target::Bus,
            _ => Target::State,
        }
    }

    /// What the plantd path fills asynchronously, which the runner waits for after each round,
    /// and the event it waits from: the KV mirror after the last set's ack, the capture stream
    /// after the last delivery.
    pub fn follower(self) -> (&'static str, &'static str) {
        match self.target() {
            Target::Bus => ("the capture stream", "delivery"),
            _ => ("the KV mirror", "ack"),
        }
    }

    /// The durability the state service must run with, for scenarios that write. The
    /// scenarios compared with baselines that do not fsync run `normal`, which does not
    /// either; `state-set-full-64` measures the default, `full`.
    pub fn durability(self) -> Option<Durability> {
        match self {
            Scenario::StateSet1
            | Scenario::StateSet64
            | Scenario::StateSetNaive64
            | Scenario::StateWatch
            | Scenario::HttpWatch => Some(Durability::Normal),
            Scenario::StateSetFull64 => Some(Durability::Full),
            _ => None,
        }
    }

    /// The responder the baseline path sends to.
    pub fn baseline(self) -> Baseline {
        match self {
            Scenario::Echo1 | Scenario::Echo64 | Scenario::StateGet64 => Baseline::RawEcho,
            Scenario::StateSet1 | Scenario::StateSet64 | Scenario::StateWatch => {
                Baseline::Set(SetBaseline::Kv)
            }
            Scenario::StateSetNaive64 => Baseline::Set(SetBaseline::Naive(Durability::Normal)),
            Scenario::StateSetFull64 => Baseline::Set(SetBaseline::Naive(Durability::Full)),
            Scenario::BusPub
            | Scenario::BusPubCaptured
            | Scenario::BusCapture
            | Scenario::Pipe64
            | Scenario::ControlUnderLoad
            | Scenario::EdgeCatchup => Baseline::Direct,
            Scenario::HttpStateGet64 | Scenario::HttpProxyGet64 | Scenario::HttpWatch => {
                Baseline::OverNats
            }
        }
    }

    /// What the baseline path is, for the report.
    pub fn baseline_label(self) -> &'static str {
        match (self, self.baseline()) {
            (Scenario::StateWatch, _) => "kv put→watch",
            (Scenario::BusPub, _) => "raw core nats",
            (Scenario::BusPubCaptured, _) => "raw captured",
            (Scenario::BusCapture, _) => "raw js publish",
            (Scenario::Pipe64, _) => "raw pull loop",
            (Scenario::ControlUnderLoad, _) => "idle",
            (Scenario::HttpStateGet64, _) => "state-get over nats",
            (Scenario::HttpProxyGet64, _) => "bare http proxy",
            (Scenario::HttpWatch, _) => "state-watch over nats",
            (Scenario::EdgeCatchup, _) => "local stream source",
            (_, Baseline::RawEcho) => "raw echo",
            (_, Baseline::Set(set)) => set.label(),
            (_, Baseline::Direct) => "raw nats",
            (_, Baseline::OverNats) => "over nats",
        }
    }
}

/// The responder a scenario's baseline path sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// The bare queue-group echo responder.
    RawEcho,
    /// One of the set responders.
    Set(SetBaseline),
    /// Raw async-nats calls the bench's own client makes (core publish, JetStream publish, a
    /// pull consumer): no responder to serve.
    Direct,
    /// plantd's own NATS path, against which the same operation through the web-api bridge
    /// is measured.
    OverNats,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    #[test]
    fn scenarios_are_repeatable_or_comma_separated_and_run_in_canonical_order() {
        let cli = Cli::parse_from([
            "bench",
            "--scenario",
            "state-watch,echo-64",
            "--scenario",
            "echo-1",
            "--scenario",
            "echo-1",
        ]);
        assert_eq!(
            cli.args.selected(),
            vec![Scenario::Echo1, Scenario::Echo64, Scenario::StateWatch]
        );
        let all = Cli::parse_from(["bench"]);
        assert_eq!(all.args.selected(), Scenario::ALL.to_vec());
        assert!(Cli::try_parse_from(["bench", "--scenario", "nope"]).is_err());
        assert!(Cli::try_parse_from(["bench", "--count", "0"]).is_err());
    }

    #[test]
    fn count_and_warmup_follow_the_flags() {
        let cli = Cli::parse_from(["bench", "--count", "40"]);
        assert_eq!(cli.args.count_for(Scenario::Echo64), 40);
        assert_eq!(cli.args.warmup_for(Scenario::Echo64), 10);
        let tiny = Cli::parse_from(["bench", "--count", "3"]);
        assert_eq!(tiny.args.warmup_for(Scenario::Echo1), 3);
        let defaults = Cli::parse_from(["bench"]);
        assert_eq!(defaults.args.count_for(Scenario::Echo1), 5_000);
        assert_eq!(defaults.args.warmup_for(Scenario::Echo64), 500);
    }

    #[test]
    fn names_match_the_flag_values() {
        use clap::ValueEnum as _;
        for s in Scenario::ALL {
            let value = s.to_possible_value().expect("every scenario is selectable");
            assert_eq!(value.get_name(), s.name());
        }
    }
}
