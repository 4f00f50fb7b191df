//! `plant bus pub|sub|replay|info`: the buses, as an operator at a terminal uses them.
//!
//! Everything goes through [`plantd_shared::bus`], the same helpers modules use. `pub` waits
//! for the capture stream's ack and prints the message's sequence (`--no-ack` sends a core
//! publish instead); `sub` listens live; `replay` reads what the bus captured under a scope,
//! in order, and ends at the last message stored when it began; `info` lists the buses and
//! their streams. Messages are printed one line each and flushed, so a pipe sees them as they
//! come; payloads are shown as text (invalid UTF-8 replaced).

use std::{io::Write, time::Duration};

use anyhow::Context as _;
use futures::{Stream, StreamExt as _};
use plantd_schemas::bus::v1::{InfoRequest, InfoResponse};
use plantd_shared::{
    bus::{self, BusMessage, ReplayFrom, ReplayRate, ReplaySpec, ReplayUntil},
    call,
    codec::Encoding,
    subjects,
};
use serde::Serialize;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::value_input::ValueSource;
use crate::{
    context::{GlobalArgs, parse_duration},
    output,
};

/// Arguments of `plant bus`.
#[derive(Debug, clap::Args)]
pub struct BusArgs {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    /// Publish one message; prints its sequence in the bus's capture stream.
    Pub {
        /// Bus (`control`, `data`, `event`, …).
        bus: String,
        /// Topic, scope first: `site1.oven.setpoint`.
        topic: String,
        /// The payload; `@FILE` reads a file; `-` or omitted reads stdin.
        data: Option<String>,
        /// Core publish: do not wait for the capture stream's ack.
        #[arg(long)]
        no_ack: bool,
    },
    /// Print messages as they are published, one line each, until Ctrl-C.
    Sub {
        /// Bus.
        bus: String,
        /// Topic filter: `site1.>`, `*.oven.temp` (default: everything you may read).
        #[arg(default_value = ">")]
        filter: String,
        #[command(flatten)]
        stop: StopArgs,
    },
    /// Print what a bus captured under a scope, in order; ends at the last message stored
    /// when the replay began.
    Replay(ReplayArgs),
    /// List the buses with their capture streams and limits.
    Info,
}

/// When a listening command stops by itself.
#[derive(Debug, clap::Args)]
struct StopArgs {
    /// Stop after this many messages.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Stop after this long (`30s`, `5m`).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    for_duration: Option<Duration>,
}

/// `plant bus replay`.
#[derive(Debug, clap::Args)]
struct ReplayArgs {
    /// Bus.
    bus: String,
    /// Scope: the first topic tokens (`site1`, `site1.line2`).
    scope: String,
    /// Only topics below the scope matching this (`oven.temp`, `*.temp`, `oven.>`).
    #[arg(long, default_value = "", hide_default_value = true)]
    topic: String,
    /// Start this long ago (`10m`, `2h`) or at this time (RFC 3339).
    #[arg(long, value_name = "AGO|TIME", conflicts_with = "from_seq")]
    since: Option<String>,
    /// Start at this stream sequence.
    #[arg(long, value_name = "N")]
    from_seq: Option<u64>,
    /// Stop after messages stored this long ago or at this time.
    #[arg(long, value_name = "AGO|TIME", conflicts_with = "until_seq")]
    until: Option<String>,
    /// Stop after this stream sequence.
    #[arg(long, value_name = "N")]
    until_seq: Option<u64>,
    /// `max` (as fast as possible) or `1x` (the original pace).
    #[arg(long, default_value = "max", value_parser = ["max", "1x"])]
    rate: String,
    #[command(flatten)]
    stop: StopArgs,
}

/// A message as printed.
#[derive(Debug, Serialize)]
struct MessageOutput {
    bus: String,
    topic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    data: String,
}

#[derive(Debug, Serialize)]
struct Published {
    bus: String,
    topic: String,
    seq: Option<u64>,
}

impl BusArgs {
    /// Runs the subcommand.
    pub async fn run(self, global: &GlobalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
        match self.verb {
            Verb::Pub {
                bus,
                topic,
                data,
                no_ack,
            } => publish(global, out, bus, topic, data, no_ack).await,
            Verb::Sub { bus, filter, stop } => {
                bus::check_filter(&filter)?;
                let client = global.connect().await?;
                let messages = bus::subscribe(&client, &bus, &filter).await?;
                eprintln!("listening to {bus} {filter} (Ctrl-C to stop)");
                print_messages(out, global.output, messages.map(Ok), &stop, false).await
            }
            Verb::Replay(args) => replay(global, out, args).await,
            Verb::Info => info(global, out).await,
        }
    }
}

