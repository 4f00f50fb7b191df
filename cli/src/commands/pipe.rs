//! `plant pipe push|stats|dlq ls|dlq retry`: the pipes (work queues), as an operator sees them.
//!
//! `push` goes through [`plantd_shared::pipe::push`], the helper producers use, and prints the
//! item's sequence once the stream stored it. Stats and dead letters are asked of the bus
//! service (people hold no JetStream API rights). There is no `plant pipe work`: a worker pulls
//! with a reply subject it chooses, which only services are trusted with (docs/pipelines.md).

use std::io::Write;

use plantd_schemas::bus::v1::{
    DlqListRequest, DlqListResponse, DlqRetryRequest, DlqRetryResponse, PipesRequest, PipesResponse,
};
use plantd_shared::{call, codec::Encoding, pipe, subjects};
use time::format_description::well_known::Rfc3339;

use super::value_input::ValueSource;
use crate::{context::GlobalArgs, output};

/// Arguments of `plant pipe`.
#[derive(Debug, clap::Args)]
pub struct PipeArgs {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    /// Push one item; prints its sequence in the pipe.
    Push {
        /// Pipe (`jobs`, …).
        pipe: String,
        /// The item; `@FILE` reads a file; `-` or omitted reads stdin.
        data: Option<String>,
        /// An id: pushing the same id again within two minutes stores it once.
        #[arg(long)]
        id: Option<String>,
    },
    /// Show every pipe: waiting, in progress, redelivered, workers, dead letters.
    Stats,
    /// Dead letters: list them or put them back onto their pipe.
    Dlq {
        #[command(subcommand)]
        verb: DlqVerb,
    },
}

#[derive(Debug, clap::Subcommand)]
enum DlqVerb {
    /// List a pipe's dead letters, oldest first, with why each failed.
    Ls {
        /// Pipe.
        pipe: String,
        /// Start at this dead-letter sequence.
        #[arg(
            long,
            value_name = "SEQ",
            default_value_t = 0,
            hide_default_value = true
        )]
        from_seq: u64,
        /// At most this many (up to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Push dead letters back onto their pipe (and forget them).
    Retry {
        /// Pipe.
        pipe: String,
        /// Dead-letter sequences (from `plant pipe dlq ls`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        seqs: Vec<u64>,
        /// Retry every dead letter of the pipe.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, serde::Serialize)]
struct Pushed {
    pipe: String,
    seq: u64,
}

impl PipeArgs {
    /// Runs the subcommand.
    pub async fn run(self, global: &GlobalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
        match self.verb {
            Verb::Push { pipe, data, id } => push(global, out, pipe, data, id).await,
            Verb::Stats => stats(global, out).await,
            Verb::Dlq {
                verb:
                    DlqVerb::Ls {
                        pipe,
                        from_seq,
                        limit,
                    },
            } => list(global, out, &pipe, DlqListRequest { from_seq, limit }).await,
            Verb::Dlq {
                verb: DlqVerb::Retry { pipe, seqs, all },
            } => retry(global, out, &pipe, DlqRetryRequest { seqs, all }).await,
        }
    }
}

async fn push(
    global: &GlobalArgs,
    out: &mut dyn Write,
    pipe_name: String,
    data: Option<String>,
    id: Option<String>,
) -> anyhow::Result<()> {
    subjects::pipe::validate_name(&pipe_name).map_err(|m| anyhow::anyhow!("pipe: {m}"))?;
    let stdin_is_terminal = std::io::IsTerminal::is_terminal(&std::io::stdin());
    let payload =
        ValueSource::parse(data.as_deref()).read(&mut std::io::stdin(), stdin_is_terminal)?;
    let client = global.connect().await?;
    let js = async_nats::jetstream::new(client);
    let seq = pipe::push(&js, &pipe_name, id.as_deref(), None, payload.into()).await?;
    let row = vec![pipe_name.clone(), seq.to_string()];
    let pushed = Pushed {
        pipe: pipe_name,
        seq,
    };
    output::render(out, global.output, &pushed, &["PIPE", "SEQ"], vec![row])?;
    Ok(())
}

async fn stats(global: &GlobalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let client = global.connect().await?;
    let resp: PipesResponse = call::request(
        &client,
        &subjects::pipe::stats(),
        &PipesRequest {},
        Encoding::Protobuf,
        global.timeout,
    )
    .await?;
    let rows = resp
        .pipes
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.pending.to_string(),
                p.in_progress.to_string(),
                p.redelivered.to_string(),
                p.waiting_workers.to_string(),
                p.dead.to_string(),
                p.deliveries.to_string(),
                p.max_deliver.to_string(),
                format!("{}s", p.ack_wait_secs),
            ]
        })
        .collect();
    output::render(
        out,
        global.output,
        &resp,
        &[
            "PIPE",
            "PENDING",
            "IN PROGRESS",
            "REDELIVERED",
            "WORKERS WAITING",
            "DEAD",
            "DELIVERIES",
            "MAX DELIVER",
            "ACK WAIT",
        ],
        rows,
    )?;
    Ok(())
}

async fn list(
    global: &GlobalArgs,
    out: &mut dyn Write,
    pipe_name: &str,
    req: DlqListRequest,
) -> anyhow::Result<()> {
    subjects::pipe::validate_name(pipe_name).map_err(|m| anyhow::anyhow!("pipe: {m}"))?;
    let client = global.connect().await?;
    let resp: DlqListResponse = call::request(
        &client,
        &subjects::pipe::dlq_list(pipe_name),
        &req,
        Encoding::Protobuf,
        global.timeout,
    )
    .await?;
    let rows = resp
        .dead_letters
        .iter()
        .map(|d| {
            let time = d
                .dead_time
                .as_ref()
                .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
                .and_then(|t| t.format(&Rfc3339).ok())
                .unwrap_or_else(|| "-".into());
            vec![
                d.seq.to_string(),
                d.pipe_seq.to_string(),
                d.deliveries.to_string(),
                time,
                d.reason.clone(),
                serde_json::to_string(&String::from_utf8_lossy(&d.payload)).unwrap_or_default(),
            ]
        })
        .collect();
    output::render(
        out,
        global.output,
        &resp,
        &["SEQ", "PIPE SEQ", "DELIVERIES", "DEAD AT", "REASON", "DATA"],
        rows,
    )?;
    if resp.next_seq != 0 && global.output == output::OutputFormat::Table {
        eprintln!(
            "more: plant pipe dlq ls {pipe_name} --from-seq {}",
            resp.next_seq
        );
    }
    Ok(())
}

async fn retry(
    global: &GlobalArgs,
    out: &mut dyn Write,
    pipe_name: &str,
    req: DlqRetryRequest,
) -> anyhow::Result<()> {
    subjects::pipe::validate_name(pipe_name).map_err(|m| anyhow::anyhow!("pipe: {m}"))?;
    let client = global.connect().await?;
    let resp: DlqRetryResponse = call::request(
        &client,
        &subjects::pipe::dlq_retry(pipe_name),
        &req,
        Encoding::Protobuf,
        global.timeout,
    )
    .await?;
    let seqs: Vec<String> = resp.pipe_seqs.iter().map(u64::to_string).collect();
    let row = vec![
        pipe_name.to_string(),
        resp.retried.to_string(),
        seqs.join(","),
    ];
    output::render(
        out,
        global.output,
        &resp,
        &["PIPE", "RETRIED", "NEW SEQS"],
        vec![row],
    )?;
    Ok(())
}
