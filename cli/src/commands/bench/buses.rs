//! What the bus and pipe scenarios send: the plantd path through `plantd_shared::bus` and
//! `plantd_shared::pipe`, and its raw async-nats baseline.
//!
//! Both paths of a scenario send the same 64-byte samples (each carrying its serial number) on
//! the same connections, spread over the same number of topics; only what plantd adds differs.
//!
//! * **bus-pub**: one task core-publishes (`bus::Topic::publish`, each of the 16 topics
//!   checked once) a round's messages as fast as it can on
//!   `plantd.bus.data.plantd-bench.pub.*`, at most [`PUB_WINDOW`] ahead of what a live
//!   subscriber on a second connection has received; the figure is delivered messages per
//!   second, from the first publish to the last receipt, and a message's latency is its
//!   publish → receipt. The data bus's capture
//!   stream stores every message as well, so this measures what capture costs live delivery;
//!   the baseline is the same on a subject no stream captures. After each plantd round the
//!   runner waits for the capture stream to have stored the round (its lag is reported).
//!   **bus-pub-captured** is the same with the raw subject captured too, by a stream the bench
//!   creates with `PLANTD_BUS_DATA`'s config (and deletes after), so both sides pay for the
//!   capture and the ratio is what `bus::publish`/`bus::subscribe` cost.
//! * **bus-capture**: acked publishes (`bus::publish_acked`) onto the data bus, 64 acks
//!   outstanding, vs raw JetStream publishes with the same window onto a stream the bench
//!   creates with the data bus's own limits (copied from `PLANTD_BUS_DATA`) and deletes after.
//! * **pipe-64**: a round pushes its items onto pipe `jobs` (untimed), then 64 closed-loop tasks
//!   take them from one [`pipe::Worker`] (prefetch 64) and ack each; items per second. The
//!   baseline is the same against a raw pull consumer (same batch, heartbeat and expiry as the
//!   worker's) on a work-queue stream and consumer the bench creates with the pipe's settings.
//!   Every round starts and ends with the queue empty: whatever a round left (one cut short by
//!   `--duration`) is taken, untimed, before the next.
//! * **control-under-load**: a control message published with `bus::publish_acked` and timed
//!   until the stream's ack and a live subscriber's receipt are both in, one at a time — what
//!   `plant bus pub control …` does — with the data bus idle (the baseline) and while another
//!   connection floods the data bus with acked publishes, 64 in flight.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use async_nats::{
    Client, Subject,
    jetstream::{
        consumer::{PullConsumer, pull},
        stream,
    },
};
use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use futures::{Stream, StreamExt as _};
use plantd_shared::{
    bus,
    connection::{self, StartMode},
    pipe, subjects,
};
use tokio::sync::Mutex;

use super::{
    load::{self, Op, Outcome, Round, closed_loop, op, round},
    progress::Progress,
    scenarios::{self, Drive, Env, Pair, Side, Values},
    stats::RoundStats,
};

/// The pipe `pipe-64` measures (the bus service's default one).
pub const PIPE: &str = "jobs";
/// The bus the throughput scenarios and the flood publish on.
const DATA: &str = "data";
/// The bus of `control-under-load`.
const CONTROL: &str = "control";
/// Size of every message and item.
const PAYLOAD_BYTES: usize = 64;
/// Topics a scenario spreads its messages over (so no topic nears the data bus's per-topic
/// limit).
const TOPICS: usize = 16;
/// Acks outstanding: publishes of `bus-capture` and the flood, pushes and takes of `pipe-64`.
const WINDOW: usize = 64;
/// Items the worker (and the raw pull consumer) fetches ahead.
const PREFETCH: usize = 64;
/// `bus-pub`: messages published and not yet received, at most. Beyond it the publisher waits
/// for the subscriber, so a round measures the rate delivery sustains rather than overload
/// (without it the raw path outran the subscriber's 64 Ki buffer and lost messages, and the
/// latencies were queueing); 4096 does not hold the raw path back on a 2-core machine.
const PUB_WINDOW: usize = 4096;
/// `bus-pub`: a round's receiver gives up this long after the last message it received.
const QUIET: Duration = Duration::from_secs(2);
/// `control-under-load`: the flood runs this long before the timed requests start.
const RAMP: Duration = Duration::from_millis(300);
/// Longest untimed pushing or draining of a pipe around a round.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);
/// Heartbeat and expiry of the raw pull requests: what `pipe::Worker::bind` asks for.
const PULL_HEARTBEAT: Duration = Duration::from_secs(5);
const PULL_EXPIRES: Duration = Duration::from_secs(30);
/// The raw streams, subjects and consumer the baselines use (outside `plantd.>`).
const RAW_PUB_PREFIX: &str = "bench.raw.data";
const RAW_PUB_CAPTURED_STREAM: &str = "BENCH_RAW_PUB_CAPTURED";
const RAW_PUB_CAPTURED_PREFIX: &str = "bench.raw.pubcap";
const RAW_CAPTURE_STREAM: &str = "BENCH_RAW_CAPTURE";
const RAW_CAPTURE_PREFIX: &str = "bench.raw.capture";
const RAW_PIPE_STREAM: &str = "BENCH_RAW_PIPE";
const RAW_PIPE_SUBJECT: &str = "bench.raw.pipe";
const RAW_PIPE_CONSUMER: &str = "bench-raw";

