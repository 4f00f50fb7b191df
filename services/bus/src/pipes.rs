//! `plantd.buses.pipes`, `plantd.buses.dlq.list.<pipe>` and `plantd.buses.dlq.retry.<pipe>`.
//!
//! People may push onto a pipe but hold no JetStream API rights (docs/identity.md), so what
//! reads consumers and the dead-letter stream is answered here, with this service's rights, for
//! the pipes in its config only. A retry pushes the dead letter back onto its pipe first and
//! deletes it second: a crash in between leaves the item both queued and dead (retry it again
//! or ignore it), never lost.

use std::{collections::HashMap, sync::Arc};

use async_nats::{
    HeaderMap,
    jetstream::{
        message::StreamMessage,
        stream::{DirectGetErrorKind, Stream},
    },
};
use futures::TryStreamExt;
use plantd_schemas::bus::v1::{
    DeadLetter, DlqListRequest, DlqListResponse, DlqRetryRequest, DlqRetryResponse, PipeStats,
    PipesRequest, PipesResponse,
};
use plantd_shared::{
    ErrorCode, ServiceError, micro::RequestContext, pipe as shared_pipe, subjects::pipe, timestamp,
};

use crate::handlers::{BusApp, unavailable};

/// Dead letters listed when the request does not say.
pub const DEFAULT_LIST_LIMIT: u32 = 100;
/// Most dead letters listed in one reply.
pub const MAX_LIST_LIMIT: u32 = 1000;
/// Most dead letters one `retry` with `all` puts back (call again for more).
pub const MAX_RETRY: usize = 10_000;

/// `plantd.buses.pipes`.
pub async fn stats(
    app: &Arc<BusApp>,
    _ctx: RequestContext,
    _req: PipesRequest,
) -> Result<PipesResponse, ServiceError> {
    if app.config.pipes.is_empty() {
        return Ok(PipesResponse::default());
    }
    let items = app
        .js
        .get_stream(pipe::STREAM)
        .await
        .map_err(|e| unavailable(&format!("cannot read stream {}", pipe::STREAM), &e))?;
    let mut dlq = app
        .js
        .get_stream(pipe::DLQ_STREAM)
        .await
        .map_err(|e| unavailable(&format!("cannot read stream {}", pipe::DLQ_STREAM), &e))?;
    let dead = dead_counts(&mut dlq).await?;
    let mut pipes = Vec::with_capacity(app.config.pipes.len());
    for def in &app.config.pipes {
        let info = items.consumer_info(&def.name).await.map_err(|e| {
            unavailable(
                &format!("cannot read the consumer of pipe {}", def.name),
                &e,
            )
        })?;
        pipes.push(PipeStats {
            name: def.name.clone(),
            pending: info.num_pending,
            in_progress: info.num_ack_pending as u64,
            redelivered: info.num_redelivered as u64,
            waiting_workers: info.num_waiting as u64,
            deliveries: info.delivered.consumer_sequence,
            dead: dead
                .get(&pipe::dead_letters(&def.name))
                .copied()
                .unwrap_or(0),
            max_deliver: def.max_deliver,
            ack_wait_secs: def.ack_wait_secs,
        });
    }
    Ok(PipesResponse { pipes })
}

/// Dead letters per subject.
async fn dead_counts(
    dlq: &mut async_nats::jetstream::stream::Stream,
) -> Result<HashMap<String, u64>, ServiceError> {
    let mut subjects = dlq
        .info_with_subjects(pipe::every_dead_letter())
        .await
        .map_err(|e| unavailable("cannot count dead letters", &e))?;
    let mut counts = HashMap::new();
    while let Some((subject, count)) = subjects
        .try_next()
        .await
        .map_err(|e| unavailable("cannot count dead letters", &e))?
    {
        counts.insert(subject, count as u64);
    }
    Ok(counts)
}

/// The pipe a `dlq` subject names, if it is configured.
fn pipe_of<'a>(app: &BusApp, ctx: &'a RequestContext) -> Result<&'a str, ServiceError> {
    let name = ctx
        .subject_tail(pipe::DLQ_PREFIX_TOKENS)
        .ok_or_else(|| ServiceError::invalid_field("pipe", "the subject names no pipe"))?;
    if app.config.pipe(name).is_none() {
        let known: Vec<&str> = app.config.pipes.iter().map(|d| d.name.as_str()).collect();
        return Err(ServiceError::new(
            ErrorCode::NotFound,
            format!("no pipe {name:?}; pipes: {}", known.join(", ")),
        ));
    }
    Ok(name)
}

async fn dead_letter_stream(app: &BusApp) -> Result<Stream, ServiceError> {
    app.js
        .get_stream(pipe::DLQ_STREAM)
        .await
        .map_err(|e| unavailable(&format!("cannot read stream {}", pipe::DLQ_STREAM), &e))
}