async fn publish(
    global: &GlobalArgs,
    out: &mut dyn Write,
    bus_name: String,
    topic: String,
    data: Option<String>,
    no_ack: bool,
) -> anyhow::Result<()> {
    bus::check_topic(&topic)?;
    let stdin_is_terminal = std::io::IsTerminal::is_terminal(&std::io::stdin());
    let payload =
        ValueSource::parse(data.as_deref()).read(&mut std::io::stdin(), stdin_is_terminal)?;
    let client = global.connect().await?;
    let seq = if no_ack {
        bus::publish(&client, &bus_name, &topic, None, payload.into()).await?;
        client.flush().await.context("cannot flush the publish")?;
        None
    } else {
        Some(bus::publish_acked(&client, &bus_name, &topic, None, payload.into()).await?)
    };
    let row = vec![
        bus_name.clone(),
        topic.clone(),
        seq.map_or_else(|| "-".to_string(), |s| s.to_string()),
    ];
    let published = Published {
        bus: bus_name,
        topic,
        seq,
    };
    output::render(
        out,
        global.output,
        &published,
        &["BUS", "TOPIC", "SEQ"],
        vec![row],
    )?;
    Ok(())
}

async fn replay(global: &GlobalArgs, out: &mut dyn Write, args: ReplayArgs) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc();
    let from = match (&args.since, args.from_seq) {
        (Some(since), _) => ReplayFrom::Time(point_in_time(since, now, "--since")?),
        (None, Some(seq)) => ReplayFrom::Seq(seq),
        (None, None) => ReplayFrom::Oldest,
    };
    let until = match (&args.until, args.until_seq) {
        (Some(until), _) => Some(ReplayUntil::Time(point_in_time(until, now, "--until")?)),
        (None, Some(seq)) => Some(ReplayUntil::Seq(seq)),
        (None, None) => None,
    };
    let spec = ReplaySpec {
        scope: args.scope.clone(),
        topic: args.topic,
        from,
        until,
        rate: if args.rate == "1x" {
            ReplayRate::Original
        } else {
            ReplayRate::Max
        },
    };
    let client = global.connect().await?;
    let messages = bus::replay(&client, &args.bus, spec).await?;
    print_messages(out, global.output, messages, &args.stop, true).await
}

/// `10m` (that long before `now`) or an RFC 3339 time.
fn point_in_time(text: &str, now: OffsetDateTime, flag: &str) -> anyhow::Result<OffsetDateTime> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at);
    }
    let ago =
        parse_duration(text).map_err(|e| anyhow::anyhow!("{flag}: {e}, or an RFC 3339 time"))?;
    Ok(now - ago)
}

async fn print_messages(
    out: &mut dyn Write,
    format: output::OutputFormat,
    messages: impl Stream<Item = Result<BusMessage, bus::BusError>>,
    stop: &StopArgs,
    ends: bool,
) -> anyhow::Result<()> {
    let mut messages = std::pin::pin!(messages);
    if format == output::OutputFormat::Table {
        writeln!(out, "SEQ TIME TOPIC DATA")?;
        out.flush()?;
    }
    let stop_at = async {
        match stop.for_duration {
            Some(duration) => tokio::time::sleep(duration).await,
            None => std::future::pending().await,
        }
    };
    let mut stop_at = std::pin::pin!(stop_at);
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    let mut seen = 0u64;
    while stop.count != Some(seen) {
        tokio::select! {
            item = messages.next() => match item {
                Some(Ok(message)) => {
                    write_message(out, format, message)?;
                    seen += 1;
                }
                Some(Err(err)) => anyhow::bail!(err),
                None if ends => break,
                None => anyhow::bail!("the connection to NATS closed"),
            },
            () = &mut stop_at => break,
            signal = &mut ctrl_c => {
                signal.context("cannot listen for Ctrl-C")?;
                break;
            }
        }
    }
    Ok(())
}

fn write_message(
    out: &mut dyn Write,
    format: output::OutputFormat,
    message: BusMessage,
) -> anyhow::Result<()> {
    let line = MessageOutput {
        bus: message.bus.to_string(),
        topic: message.topic().to_string(),
        seq: message.seq,
        time: message.time.and_then(|t| t.format(&Rfc3339).ok()),
        data: String::from_utf8_lossy(&message.payload).into_owned(),
    };
    match format {
        output::OutputFormat::Json => serde_json::to_writer(&mut *out, &line)?,
        output::OutputFormat::Table => write!(
            out,
            "{} {} {} {}",
            line.seq.map_or_else(|| "-".into(), |s| s.to_string()),
            line.time.as_deref().unwrap_or("-"),
            line.topic,
            serde_json::to_string(&line.data)?
        )?,
    }
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

async fn info(global: &GlobalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let client = global.connect().await?;
    let resp: InfoResponse = call::request(
        &client,
        &subjects::bus::info(),
        &InfoRequest {},
        Encoding::Protobuf,
        global.timeout,
    )
    .await?;
    let limit = |v: i64| {
        if v == 0 {
            "-".to_string()
        } else {
            v.to_string()
        }
    };
    let rows = resp
        .buses
        .iter()
        .map(|b| {
            vec![
                b.name.clone(),
                b.stream.clone(),
                b.messages.to_string(),
                b.bytes.to_string(),
                format!("{}..{}", b.first_seq, b.last_seq),
                format!("{}s", b.max_age_secs),
                limit(b.max_bytes),
                limit(b.max_msgs_per_subject),
            ]
        })
        .collect();
    output::render(
        out,
        global.output,
        &resp,
        &[
            "BUS",
            "STREAM",
            "MESSAGES",
            "BYTES",
            "SEQ",
            "MAX AGE",
            "MAX BYTES",
            "MAX/TOPIC",
        ],
        rows,
    )?;
    Ok(())
}
