//! `watch` on `plantd.state.watch.<scope>`: a KV watch created **for** the caller.
//!
//! nats-server does not check a push consumer's deliver subject (or deliver group) against the
//! permissions of whoever creates it, so a person allowed to create consumers on the bucket
//! could make the server publish values it wrote onto any subject: another scope's `set`, a
//! bus, someone's inbox (issue #9). People therefore get no JetStream API rights at all; this
//! endpoint — which the server lets a person call only for scopes it may read — creates the
//! consumer with the state service's own rights, and the deliver subject is fixed here, inside
//! [`subjects::state::WATCH_DELIVER_PREFIX`], which no person may publish to and which a person
//! may subscribe to only for the scopes it may read. The caller picks one token of that subject
//! (so it can subscribe before the first delivery) and nothing else about where the server
//! delivers.
//!
//! The consumer is ephemeral, acks nothing, sends idle heartbeats (the watcher's way to notice
//! a lost delivery), has no flow control (people may not publish to `$JS.FC.>`), and is
//! deleted by the server once nobody has listened to it for [`INACTIVE`].

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, ReplayPolicy, push};
use plantd_schemas::state::v1::{WatchRequest, WatchResponse};
use plantd_shared::{
    ErrorCode, ServiceError, delivery,
    micro::RequestContext,
    subjects::{self, state::KEY_OP_PREFIX_TOKENS},
};

use super::{StateApp, convert};
use crate::kvkey;

/// Idle heartbeat of a watch consumer.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// A watch consumer nobody listens to is deleted after this.
pub const INACTIVE: Duration = Duration::from_secs(30);

/// `plantd.state.watch.<scope>`.
pub async fn watch(
    app: &StateApp,
    ctx: RequestContext,
    req: WatchRequest,
) -> Result<WatchResponse, ServiceError> {
    let scope = StateApp::scope_of(&ctx, KEY_OP_PREFIX_TOKENS)?;
    crate::validate::scope(&scope).map_err(|e| convert::store(e.into()))?;
    delivery::check_token(&req.token)?;
    let kv = &app.kv;
    let stream_name = format!("KV_{}", kv.bucket);
    let unavailable = |what: &str, e: &dyn std::fmt::Display| {
        ServiceError::new(ErrorCode::Unavailable, format!("{what}: {e}"))
    };
    // `get_stream` reads the stream's info; its state is current enough for "now".
    let stream = kv
        .js
        .get_stream(&stream_name)
        .await
        .map_err(|e| unavailable("the KV bucket is not there yet", &e))?;
    let last_revision = stream.cached_info().state.last_sequence;
    let deliver_policy = match req.from.as_str() {
        "" | "now" => DeliverPolicy::ByStartSequence {
            start_sequence: last_revision + 1,
        },
        "current" => DeliverPolicy::LastPerSubject,
        "revision" if req.from_revision >= 1 => DeliverPolicy::ByStartSequence {
            start_sequence: req.from_revision,
        },
        "revision" => {
            return Err(ServiceError::invalid_field(
                "from_revision",
                "from: revision needs from_revision of at least 1",
            ));
        }
        other => {
            return Err(ServiceError::invalid_field(
                "from",
                format!("unknown start {other:?}; use now, current or revision"),
            ));
        }
    };
    let filter = if req.subtree {
        kvkey::subtree_filter(&scope)
    } else {
        kvkey::scope_filter(&scope)
    };
    let deliver_subject = subjects::state::watch_deliver(&scope, &req.token);
    let consumer = format!("plantd_watch_{}", nuid::next());
    let config = push::Config {
        name: Some(consumer.clone()),
        description: Some("plantd state watch".into()),
        deliver_subject: deliver_subject.clone(),
        filter_subject: format!("$KV.{}.{filter}", kv.bucket),
        deliver_policy,
        ack_policy: AckPolicy::None,
        replay_policy: ReplayPolicy::Instant,
        idle_heartbeat: HEARTBEAT,
        inactive_threshold: INACTIVE,
        flow_control: false,
        memory_storage: true,
        num_replicas: 1,
        ..Default::default()
    };
    stream
        .create_consumer(config)
        .await
        .map_err(|e| unavailable("cannot create the watch consumer", &e))?;
    Ok(WatchResponse {
        consumer,
        deliver_subject,
        last_revision,
        heartbeat_secs: u32::try_from(HEARTBEAT.as_secs()).unwrap_or(u32::MAX),
    })
}
