//! `plantd.buses.info` and `plantd.buses.replay.<bus>.<scope>`.
//!
//! A replay is a JetStream consumer, and people may not create consumers: nats-server does not
//! check a push consumer's deliver subject against its creator's permissions (issue #9). So,
//! as for state watches, this service creates the consumer with its own rights; the server
//! lets a person ask only for scopes it may read, the filter is fixed inside that scope, and
//! the deliver subject is `$PLANTD.replay.<bus>.<scope>.<token>`, which no person may publish
//! to and only readers of the scope may subscribe to. The consumer is ephemeral, acks nothing,
//! heartbeats, and the server deletes it once nobody has listened for [`INACTIVE`].

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, ReplayPolicy, push},
};
use plantd_schemas::bus::v1::{BusInfo, InfoRequest, InfoResponse, ReplayRequest, ReplayResponse};
use plantd_shared::{
    ErrorCode, ServiceError, delivery,
    micro::RequestContext,
    subjects::{self, bus},
    timestamp,
};

use crate::config::BusConfig;

/// Idle heartbeat of a replay consumer.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// A replay consumer nobody listens to is deleted after this.
pub const INACTIVE: Duration = Duration::from_secs(30);

/// What the handlers share.
pub struct BusApp {
    /// JetStream with the bus service's rights.
    pub js: jetstream::Context,
    /// The configured buses.
    pub config: BusConfig,
}

pub(crate) fn unavailable(what: &str, e: &dyn std::fmt::Display) -> ServiceError {
    ServiceError::new(ErrorCode::Unavailable, format!("{what}: {e}"))
}

/// `plantd.buses.info`.
pub async fn info(
    app: &Arc<BusApp>,
    _ctx: RequestContext,
    _req: InfoRequest,
) -> Result<InfoResponse, ServiceError> {
    let mut buses = Vec::with_capacity(app.config.buses.len());
    for def in &app.config.buses {
        let name = bus::stream(&def.name);
        let mut stream = app
            .js
            .get_stream(&name)
            .await
            .map_err(|e| unavailable(&format!("cannot read stream {name}"), &e))?;
        let info = stream
            .info()
            .await
            .map_err(|e| unavailable(&format!("cannot read stream {name}"), &e))?;
        let state = &info.state;
        buses.push(BusInfo {
            name: def.name.clone(),
            stream: name,
            subjects: bus::all(&def.name),
            messages: state.messages,
            bytes: state.bytes,
            first_seq: state.first_sequence,
            last_seq: state.last_sequence,
            first_time: (state.messages > 0).then(|| timestamp::of(state.first_timestamp)),
            last_time: (state.messages > 0).then(|| timestamp::of(state.last_timestamp)),
            max_age_secs: def.max_age_secs,
            max_bytes: def.max_bytes,
            max_msgs: def.max_msgs,
            max_msgs_per_subject: def.max_msgs_per_subject,
        });
    }
    Ok(InfoResponse { buses })
}

/// `plantd.buses.replay.<bus>.<scope>`.
pub async fn replay(
    app: &Arc<BusApp>,
    ctx: RequestContext,
    req: ReplayRequest,
) -> Result<ReplayResponse, ServiceError> {
    let rest = ctx
        .subject_tail(bus::REPLAY_PREFIX_TOKENS)
        .ok_or_else(|| ServiceError::invalid_field("bus", "the subject names no bus"))?;
    let (bus_name, scope) = rest
        .split_once('.')
        .ok_or_else(|| ServiceError::invalid_field("scope", "the subject names no scope"))?;
    if app.config.bus(bus_name).is_none() {
        let known: Vec<&str> = app.config.buses.iter().map(|d| d.name.as_str()).collect();
        return Err(ServiceError::new(
            ErrorCode::NotFound,
            format!("no bus {bus_name:?}; buses: {}", known.join(", ")),
        ));
    }
    subjects::validate_scope(scope)
        .map_err(|e| ServiceError::invalid_field("scope", e.to_string()))?;
    delivery::check_token(&req.token)?;
    let filter_subjects = if req.topic.is_empty() {
        vec![
            bus::topic(bus_name, scope),
            bus::topic(bus_name, &format!("{scope}.>")),
        ]
    } else {
        plantd_shared::bus::check_filter(&req.topic)
            .map_err(|e| ServiceError::invalid_field("topic", e.to_string()))?;
        vec![bus::topic(bus_name, &format!("{scope}.{}", req.topic))]
    };
    let replay_policy = match req.rate.as_str() {
        "" | "max" => ReplayPolicy::Instant,
        "1x" => ReplayPolicy::Original,
        other => {
            return Err(ServiceError::invalid_field(
                "rate",
                format!("unknown rate {other:?}; use max or 1x"),
            ));
        }
    };
    let deliver_policy = match (req.from_seq, &req.since) {
        (0, None) => DeliverPolicy::All,
        (seq, None) => DeliverPolicy::ByStartSequence {
            start_sequence: seq,
        },
        (0, Some(since)) => DeliverPolicy::ByStartTime {
            start_time: timestamp::to_time(since)
                .ok_or_else(|| ServiceError::invalid_field("since", "not a valid time"))?,
        },
        _ => {
            return Err(ServiceError::invalid_field(
                "since",
                "give from_seq or since, not both",
            ));
        }
    };
    let stream_name = bus::stream(bus_name);
    let stream = app
        .js
        .get_stream(&stream_name)
        .await
        .map_err(|e| unavailable(&format!("cannot read stream {stream_name}"), &e))?;
    let last_seq = stream.cached_info().state.last_sequence;
    let deliver_subject = bus::replay_deliver(bus_name, scope, &req.token);
    let consumer_name = format!("plantd_replay_{}", nuid::next());
    let config = push::Config {
        name: Some(consumer_name.clone()),
        description: Some("plantd bus replay".into()),
        deliver_subject: deliver_subject.clone(),
        filter_subjects,
        deliver_policy,
        ack_policy: AckPolicy::None,
        replay_policy,
        idle_heartbeat: HEARTBEAT,
        inactive_threshold: INACTIVE,
        flow_control: false,
        memory_storage: true,
        num_replicas: 1,
        ..Default::default()
    };
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|e| unavailable("cannot create the replay consumer", &e))?;
    Ok(ReplayResponse {
        consumer: consumer_name,
        deliver_subject,
        pending: consumer.cached_info().num_pending,
        last_seq,
        heartbeat_secs: u32::try_from(HEARTBEAT.as_secs()).unwrap_or(u32::MAX),
    })
}
