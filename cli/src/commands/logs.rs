//! `plant logs`: what every plantd process logged, from the logger, oldest first.
//!
//! Every query goes to `plantd.logger.query`; `-f` follows by asking again from the cursor the
//! previous reply gave, every [`FOLLOW_EVERY`], so a record is printed once, in stream order,
//! and none is skipped across a slow reply. One line per record, flushed, so a pipe sees them
//! as they come; `-o json` prints each record as one JSON object per line.

use std::{io::Write, time::Duration};

use anyhow::Context as _;
use plantd_schemas::logger::v1::{LogRecord, QueryRequest, QueryResponse};
use plantd_shared::{call, codec::Encoding, subjects::log, timestamp};
use time::OffsetDateTime;

use super::state::rfc3339;
use crate::{
    context::{GlobalArgs, parse_duration},
    output::OutputFormat,
};

/// Pause between two queries of `-f` when the last one reached the end.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// Arguments of `plant logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Keep printing new records as they arrive, until Ctrl-C.
    #[arg(short, long)]
    follow: bool,
    /// Only this service (`state`, `buses`, `identity`, …).
    #[arg(long)]
    service: Option<String>,
    /// Only this level or more severe: error, warn, info, debug, trace.
    #[arg(long, value_parser = log::LEVELS)]
    level: Option<String>,
    /// Records logged this long ago or later (`30s`, `5m`, `2h`).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    since: Duration,
    /// Only records logged more than this long ago.
    #[arg(long, value_parser = parse_duration, conflicts_with = "follow")]
    until: Option<Duration>,
    /// Only records whose message, target or a field contains this text.
    #[arg(long)]
    contains: Option<String>,
    /// At most this many records (without -f).
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

impl LogsArgs {
    /// Runs the command.
    pub async fn run(self, global: &GlobalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
        let now = OffsetDateTime::now_utc();
        let mut req = QueryRequest {
            service: self.service.clone().unwrap_or_default(),
            min_level: self.level.clone().unwrap_or_default(),
            since: Some(timestamp::of(now - self.since)),
            until: self.until.map(|ago| timestamp::of(now - ago)),
            contains: self.contains.clone().unwrap_or_default(),
            limit: 1000,
            cursor: 0,
        };
        let client = global.connect().await?;
        let mut printed = 0usize;
        let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
        loop {
            if !self.follow {
                let left = self.limit.saturating_sub(printed);
                if left == 0 {
                    break;
                }
                req.limit = u32::try_from(left.min(1000)).unwrap_or(1000);
            }
            let resp: QueryResponse = call::request(
                &client,
                &log::query(),
                &req,
                Encoding::Protobuf,
                global.timeout,
            )
            .await?;
            for record in &resp.records {
                write_record(out, global.output, record)?;
            }
            printed += resp.records.len();
            req.cursor = resp.next_cursor;
            if resp.more {
                continue;
            }
            if !self.follow {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(FOLLOW_EVERY) => {}
                signal = &mut ctrl_c => {
                    signal.context("cannot listen for Ctrl-C")?;
                    break;
                }
            }
        }
        Ok(())
    }
}

fn write_record(
    out: &mut dyn Write,
    format: OutputFormat,
    record: &LogRecord,
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => serde_json::to_writer(&mut *out, record)?,
        OutputFormat::Table => {
            let time = record
                .time
                .as_ref()
                .map(rfc3339)
                .unwrap_or_else(|| "-".into());
            write!(
                out,
                "{time} {:<5} {:<9} {}",
                record.level.to_uppercase(),
                record.service,
                record.message
            )?;
            let mut fields: Vec<_> = record.fields.iter().collect();
            fields.sort_unstable();
            for (name, value) in fields {
                write!(out, " {name}={value}")?;
            }
        }
    }
    writeln!(out)?;
    out.flush()?;
    Ok(())
}
