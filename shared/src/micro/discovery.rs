//! The `$SRV.PING|INFO|STATS` responders of one service instance (ADR-32).
//!
//! Each instance answers all three verbs on plain (non-queue) subscriptions, so a discovery
//! request reaches every instance: `$SRV.<VERB>` (all services), `$SRV.<VERB>.<name>` and
//! `$SRV.<VERB>.<name>.<id>`. One wildcard subscription per form covers the three verbs. A
//! failed reply is logged and the responder keeps going (async-nats' version ends its task on
//! the first error, NATS-PITFALLS.md §1.2.11).

use std::sync::Arc;

use futures::StreamExt;

use super::{
    protocol::{
        EndpointStats, INFO_TYPE, InfoResponse, PING_TYPE, PingResponse, STATS_TYPE, StatsResponse,
    },
    service::ServiceShared,
};
use crate::subjects;

/// Subscribes the three discovery subjects and answers until the token is cancelled.
pub(crate) async fn spawn(
    client: async_nats::Client,
    shared: Arc<ServiceShared>,
    stop: tokio_util::sync::CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, async_nats::SubscribeError> {
    let name = shared.name.as_str();
    let id = shared.id.as_str();
    let mut subs = Vec::new();
    for subject in [
        subjects::srv("*", None, None),
        subjects::srv("*", Some(name), None),
        subjects::srv("*", Some(name), Some(id)),
    ] {
        subs.push(client.subscribe(subject).await?);
    }
    let mut all = futures::stream::select_all(subs);
    Ok(tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                msg = all.next() => msg,
                _ = stop.cancelled() => break,
            };
            let Some(msg) = msg else { break };
            let Some(reply) = msg.reply else { continue };
            let verb = msg.subject.split('.').nth(1).unwrap_or_default();
            let body = match verb {
                "PING" => serde_json::to_vec(&ping(&shared)),
                "INFO" => serde_json::to_vec(&info(&shared)),
                "STATS" => serde_json::to_vec(&stats(&shared)),
                _ => continue,
            };
            let body = body.expect("micro responses are plain structs and always serialize");
            if let Err(err) = client.publish(reply, body.into()).await {
                tracing::warn!(error = %err, verb, "cannot answer discovery request");
            }
        }
    }))
}

/// The PING reply.
pub fn ping(shared: &ServiceShared) -> PingResponse {
    PingResponse {
        kind: PING_TYPE.into(),
        name: shared.name.clone(),
        id: shared.id.clone(),
        version: shared.version.clone(),
        metadata: shared.metadata.clone(),
    }
}

/// The INFO reply.
pub fn info(shared: &ServiceShared) -> InfoResponse {
    InfoResponse {
        kind: INFO_TYPE.into(),
        name: shared.name.clone(),
        id: shared.id.clone(),
        version: shared.version.clone(),
        metadata: shared.metadata.clone(),
        description: shared.description.clone(),
        endpoints: shared.endpoints.iter().map(|e| e.info()).collect(),
    }
}

/// The STATS reply.
pub fn stats(shared: &ServiceShared) -> StatsResponse {
    StatsResponse {
        kind: STATS_TYPE.into(),
        name: shared.name.clone(),
        id: shared.id.clone(),
        version: shared.version.clone(),
        metadata: shared.metadata.clone(),
        started: shared.started.clone(),
        endpoints: shared
            .endpoints
            .iter()
            .map(|e| {
                let s = e.counters.snapshot();
                EndpointStats {
                    name: e.name.clone(),
                    subject: e.subject.clone(),
                    queue_group: e.queue_group.clone(),
                    num_requests: s.requests,
                    num_errors: s.errors,
                    last_error: s.last_error,
                    processing_time: s.processing_ns,
                    average_processing_time: s.processing_ns.checked_div(s.requests).unwrap_or(0),
                }
            })
            .collect(),
        breakers: shared
            .breakers
            .as_ref()
            .map(|b| b.snapshot())
            .unwrap_or_default(),
    }
}