/// The dead letters of `pipe_name` from `from_seq` on, at most `limit`.
async fn read_dead_letters(
    dlq: &Stream,
    pipe_name: &str,
    from_seq: u64,
    limit: usize,
) -> Result<Vec<StreamMessage>, ServiceError> {
    let subject = pipe::dead_letters(pipe_name);
    let mut found = Vec::new();
    let mut next = from_seq.max(1);
    while found.len() < limit {
        match dlq
            .direct_get_next_for_subject(subject.as_str(), Some(next))
            .await
        {
            Ok(message) => {
                next = message.sequence + 1;
                found.push(message);
            }
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => break,
            Err(e) => return Err(unavailable("cannot read dead letters", &e)),
        }
    }
    Ok(found)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).map(|v| v.as_str()).unwrap_or_default()
}

fn to_dead_letter(message: StreamMessage) -> DeadLetter {
    let h = &message.headers;
    let own = shared_pipe::own_headers(h)
        .iter()
        .map(|(name, values)| {
            let joined: Vec<&str> = values.iter().map(|v| v.as_str()).collect();
            (name.to_string(), joined.join(", "))
        })
        .collect();
    DeadLetter {
        seq: message.sequence,
        pipe: header(h, shared_pipe::HEADER_PIPE).to_string(),
        pipe_seq: header(h, shared_pipe::HEADER_PIPE_SEQ).parse().unwrap_or(0),
        deliveries: header(h, shared_pipe::HEADER_DELIVERIES)
            .parse()
            .unwrap_or(0),
        reason: header(h, shared_pipe::HEADER_REASON).to_string(),
        dead_time: Some(timestamp::of(message.time)),
        payload: message.payload.to_vec(),
        headers: own,
    }
}

/// `plantd.buses.dlq.list.<pipe>`.
pub async fn dlq_list(
    app: &Arc<BusApp>,
    ctx: RequestContext,
    req: DlqListRequest,
) -> Result<DlqListResponse, ServiceError> {
    let pipe_name = pipe_of(app, &ctx)?;
    let limit = match req.limit {
        0 => DEFAULT_LIST_LIMIT,
        n if n > MAX_LIST_LIMIT => {
            return Err(ServiceError::invalid_field(
                "limit",
                format!("{n} is more than {MAX_LIST_LIMIT}; page with from_seq"),
            ));
        }
        n => n,
    } as usize;
    let dlq = dead_letter_stream(app).await?;
    // One more than asked says whether there is a next page.
    let mut found = read_dead_letters(&dlq, pipe_name, req.from_seq, limit + 1).await?;
    let next_seq = if found.len() > limit {
        found.pop().map_or(0, |m| m.sequence)
    } else {
        0
    };
    Ok(DlqListResponse {
        dead_letters: found.into_iter().map(to_dead_letter).collect(),
        next_seq,
    })
}

/// `plantd.buses.dlq.retry.<pipe>`.
pub async fn dlq_retry(
    app: &Arc<BusApp>,
    ctx: RequestContext,
    req: DlqRetryRequest,
) -> Result<DlqRetryResponse, ServiceError> {
    let pipe_name = pipe_of(app, &ctx)?;
    let dlq = dead_letter_stream(app).await?;
    let chosen = match (req.all, req.seqs.is_empty()) {
        (true, true) => read_dead_letters(&dlq, pipe_name, 1, MAX_RETRY).await?,
        (false, false) => {
            let subject = pipe::dead_letters(pipe_name);
            let mut chosen = Vec::with_capacity(req.seqs.len());
            // Every sequence is checked before anything moves: all or nothing for bad input.
            for (i, &seq) in req.seqs.iter().enumerate() {
                let message = match dlq.direct_get(seq).await {
                    Ok(m) if m.subject.as_str() == subject => m,
                    Ok(_) => return Err(no_dead_letter(i, seq, pipe_name)),
                    Err(e) if e.kind() == DirectGetErrorKind::NotFound => {
                        return Err(no_dead_letter(i, seq, pipe_name));
                    }
                    Err(e) => return Err(unavailable("cannot read dead letters", &e)),
                };
                chosen.push(message);
            }
            chosen
        }
        (true, false) => {
            return Err(ServiceError::invalid_field(
                "seqs",
                "give seqs or all, not both",
            ));
        }
        (false, true) => {
            return Err(ServiceError::invalid_field(
                "seqs",
                "name the dead letters to retry, or set all",
            ));
        }
    };
    let mut pipe_seqs = Vec::with_capacity(chosen.len());
    for message in chosen {
        let headers = shared_pipe::own_headers(&message.headers);
        let headers = (!headers.is_empty()).then_some(headers);
        let new_seq = shared_pipe::push(&app.js, pipe_name, None, headers, message.payload)
            .await
            .map_err(|e| unavailable("cannot push the item back", &e))?;
        pipe_seqs.push(new_seq);
        dlq.delete_message(message.sequence).await.map_err(|e| {
            unavailable(
                &format!(
                    "item re-queued as {new_seq} but dead letter {} not removed",
                    message.sequence
                ),
                &e,
            )
        })?;
        tracing::info!(pipe = %pipe_name, dead_letter = message.sequence, seq = new_seq, "dead letter re-queued");
    }
    Ok(DlqRetryResponse {
        retried: pipe_seqs.len() as u64,
        pipe_seqs,
    })
}

fn no_dead_letter(index: usize, seq: u64, pipe_name: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::NotFound,
        format!("seqs[{index}]: no dead letter {seq} of pipe {pipe_name}"),
    )
}
