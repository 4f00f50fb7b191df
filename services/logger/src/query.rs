//! `plantd.logger.query`: stored records by service, level, time and text, oldest first.
//!
//! Service and level are subject tokens, so the server filters them (one filter subject per
//! level asked for); time, text and the limit are applied here while reading an ordered
//! consumer that this service creates with its own rights (people hold no JetStream API
//! rights). A reply always says where to resume (`next_cursor`), which is also how
//! `plant logs -f` follows: it asks again from there.
//!
//! A record's time is when it was logged, but the stream is in arrival order, and records
//! shipped after an outage arrive late. A query `since` T therefore starts reading at what
//! arrived from T minus `late_arrival_secs` and keeps only records logged at or after T.

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use futures::StreamExt;
use plantd_schemas::logger::v1::{LogRecord, QueryRequest, QueryResponse};
use plantd_shared::{
    ErrorCode, ServiceError, micro::RequestContext, subjects, subjects::log, timestamp,
};
use time::OffsetDateTime;

/// Records returned when the request does not say.
pub const DEFAULT_LIMIT: u32 = 100;
/// Most records in one reply.
pub const MAX_LIMIT: u32 = 1000;
/// Longest `contains` text.
pub const MAX_CONTAINS: usize = 1024;
/// Most records looked at for one reply; past it the reply says `more` and where to resume.
pub const MAX_SCANNED: u64 = 200_000;
/// Longest time one reply reads for.
const READ_BUDGET: Duration = Duration::from_secs(5);

/// What the handler shares.
pub struct LoggerApp {
    /// JetStream with the logger's rights.
    pub js: jetstream::Context,
    /// How late a record may arrive and still be found from its own time.
    pub late_arrival: Duration,
}

/// A checked request.
struct Filter {
    subjects: Vec<String>,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    contains: String,
    limit: usize,
}

fn check(req: &QueryRequest) -> Result<Filter, ServiceError> {
    let service = if req.service.is_empty() {
        "*"
    } else {
        let token_ok = !req.service.contains('.') && subjects::validate_scope(&req.service).is_ok();
        if !token_ok {
            return Err(ServiceError::invalid_field(
                "service",
                format!(
                    "{:?} is not a service name (one token, no wildcards)",
                    req.service
                ),
            ));
        }
        req.service.as_str()
    };
    let subjects = if req.min_level.is_empty() {
        vec![log::record(service, "*")]
    } else {
        let levels = log::at_least(&req.min_level).ok_or_else(|| {
            ServiceError::invalid_field(
                "min_level",
                format!(
                    "unknown level {:?}; levels are {}",
                    req.min_level,
                    log::LEVELS.join(", ")
                ),
            )
        })?;
        levels.iter().map(|l| log::record(service, l)).collect()
    };
    let time = |ts: &Option<plantd_schemas::wkt::Timestamp>, field: &str| {
        ts.as_ref()
            .map(|t| {
                timestamp::to_time(t)
                    .ok_or_else(|| ServiceError::invalid_field(field, "not a valid time"))
            })
            .transpose()
    };
    let since = time(&req.since, "since")?;
    let until = time(&req.until, "until")?;
    if let (Some(s), Some(u)) = (since, until)
        && u <= s
    {
        return Err(ServiceError::invalid_field("until", "must be after since"));
    }
    if req.contains.len() > MAX_CONTAINS {
        return Err(ServiceError::invalid_field(
            "contains",
            format!("{} bytes; at most {MAX_CONTAINS}", req.contains.len()),
        ));
    }
    let limit = match req.limit {
        0 => DEFAULT_LIMIT,
        n if n > MAX_LIMIT => {
            return Err(ServiceError::invalid_field(
                "limit",
                format!("{n} is more than {MAX_LIMIT}; page with cursor"),
            ));
        }
        n => n,
    } as usize;
    Ok(Filter {
        subjects,
        since,
        until,
        contains: req.contains.clone(),
        limit,
    })
}

