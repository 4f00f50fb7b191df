//! `plant state get|set|delete|list|watch`: keys in a scope, as an operator uses them.
//!
//! Requests go to the state service on `plantd.state.<op>.<scope>` (built by
//! [`subjects::state`]) in **protobuf** encoding: the `nats` CLI and the web UI exercise the
//! JSON path, so the CLI is what keeps the binary path honest; `plant req` covers raw JSON. The
//! scope is checked here first, so a typo such as `site1.>` is refused with the rule it broke
//! instead of becoming a wildcard subject. A service error reply (404, 409, 400, …) reaches
//! `main`'s error renderer as a [`plantd_shared::call::CallError`] and exits with 1.
//!
//! `watch` does not ask the service at all: it follows the JetStream KV mirror through
//! [`plantd_state::watch`], so it needs only read access to the bucket and keeps working while
//! the service restarts. Each change is written and flushed as one line (an aligned table cannot
//! stream); errors of a running watch go to stderr and the watch goes on.
//!
//! In tables, a cell that is empty or holds whitespace, control characters or a leading quote is
//! shown as a JSON string, so every change stays on one line and a key with spaces is
//! unambiguous; timestamps are RFC 3339 in UTC.

use std::{io::Write, time::Duration};

use anyhow::Context as _;
use futures::StreamExt as _;
use plantd_schemas::{
    state::v1::{
        DeleteRequest, DeleteResponse, GetRequest, GetResponse, ListEntry, ListRequest,
        ListResponse, SetRequest, SetResponse,
    },
    wkt::Timestamp,
};
use plantd_shared::{call, codec::Encoding, subjects};
use plantd_state::watch::{Change, ChangeOp, WatchFrom, WatchSpec};
use serde::Serialize;

use super::value_input::ValueSource;
use crate::{context::GlobalArgs, output};

/// Arguments of `plant state`.
#[derive(Debug, clap::Args)]
pub struct StateArgs {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    /// Read one key.
    Get {
        /// Scope, e.g. `site1.line2.oven`.
        scope: String,
        /// Key (any UTF-8).
        key: String,
        /// Print only the value, exactly as stored (no newline added).
        #[arg(long)]
        raw: bool,
    },
    /// Write one key; prints its new version.
    Set {
        /// Scope.
        scope: String,
        /// Key (any UTF-8).
        key: String,
        /// The value; `@FILE` reads a file; `-` or omitted reads stdin.
        value: Option<String>,
        /// Fail with 409 if the key exists.
        #[arg(long, conflicts_with = "expected_version")]
        create_only: bool,
        /// Compare-and-set: fail with 409 unless the key is at this version (0: must not exist).
        #[arg(long, value_name = "N")]
        expected_version: Option<u64>,
    },
    /// Delete one key.
    Delete {
        /// Scope.
        scope: String,
        /// Key.
        key: String,
        /// Fail with 409 unless the key is at this version.
        #[arg(long, value_name = "N")]
        expected_version: Option<u64>,
    },
    /// List the keys of a scope, in key order.
    List(ListArgs),
    /// Print changes as they happen, one line each, until Ctrl-C.
    Watch(WatchArgs),
}

/// `plant state list`.
#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Scope.
    scope: String,
    /// Only keys starting with this.
    #[arg(long, default_value = "", hide_default_value = true)]
    prefix: String,
    /// Page size (service default 100, at most 1000).
    #[arg(long, value_name = "N")]
    limit: Option<u32>,
    /// Continue after a previous page (`next_page_token`).
    #[arg(
        long,
        value_name = "TOKEN",
        default_value = "",
        hide_default_value = true
    )]
    page_token: String,
    /// Follow every page to the end.
    #[arg(long)]
    all: bool,
}