/// Payloads a live subscriber receives.
type Deliveries = Pin<Box<dyn Stream<Item = Bytes> + Send>>;

/// Whether the raw side of a firehose scenario publishes where a stream captures it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawCapture {
    /// `bus-pub`: onto a subject no stream captures (what capture costs delivery).
    None,
    /// `bus-pub-captured`: onto a stream with the data bus's own config (what plantd's bus
    /// code costs delivery, the capture being on both sides).
    Stream,
}

/// `bus-pub` and `bus-pub-captured`: the data bus vs a raw subject, one publishing task each.
pub async fn pub_pair(env: &Env, label: String, raw_capture: RawCapture) -> anyhow::Result<Pair> {
    // The data bus starts without the bench's earlier messages, as the raw stream does (a
    // stream at its per-subject limit discards on every store; a fresh one does not yet).
    purge_bench_topics(env).await;
    let capture = bus_stream(env, DATA).await?;
    let raw_prefix = match raw_capture {
        RawCapture::None => RAW_PUB_PREFIX,
        RawCapture::Stream => RAW_PUB_CAPTURED_PREFIX,
    };
    let listener = connect(env, "plant-bench-listener").await?;
    let plantd_deliveries: Deliveries = Box::pin(
        bus::subscribe(&listener, DATA, &topic("pub", ">"))
            .await?
            .map(|m| m.payload),
    );
    let raw_deliveries: Deliveries = Box::pin(
        listener
            .subscribe(format!("{raw_prefix}.{}", topic("pub", ">")))
            .await?
            .map(|m| m.payload),
    );
    // The server knows both interests before the first publish.
    listener.flush().await?;

    // Checked once, as a module publishing telemetry does (the raw side's subjects are built
    // once too).
    let targets: Arc<[bus::Topic]> = topics("pub")
        .iter()
        .map(|t| bus::Topic::new(DATA, t))
        .collect::<Result<_, _>>()?;
    let client = env.client.clone();
    let plantd_publish = op(move |n| {
        let (client, target) = (client.clone(), targets[n % TOPICS].clone());
        async move {
            target
                .publish(&client, None, sample(n))
                .await
                .map_err(|e| e.to_string())
        }
    });
    let (client, raw) = (env.client.clone(), raw_subjects("pub", raw_prefix));
    let raw_publish = op(move |n| {
        let (client, subject) = (client.clone(), raw[n % TOPICS].clone());
        async move {
            client
                .publish(subject, sample(n))
                .await
                .map_err(|e| e.to_string())
        }
    });
    // Created last, so a failure above leaves nothing behind on the server.
    let (raw_mirror, created) = match raw_capture {
        RawCapture::None => (None, Vec::new()),
        RawCapture::Stream => {
            let mut config = capture.cached_info().config.clone();
            config.name = RAW_PUB_CAPTURED_STREAM.into();
            config.subjects = vec![format!("{RAW_PUB_CAPTURED_PREFIX}.>")];
            config.description =
                Some("plant bench: captured raw baseline of bus-pub-captured".into());
            config.metadata.clear();
            let stream = recreate_stream(env, config).await?;
            (Some(stream), vec![RAW_PUB_CAPTURED_STREAM.to_string()])
        }
    };
    let serial = Arc::new(AtomicU64::new(0));
    let hose = |publish, deliveries| Firehose {
        publish,
        deliveries: Arc::new(Mutex::new(deliveries)),
        client: env.client.clone(),
        _listener: listener.clone(),
        serial: serial.clone(),
    };
    Ok(Pair {
        plantd: Side {
            label: "plantd".into(),
            drive: Drive::Round(hose(plantd_publish, plantd_deliveries).round()),
            mirror: Some(capture),
        },
        baseline: Side {
            label,
            drive: Drive::Round(hose(raw_publish, raw_deliveries).round()),
            mirror: raw_mirror,
        },
        created,
    })
}