impl Filter {
    fn matches(&self, record: &LogRecord) -> bool {
        let time = record.time.as_ref().and_then(timestamp::to_time);
        if let Some(since) = self.since
            && time.is_none_or(|t| t < since)
        {
            return false;
        }
        if let Some(until) = self.until
            && time.is_none_or(|t| t >= until)
        {
            return false;
        }
        self.contains.is_empty()
            || record.message.contains(&self.contains)
            || record.target.contains(&self.contains)
            || record.fields.values().any(|v| v.contains(&self.contains))
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> ServiceError {
    ServiceError::new(ErrorCode::Unavailable, format!("{what}: {e}"))
}

/// `plantd.logger.query`.
pub async fn query(
    app: &Arc<LoggerApp>,
    _ctx: RequestContext,
    req: QueryRequest,
) -> Result<QueryResponse, ServiceError> {
    let filter = check(&req)?;
    let stream = app
        .js
        .get_stream(log::STREAM)
        .await
        .map_err(|e| unavailable(&format!("cannot read stream {}", log::STREAM), e))?;
    let last_seq = stream.cached_info().state.last_sequence;
    let end = QueryResponse {
        records: Vec::new(),
        next_cursor: req.cursor.max(last_seq + 1),
        more: false,
    };
    if req.cursor > last_seq {
        return Ok(end);
    }
    let deliver_policy = match (req.cursor, filter.since) {
        (0, None) => DeliverPolicy::All,
        (0, Some(since)) => DeliverPolicy::ByStartTime {
            start_time: since - app.late_arrival,
        },
        (cursor, _) => DeliverPolicy::ByStartSequence {
            start_sequence: cursor,
        },
    };
    let consumer = stream
        .create_consumer(OrderedConfig {
            description: Some("plantd logger query".into()),
            filter_subjects: filter.subjects.clone(),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable("cannot read the log", e))?;
    if consumer.cached_info().num_pending == 0 {
        return Ok(end);
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| unavailable("cannot read the log", e))?;
    let deadline = tokio::time::Instant::now() + READ_BUDGET;
    let mut records = Vec::new();
    let mut scanned = 0u64;
    let mut next_cursor = end.next_cursor;
    let mut more = false;
    loop {
        let next = tokio::time::timeout_at(deadline, messages.next()).await;
        let message = match next {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(e))) => return Err(unavailable("reading the log", e)),
            Ok(None) => break,
            Err(_) => {
                more = true;
                break;
            }
        };
        let Ok(info) = message.info() else { continue };
        let (seq, pending) = (info.stream_sequence, info.pending);
        scanned += 1;
        next_cursor = seq + 1;
        if let Ok(mut record) = serde_json::from_slice::<LogRecord>(&message.payload)
            && filter.matches(&record)
        {
            record.seq = seq;
            records.push(record);
        }
        if pending == 0 {
            break;
        }
        if records.len() >= filter.limit || scanned >= MAX_SCANNED {
            more = true;
            break;
        }
    }
    Ok(QueryResponse {
        records,
        next_cursor,
        more,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_become_filter_subjects_and_bad_fields_are_named() {
        let f = check(&QueryRequest {
            service: "state".into(),
            min_level: "warn".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            f.subjects,
            ["plantd.log.state.error", "plantd.log.state.warn"]
        );
        assert_eq!(f.limit, DEFAULT_LIMIT as usize);
        for (req, field) in [
            (
                QueryRequest {
                    service: "a.b".into(),
                    ..Default::default()
                },
                "service",
            ),
            (
                QueryRequest {
                    min_level: "loud".into(),
                    ..Default::default()
                },
                "min_level",
            ),
            (
                QueryRequest {
                    limit: 5000,
                    ..Default::default()
                },
                "limit",
            ),
            (
                QueryRequest {
                    since: Some(timestamp::of(OffsetDateTime::UNIX_EPOCH)),
                    until: Some(timestamp::of(OffsetDateTime::UNIX_EPOCH)),
                    ..Default::default()
                },
                "until",
            ),
        ] {
            let e = check(&req).err().expect("refused");
            assert_eq!(e.field.as_deref(), Some(field), "{e:?}");
        }
    }
}