/// `plant state watch`.
#[derive(Debug, clap::Args)]
struct WatchArgs {
    /// Scope.
    scope: String,
    /// Only keys starting with this.
    #[arg(long, default_value = "", hide_default_value = true)]
    prefix: String,
    /// Also follow every sub-scope (`SCOPE.>`).
    #[arg(long)]
    subtree: bool,
    /// Start with the current value of every key.
    #[arg(long, conflicts_with = "from_version")]
    history: bool,
    /// Start at this bucket revision (replays retained history from there).
    #[arg(long, value_name = "REV")]
    from_version: Option<u64>,
    /// Stop after this many changes.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Stop after this long, e.g. `30s`, `5m`.
    #[arg(long = "for", value_name = "DURATION", value_parser = crate::context::parse_duration)]
    for_duration: Option<Duration>,
    /// JetStream KV bucket the state service mirrors into.
    #[arg(long, env = "PLANTD_STATE_KV_BUCKET", default_value = "plantd-state")]
    bucket: String,
}

/// Most entries `list --all` gathers before it gives up and asks for paging.
const MAX_ALL_ENTRIES: usize = 1_000_000;
/// Page size `list --all` asks for when `--limit` is not given.
const ALL_PAGE_SIZE: u32 = 1000;

/// `get` output.
#[derive(Debug, Serialize)]
struct KeyOutput {
    scope: String,
    key: String,
    value: String,
    version: u64,
    created: Option<String>,
    modified: Option<String>,
}

/// `set` output.
#[derive(Debug, Serialize)]
struct SetOutput {
    scope: String,
    key: String,
    version: u64,
    modified: Option<String>,
}

/// `delete` output.
#[derive(Debug, Serialize)]
struct DeleteOutput {
    scope: String,
    key: String,
    existed: bool,
    last_version: u64,
}

/// `list` output; `next_page_token` is null on the last page.
#[derive(Debug, Serialize)]
struct ListOutput {
    scope: String,
    entries: Vec<EntryOutput>,
    next_page_token: Option<String>,
}

#[derive(Debug, Serialize)]
struct EntryOutput {
    key: String,
    value: String,
    version: u64,
    modified: Option<String>,
}

/// One `watch` line in JSON.
#[derive(Debug, Serialize)]
struct ChangeOutput {
    revision: u64,
    op: &'static str,
    scope: String,
    key: String,
    value: String,
}

impl StateArgs {
    /// Runs the verb and prints its result.
    pub async fn run(self, global: &GlobalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
        match self.verb {
            Verb::Get { scope, key, raw } => get(global, out, scope, key, raw).await,
            Verb::Set {
                scope,
                key,
                value,
                create_only,
                expected_version,
            } => {
                checked(&scope)?;
                // Read the value before connecting, so a bad @FILE fails without a server.
                let value = {
                    use std::io::IsTerminal as _;
                    let stdin = std::io::stdin();
                    let is_terminal = stdin.is_terminal();
                    ValueSource::parse(value.as_deref()).read(&mut stdin.lock(), is_terminal)?
                };
                let req = SetRequest {
                    key: key.clone(),
                    value,
                    create_only,
                    expected_version,
                };
                let client = global.connect().await?;
                let resp: SetResponse = request(&client, global, "set", &scope, &req).await?;
                let modified = resp.modified.as_ref().map(rfc3339);
                let row = vec![cell(&key), resp.version.to_string(), text(&modified)];
                let output = SetOutput {
                    scope,
                    key,
                    version: resp.version,
                    modified,
                };
                output::render(
                    out,
                    global.output,
                    &output,
                    &["KEY", "VERSION", "MODIFIED"],
                    vec![row],
                )?;
                Ok(())
            }
            Verb::Delete {
                scope,
                key,
                expected_version,
            } => {
                checked(&scope)?;
                let req = DeleteRequest {
                    key: key.clone(),
                    expected_version,
                };
                let client = global.connect().await?;
                let resp: DeleteResponse = request(&client, global, "delete", &scope, &req).await?;
                if !resp.existed {
                    eprintln!("note: key {key:?} did not exist in scope {scope:?}");
                }
                let row = vec![
                    cell(&key),
                    resp.existed.to_string(),
                    resp.last_version.to_string(),
                ];
                let output = DeleteOutput {
                    scope,
                    key,
                    existed: resp.existed,
                    last_version: resp.last_version,
                };
                output::render(
                    out,
                    global.output,
                    &output,
                    &["KEY", "EXISTED", "LAST VERSION"],
                    vec![row],
                )?;
                Ok(())
            }
            Verb::List(args) => list(global, out, args).await,
            Verb::Watch(args) => watch(global, out, args).await,
        }
    }
}