/// `bus-capture`: acked publishes onto the data bus vs raw JetStream publishes onto a stream
/// with the data bus's limits, 64 acks outstanding on both.
pub async fn capture_pair(env: &Env, label: String) -> anyhow::Result<Pair> {
    let data = bus_stream(env, DATA).await?;
    let mut config = data.cached_info().config.clone();
    config.name = RAW_CAPTURE_STREAM.into();
    config.subjects = vec![format!("{RAW_CAPTURE_PREFIX}.>")];
    config.description = Some("plant bench: raw JetStream baseline of bus-capture".into());
    config.metadata.clear();
    recreate_stream(env, config).await?;

    let (client, topics) = (env.client.clone(), topics("capture"));
    let plantd = op(move |n| {
        let (client, topics) = (client.clone(), topics.clone());
        async move {
            bus::publish_acked(&client, DATA, &topics[n % TOPICS], None, sample(n))
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    });
    let (js, raw) = (env.js.clone(), raw_subjects("capture", RAW_CAPTURE_PREFIX));
    let baseline = op(move |n| {
        let (js, subject) = (js.clone(), raw[n % TOPICS].clone());
        async move {
            js.publish(subject, sample(n))
                .await
                .map_err(|e| e.to_string())?
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    });
    Ok(Pair {
        plantd: Side {
            label: "plantd".into(),
            drive: Drive::Ops(plantd),
            mirror: None,
        },
        baseline: Side {
            label,
            drive: Drive::Ops(baseline),
            mirror: None,
        },
        created: vec![RAW_CAPTURE_STREAM.into()],
    })
}

/// `pipe-64`: pipe `jobs` through `pipe::push` and a `pipe::Worker` vs a raw work-queue stream
/// and pull consumer with the same settings.
pub async fn pipe_pair(env: &Env, label: String) -> anyhow::Result<Pair> {
    let pipes = env
        .js
        .get_stream(subjects::pipe::STREAM)
        .await
        .with_context(|| {
            format!(
                "no stream {}: is the bus service running?",
                subjects::pipe::STREAM
            )
        })?;
    let jobs: PullConsumer = pipes
        .get_consumer(PIPE)
        .await
        .map_err(|e| anyhow::anyhow!("no consumer of pipe {PIPE}: {e}"))?;
    let mut config = pipes.cached_info().config.clone();
    config.name = RAW_PIPE_STREAM.into();
    config.subjects = vec![RAW_PIPE_SUBJECT.into()];
    config.description = Some("plant bench: raw work-queue baseline of pipe-64".into());
    config.metadata.clear();
    let raw_stream = recreate_stream(env, config).await?;
    let like = &jobs.cached_info().config;
    let raw: PullConsumer = raw_stream
        .create_consumer(pull::Config {
            durable_name: Some(RAW_PIPE_CONSUMER.into()),
            filter_subject: RAW_PIPE_SUBJECT.into(),
            ack_policy: like.ack_policy,
            ack_wait: like.ack_wait,
            max_deliver: like.max_deliver,
            max_ack_pending: like.max_ack_pending,
            max_waiting: like.max_waiting,
            ..Default::default()
        })
        .await
        .context("cannot create the raw pipe consumer")?;

    let timeout = env.timeout;
    let js = env.js.clone();
    let plantd_push = op(move |n| {
        let js = js.clone();
        async move {
            pipe::push(&js, PIPE, None, None, sample(n))
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    });
    let worker =
        pipe::Worker::bind(&env.js, PIPE, pipe::WorkerOptions { prefetch: PREFETCH }).await?;
    let worker = Arc::new(Mutex::new(worker));
    let plantd_take = op(move |_| {
        let worker = worker.clone();
        async move {
            let item = tokio::time::timeout(timeout, async { worker.lock().await.next().await })
                .await
                .map_err(|_| format!("no item within {timeout:?}"))?
                .ok_or_else(|| "the worker's pull stream ended".to_string())?
                .map_err(|e| e.to_string())?;
            item.ack().await.map_err(|e| e.to_string())
        }
    });

    let js = env.js.clone();
    let raw_push = op(move |n| {
        let js = js.clone();
        async move {
            js.publish(RAW_PIPE_SUBJECT, sample(n))
                .await
                .map_err(|e| e.to_string())?
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    });
    let messages = raw
        .stream()
        .max_messages_per_batch(PREFETCH)
        .heartbeat(PULL_HEARTBEAT)
        .expires(PULL_EXPIRES)
        .messages()
        .await
        .context("cannot pull from the raw pipe consumer")?;
    let messages = Arc::new(Mutex::new(messages));
    let raw_take = op(move |_| {
        let messages = messages.clone();
        async move {
            let message =
                tokio::time::timeout(timeout, async { messages.lock().await.next().await })
                    .await
                    .map_err(|_| format!("no item within {timeout:?}"))?
                    .ok_or_else(|| "the raw pull stream ended".to_string())?
                    .map_err(|e| e.to_string())?;
            message.double_ack().await.map_err(|e| e.to_string())
        }
    });
    Ok(Pair {
        plantd: Side {
            label: "plantd".into(),
            drive: Drive::Round(pipe_round(plantd_push, plantd_take, jobs)),
            mirror: None,
        },
        baseline: Side {
            label,
            drive: Drive::Round(pipe_round(raw_push, raw_take, raw)),
            mirror: None,
        },
        created: vec![RAW_PIPE_STREAM.into()],
    })
}

/// `control-under-load`: the same control message, one at a time, with the data bus idle and
/// flooded.
pub async fn control_pair(env: &Env, label: String) -> anyhow::Result<Pair> {
    bus_stream(env, CONTROL).await?;
    bus_stream(env, DATA).await?;
    let cmd = topic("cmd", "all");
    let received: Values = Box::pin(
        bus::subscribe(&env.client, CONTROL, &cmd)
            .await?
            .map(|m| Ok(String::from_utf8_lossy(&m.payload).into_owned())),
    );
    env.client.flush().await?;
    let control = control_op(env, cmd, Arc::new(Mutex::new(received)));

    let (flooder, topics) = (connect(env, "plant-bench-flood").await?, topics("flood"));
    let flood_op = op(move |n| {
        let (client, topics) = (flooder.clone(), topics.clone());
        async move {
            bus::publish_acked(&client, DATA, &topics[n % TOPICS], None, sample(n))
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    });
    let requests = control.clone();
    let flooded = round(move |count, limit, progress| {
        let (requests, flood_op) = (requests.clone(), flood_op.clone());
        async move {
            let flood = load::flood(&flood_op, WINDOW);
            tokio::time::sleep(RAMP).await;
            let mut out = closed_loop(&requests, count, 1, limit, &progress).await;
            let flood = flood.stop().await;
            out.stats.load_per_s = Some(flood.per_s);
            if let Some(err) = flood.first_error {
                out.first_error.get_or_insert(format!(
                    "{} data-bus flood publishes failed, first: {err}",
                    flood.errors
                ));
            }
            out
        }
    });
    Ok(Pair {
        plantd: Side {
            label: "data bus flooded".into(),
            drive: Drive::Round(flooded),
            mirror: None,
        },
        baseline: Side {
            label,
            drive: Drive::Ops(control),
            mirror: None,
        },
        created: Vec::new(),
    })
}

/// Removes what the bench published on a shared server's data and control buses.
pub async fn purge_bench_topics(env: &Env) {
    for name in [DATA, CONTROL] {
        if let Ok(stream) = env.js.get_stream(subjects::bus::stream(name)).await {
            let scope = subjects::bus::topic(name, &format!("{}.>", scenarios::SCOPE));
            let _ = stream.purge().filter(scope).await;
        }
    }
}

/// One `bus-pub` path: a publishing operation and the live subscription it reaches.
struct Firehose {
    publish: Op,
    deliveries: Arc<Mutex<Deliveries>>,
    /// The publishing connection (flushed at the end of the publishing).
    client: Client,
    /// The subscribing connection, kept open with the path.
    _listener: Client,
    /// Serial numbers, shared by both paths, so a late message of one round is never counted
    /// in another.
    serial: Arc<AtomicU64>,
}

impl Firehose {
    /// A round: receive on one task while this one publishes the round's messages back to
    /// back, each taking a credit the receiver returns on its receipt; delivered messages per
    /// second from the first publish to the last receipt.
    fn round(self) -> Round {
        round(move |count, limit, progress| {
            let publish = self.publish.clone();
            let (deliveries, client) = (self.deliveries.clone(), self.client.clone());
            let base = self.serial.fetch_add(count as u64, Ordering::Relaxed) as usize;
            let credit = Arc::new(tokio::sync::Semaphore::new(PUB_WINDOW));
            let returned = credit.clone();
            async move {
                let mut deliveries = deliveries.lock_owned().await;
                let receiver = tokio::spawn(async move {
                    let mut seen = Vec::with_capacity(count);
                    while seen.len() < count {
                        let Ok(Some(payload)) =
                            tokio::time::timeout(QUIET, deliveries.next()).await
                        else {
                            break;
                        };
                        let index = serial_of(&payload).and_then(|s| s.checked_sub(base));
                        if let Some(i) = index.filter(|i| *i < count) {
                            seen.push((i, Instant::now()));
                            returned.add_permits(1);
                            progress.tick();
                        }
                    }
                    seen
                });
                let start = Instant::now();
                let deadline = start + limit;
                let mut sent = Vec::with_capacity(count);
                let (mut errors, mut first_error, mut truncated) = (0, None, false);
                for i in 0..count {
                    let now = Instant::now();
                    if now >= deadline {
                        truncated = true;
                        break;
                    }
                    // Lost messages never return their credit: stop at the quiet limit.
                    match tokio::time::timeout(QUIET, credit.acquire()).await {
                        Ok(Ok(permit)) => permit.forget(),
                        _ => break,
                    }
                    sent.push(Instant::now());
                    if let Err(err) = publish(base + i).await {
                        errors += 1;
                        first_error.get_or_insert(err);
                    }
                }
                if let Err(err) = client.flush().await {
                    first_error.get_or_insert(format!("cannot flush the publisher: {err}"));
                }
                let seen = receiver.await.unwrap_or_else(|err| {
                    first_error.get_or_insert(format!("the receiver failed: {err}"));
                    Vec::new()
                });
                let lost = sent.len().saturating_sub(errors + seen.len());
                if lost > 0 {
                    first_error.get_or_insert(format!(
                        "{lost} of {} published messages were not delivered",
                        sent.len()
                    ));
                }
                let last = seen.iter().map(|(_, at)| *at).max().unwrap_or(start);
                let latencies = seen
                    .iter()
                    .filter_map(|&(i, at)| sent.get(i).map(|&s| at.saturating_duration_since(s)))
                    .collect();
                Outcome {
                    stats: RoundStats::from_samples(
                        latencies,
                        errors + lost,
                        last.saturating_duration_since(start),
                        truncated,
                    ),
                    first_error,
                }
            }
        })
    }
}

/// A `pipe-64` round: push `count` items (untimed), then take and ack them with 64 in flight;
/// the pipe is emptied, untimed, before and after.
fn pipe_round(push: Op, take: Op, consumer: PullConsumer) -> Round {
    round(move |count, limit, progress| {
        let (push, take, consumer) = (push.clone(), take.clone(), consumer.clone());
        async move {
            let untimed = Progress::hidden();
            let before = drain(&take, &consumer, &untimed).await;
            let pushed = closed_loop(&push, count, WINDOW, DRAIN_LIMIT, &untimed).await;
            let mut out =
                closed_loop(&take, pushed.stats.completed, WINDOW, limit, &progress).await;
            let after = drain(&take, &consumer, &untimed).await;
            out.stats.errors += pushed.stats.errors;
            if let Some(err) = pushed.first_error {
                out.first_error.get_or_insert(format!(
                    "{} pushes failed, first: {err}",
                    pushed.stats.errors
                ));
            }
            for problem in [before, after].into_iter().filter_map(Result::err) {
                out.first_error.get_or_insert(problem);
            }
            out
        }
    })
}

/// Takes and acks whatever `consumer`'s queue still holds (pending or delivered and unacked).
async fn drain(take: &Op, consumer: &PullConsumer, untimed: &Progress) -> Result<(), String> {
    let info = consumer
        .get_info()
        .await
        .map_err(|e| format!("cannot read the pipe's consumer: {e}"))?;
    let left = usize::try_from(info.num_pending).unwrap_or(usize::MAX) + info.num_ack_pending;
    if left == 0 {
        return Ok(());
    }
    let out = closed_loop(take, left, WINDOW, DRAIN_LIMIT, untimed).await;
    match out.first_error {
        None => Ok(()),
        Some(err) => Err(format!("emptying the {left} items left in the pipe: {err}")),
    }
}

/// A control message through `topic` (acked), timed until the ack and the receipt are in.
fn control_op(env: &Env, topic: String, received: Arc<Mutex<Values>>) -> Op {
    let (client, timeout) = (env.client.clone(), env.timeout);
    let topic: Arc<str> = topic.into();
    let serial = Arc::new(AtomicU64::new(0));
    op(move |_| {
        let value = format!(
            "{:0>PAYLOAD_BYTES$}",
            serial.fetch_add(1, Ordering::Relaxed)
        );
        let (client, topic, received) = (client.clone(), topic.clone(), received.clone());
        async move {
            let mut received = received.lock().await;
            let payload = Bytes::from(value.clone());
            let (acked, seen) = tokio::join!(
                bus::publish_acked(&client, CONTROL, &topic, None, payload),
                scenarios::receive(&mut received, &value, timeout),
            );
            acked.map_err(|e| e.to_string())?;
            seen
        }
    })
}

/// A 64-byte sample: its serial (big-endian), then padding.
fn sample(serial: usize) -> Bytes {
    let mut payload = BytesMut::with_capacity(PAYLOAD_BYTES);
    payload.put_u64(serial as u64);
    payload.put_bytes(b'x', PAYLOAD_BYTES - 8);
    payload.freeze()
}

/// The serial of a sample.
fn serial_of(payload: &Bytes) -> Option<usize> {
    let mut head = payload.get(..8)?;
    usize::try_from(head.get_u64()).ok()
}

/// A bench topic on a bus: `plantd-bench.<kind>.<name>`.
fn topic(kind: &str, name: &str) -> String {
    format!("{}.{kind}.{name}", scenarios::SCOPE)
}

/// The [`TOPICS`] topics of `kind`.
fn topics(kind: &str) -> Arc<[String]> {
    (0..TOPICS)
        .map(|k| topic(kind, &format!("t{k:02}")))
        .collect()
}

/// The raw baseline's subjects of `kind`: the same topics under `prefix` instead of a bus.
fn raw_subjects(kind: &str, prefix: &str) -> Arc<[Subject]> {
    topics(kind)
        .iter()
        .map(|t| Subject::from(format!("{prefix}.{t}")))
        .collect()
}

/// The capture stream of bus `name`, which the bus service creates.
async fn bus_stream(env: &Env, name: &str) -> anyhow::Result<stream::Stream> {
    let stream = subjects::bus::stream(name);
    env.js.get_stream(&stream).await.with_context(|| {
        format!("no capture stream {stream} of bus {name}: is the bus service running?")
    })
}

/// Creates a baseline stream, replacing one an interrupted run left behind.
async fn recreate_stream(env: &Env, config: stream::Config) -> anyhow::Result<stream::Stream> {
    let name = config.name.clone();
    let _ = env.js.delete_stream(&name).await;
    env.js
        .create_stream(config)
        .await
        .with_context(|| format!("cannot create the baseline stream {name}"))
}

/// A connection of its own (the listener of `bus-pub`, the flood of `control-under-load`).
pub(super) async fn connect(env: &Env, name: &str) -> anyhow::Result<Client> {
    connection::connect(&env.url, env.creds.clone(), name, StartMode::FailFast, None)
        .await
        .with_context(|| format!("cannot open the {name} connection"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_carry_their_serial_and_have_one_size() {
        for serial in [0, 7, 123_456_789] {
            let s = sample(serial);
            assert_eq!(s.len(), PAYLOAD_BYTES);
            assert_eq!(serial_of(&s), Some(serial));
        }
        assert_eq!(serial_of(&Bytes::from_static(b"short")), None);
    }

    #[test]
    fn raw_subjects_mirror_the_bus_topics_outside_plantd() {
        let raw = raw_subjects("pub", RAW_PUB_PREFIX);
        assert_eq!(raw.len(), TOPICS);
        assert_eq!(raw[3].as_str(), "bench.raw.data.plantd-bench.pub.t03");
        assert_eq!(
            subjects::bus::topic(DATA, &topics("pub")[3]),
            "plantd.bus.data.plantd-bench.pub.t03"
        );
    }
}