async fn get(
    global: &GlobalArgs,
    out: &mut dyn Write,
    scope: String,
    key: String,
    raw: bool,
) -> anyhow::Result<()> {
    checked(&scope)?;
    let client = global.connect().await?;
    let resp: GetResponse = request(&client, global, "get", &scope, &GetRequest { key }).await?;
    if raw {
        out.write_all(resp.value.as_bytes())?;
        return Ok(out.flush()?);
    }
    let output = KeyOutput {
        scope,
        key: resp.key,
        value: resp.value,
        version: resp.version,
        created: resp.created.as_ref().map(rfc3339),
        modified: resp.modified.as_ref().map(rfc3339),
    };
    let row = vec![
        cell(&output.key),
        cell(&output.value),
        output.version.to_string(),
        text(&output.modified),
    ];
    output::render(
        out,
        global.output,
        &output,
        &["KEY", "VALUE", "VERSION", "MODIFIED"],
        vec![row],
    )?;
    Ok(())
}

async fn list(global: &GlobalArgs, out: &mut dyn Write, args: ListArgs) -> anyhow::Result<()> {
    checked(&args.scope)?;
    let limit = match (args.limit, args.all) {
        (Some(limit), _) => limit,
        (None, true) => ALL_PAGE_SIZE,
        (None, false) => 0,
    };
    let mut req = ListRequest {
        prefix: args.prefix,
        limit,
        page_token: args.page_token,
    };
    let client = global.connect().await?;
    let mut entries: Vec<ListEntry> = Vec::new();
    let next = loop {
        let resp: ListResponse = request(&client, global, "list", &args.scope, &req).await?;
        entries.extend(resp.entries);
        if !args.all || resp.next_page_token.is_empty() {
            break resp.next_page_token;
        }
        anyhow::ensure!(
            entries.len() <= MAX_ALL_ENTRIES,
            "scope {:?} has more than {MAX_ALL_ENTRIES} keys: page with --limit and --page-token",
            args.scope
        );
        anyhow::ensure!(
            resp.next_page_token != req.page_token,
            "the service returned the same page token twice ({:?}); stopping",
            req.page_token
        );
        req.page_token = resp.next_page_token;
    };
    let entries: Vec<EntryOutput> = entries
        .into_iter()
        .map(|e| EntryOutput {
            key: e.key,
            value: e.value,
            version: e.version,
            modified: e.modified.as_ref().map(rfc3339),
        })
        .collect();
    let rows = entries
        .iter()
        .map(|e| {
            vec![
                cell(&e.key),
                cell(&e.value),
                e.version.to_string(),
                text(&e.modified),
            ]
        })
        .collect();
    let output = ListOutput {
        scope: args.scope,
        entries,
        next_page_token: (!next.is_empty()).then_some(next),
    };
    output::render(
        out,
        global.output,
        &output,
        &["KEY", "VALUE", "VERSION", "MODIFIED"],
        rows,
    )?;
    if let (Some(token), output::OutputFormat::Table) = (&output.next_page_token, global.output) {
        eprintln!("more keys: --page-token {token} (or --all for every page)");
    }
    Ok(())
}

async fn watch(global: &GlobalArgs, out: &mut dyn Write, args: WatchArgs) -> anyhow::Result<()> {
    checked(&args.scope)?;
    let from = match (args.history, args.from_version) {
        (true, _) => WatchFrom::Current,
        (false, Some(rev)) => WatchFrom::Revision(rev),
        (false, None) => WatchFrom::Now,
    };
    let client = global.connect().await?;
    let spec = WatchSpec {
        scope: args.scope.clone(),
        subtree: args.subtree,
        prefix: args.prefix,
        from,
    };
    let changes = plantd_state::watch::watch(&client, &args.bucket, spec).await?;
    let mut changes = std::pin::pin!(changes);
    eprintln!(
        "watching {}{} in bucket {} (Ctrl-C to stop)",
        args.scope,
        if args.subtree {
            " and its sub-scopes"
        } else {
            ""
        },
        args.bucket
    );
    if global.output == output::OutputFormat::Table {
        writeln!(out, "REV OP SCOPE KEY VALUE")?;
        out.flush()?;
    }
    let stop_at = async {
        match args.for_duration {
            Some(duration) => tokio::time::sleep(duration).await,
            None => std::future::pending().await,
        }
    };
    let mut stop_at = std::pin::pin!(stop_at);
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    let mut seen = 0u64;
    while args.count != Some(seen) {
        tokio::select! {
            item = changes.next() => match item {
                Some(Ok(change)) => {
                    write_change(out, global.output, change)?;
                    seen += 1;
                }
                Some(Err(err)) => eprintln!("warning: {err}"),
                None => anyhow::bail!("the watch ended: the connection to NATS closed"),
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

fn write_change(
    out: &mut dyn Write,
    format: output::OutputFormat,
    change: Change,
) -> anyhow::Result<()> {
    let op = match change.op {
        ChangeOp::Put => "put",
        ChangeOp::Delete => "delete",
    };
    match format {
        output::OutputFormat::Json => {
            let line = ChangeOutput {
                revision: change.revision,
                op,
                scope: change.scope,
                key: change.key,
                value: change.value,
            };
            serde_json::to_writer(&mut *out, &line)?;
            writeln!(out)?;
        }
        output::OutputFormat::Table => writeln!(
            out,
            "{} {op} {} {} {}",
            change.revision,
            cell(&change.scope),
            cell(&change.key),
            cell(&change.value)
        )?,
    }
    out.flush()?;
    Ok(())
}

/// Sends one protobuf request to the state service's `op` endpoint for `scope`.
async fn request<Req, Resp>(
    client: &async_nats::Client,
    global: &GlobalArgs,
    op: &str,
    scope: &str,
    req: &Req,
) -> anyhow::Result<Resp>
where
    Req: plantd_shared::codec::WireMessage,
    Resp: plantd_shared::codec::WireMessage,
{
    let subject = subjects::state::key_op(op, scope);
    Ok(call::request(client, &subject, req, Encoding::Protobuf, global.timeout).await?)
}

/// Refuses a scope that is not a valid subject suffix, before it becomes one.
pub(super) fn checked(scope: &str) -> anyhow::Result<()> {
    subjects::validate_scope(scope).context("invalid scope")
}

/// A table cell: as is when unambiguous, else as a JSON string (see the module docs).
fn cell(text: &str) -> String {
    let plain = !text.is_empty()
        && !text.starts_with('"')
        && !text.chars().any(|c| c.is_whitespace() || c.is_control());
    if plain {
        text.to_string()
    } else {
        serde_json::to_string(text).expect("a string always serializes to JSON")
    }
}

/// An optional timestamp cell; `-` when absent.
pub(super) fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".into())
}

/// `2025-03-01T10:20:30.123Z`: a protobuf timestamp as RFC 3339 in UTC, to the millisecond.
pub(super) fn rfc3339(ts: &Timestamp) -> String {
    let days = ts.seconds.div_euclid(86_400);
    let secs = ts.seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let millis = ts.nanos.clamp(0, 999_999_999) / 1_000_000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Year, month, day of a day count since 1970-01-01 (proleptic Gregorian; H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let ts = |seconds, nanos| Timestamp { seconds, nanos };
        assert_eq!(rfc3339(&ts(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(&ts(1_709_288_430, 123_456_789)),
            "2024-03-01T10:20:30.123Z"
        );
        assert_eq!(rfc3339(&ts(951_782_400, 0)), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(&ts(-1, 0)), "1969-12-31T23:59:59.000Z");
    }

    #[test]
    fn cells_stay_on_one_line_and_unambiguous() {
        assert_eq!(cell("temp"), "temp");
        assert_eq!(cell("grüß.ü"), "grüß.ü");
        assert_eq!(cell("a b"), "\"a b\"");
        assert_eq!(cell("x\ny"), "\"x\\ny\"");
        assert_eq!(cell(""), "\"\"");
        assert_eq!(cell("\"q"), "\"\\\"q\"");
    }

    #[test]
    fn scopes_are_checked() {
        assert!(checked("site1.line2").is_ok());
        assert!(checked("site1.>").is_err());
        assert!(checked("a..b").is_err());
    }
}
