//! Buses for modules, tools and tests: publish, listen live, replay what a bus captured.
//!
//! A bus is a subject tree `plantd.bus.<bus>.<topic>` whose first topic tokens are a scope
//! (`plantd.bus.data.site1.line2.oven.temp`), so the permissions that scope state also scope
//! buses. Every bus is captured by its own JetStream stream (the bus service creates it from
//! config), so telemetry flooding `data` never queues behind or in front of `control`.
//!
//! * [`publish`] is a core publish: the fastest path, at most once to live listeners, stored
//!   by the capture stream if the server is up. A module that publishes on the same topics
//!   over and over checks each once as a [`Topic`] and publishes on that. [`publish_acked`] waits for the capture
//!   stream's ack and returns the message's sequence: what a command or an event that must not
//!   vanish uses.
//! * [`subscribe`] listens live (core NATS; no history).
//! * [`replay`] reads what the capture stream kept, in order and bounded: it ends at the last
//!   message stored when the replay began. People may not create consumers (docs/identity.md),
//!   so the bus service creates one for the caller and the server delivers it to a subject only
//!   readers of the scope may subscribe to; this side checks every delivery as an ordered
//!   consumer would ([`crate::delivery`]) and, after a lost delivery or a lost consumer, asks
//!   for a new one after the last message it yielded, so nothing is skipped or repeated.

use std::{pin::Pin, sync::Arc, time::Duration};

use async_nats::{Client, HeaderMap, Subject, Subscriber};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use plantd_schemas::bus::v1::{ReplayRequest, ReplayResponse};
use time::OffsetDateTime;

use crate::{
    call,
    codec::Encoding,
    delivery::{self, Checked},
    subjects::{self, bus},
};

/// A bus operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A bus name, topic or filter that cannot be used.
    #[error("{field}: {message}")]
    Invalid {
        /// The offending input (`bus`, `topic`, `filter`, `scope`).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// NATS refused or failed the operation.
    #[error("{0}")]
    Nats(String),
    /// The bus service refused or could not be reached.
    #[error(transparent)]
    Call(#[from] call::CallError),
}

impl BusError {
    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        BusError::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// One message on a bus. It keeps the subject it came on and points into it for the topic, so
/// a live listener allocates nothing per message beyond what the client did.
#[derive(Debug, Clone)]
pub struct BusMessage {
    /// The bus (shared by every message of one subscription or replay).
    pub bus: Arc<str>,
    /// The whole subject, `plantd.bus.<bus>.<topic>` (private: `topic_start` points into it).
    subject: Subject,
    /// Where the topic starts in `subject`.
    topic_start: usize,
    /// Payload as published.
    pub payload: Bytes,
    /// Headers as published.
    pub headers: Option<HeaderMap>,
    /// Stream sequence in the capture stream (replays only).
    pub seq: Option<u64>,
    /// When the capture stream stored it (replays only).
    pub time: Option<OffsetDateTime>,
}

impl BusMessage {
    /// A message that came on `subject`; `None` if the subject has no topic.
    fn new(
        bus: Arc<str>,
        subject: Subject,
        payload: Bytes,
        headers: Option<HeaderMap>,
    ) -> Option<Self> {
        let topic = subjects::tail(&subject, bus::TOPIC_PREFIX_TOKENS)?;
        let topic_start = subject.len() - topic.len();
        Some(BusMessage {
            bus,
            subject,
            topic_start,
            payload,
            headers,
            seq: None,
            time: None,
        })
    }

    /// The topic (scope first), e.g. `site1.oven.temp`.
    pub fn topic(&self) -> &str {
        &self.subject[self.topic_start..]
    }

    /// The whole subject it came on.
    pub fn subject(&self) -> &str {
        &self.subject
    }
}

/// A bus topic to publish on, checked once: publishing on it builds and checks nothing more.
#[derive(Debug, Clone)]
pub struct Topic {
    bus: Arc<str>,
    subject: Subject,
}

impl Topic {
    /// `topic` of `bus_name`, checked: a bus name and a scope-like topic (no wildcards).
    pub fn new(bus_name: &str, topic: &str) -> Result<Topic, BusError> {
        check_bus(bus_name)?;
        check_topic(topic)?;
        Ok(Topic {
            bus: bus_name.into(),
            subject: Subject::from(bus::topic(bus_name, topic)),
        })
    }

    /// The subject it publishes on.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Publishes `payload` on it (core NATS: at most once, not acknowledged).
    pub async fn publish(
        &self,
        client: &Client,
        headers: Option<HeaderMap>,
        payload: Bytes,
    ) -> Result<(), BusError> {
        let subject = self.subject.clone();
        let sent = match headers {
            Some(h) => client.publish_with_headers(subject, h, payload).await,
            None => client.publish(subject, payload).await,
        };
        sent.map_err(|e| BusError::Nats(format!("cannot publish on {}: {e}", self.bus)))
    }
}

/// Checks a topic to publish on: a scope-like subject (tokens, no wildcards).
pub fn check_topic(topic: &str) -> Result<(), BusError> {
    subjects::validate_scope(topic).map_err(|e| BusError::invalid("topic", e.to_string()))
}

/// Checks a topic filter: tokens, `*` for one token, `>` as the last token only.
pub fn check_filter(filter: &str) -> Result<(), BusError> {
    let tokens: Vec<&str> = filter.split('.').collect();
    for (i, token) in tokens.iter().enumerate() {
        let ok = match *token {
            "*" => true,
            ">" => i + 1 == tokens.len(),
            t => subjects::validate_scope(t).is_ok(),
        };
        if !ok {
            return Err(BusError::invalid(
                "filter",
                format!(
                    "{filter:?}: use tokens separated by '.', '*' for any one token and '>' only last"
                ),
            ));
        }
    }
    Ok(())
}

fn check_bus(name: &str) -> Result<(), BusError> {
    bus::validate_name(name).map_err(|m| BusError::invalid("bus", m))
}

/// Publishes `payload` on `bus`/`topic` (core NATS: at most once, not acknowledged).
pub async fn publish(
    client: &Client,
    bus_name: &str,
    topic: &str,
    headers: Option<HeaderMap>,
    payload: Bytes,
) -> Result<(), BusError> {
    Topic::new(bus_name, topic)?
        .publish(client, headers, payload)
        .await
}

/// Publishes and waits for the capture stream's ack; returns the message's stream sequence.
/// A bus without a capture stream (no bus service has created it) fails with "no stream".
pub async fn publish_acked(
    client: &Client,
    bus_name: &str,
    topic: &str,
    headers: Option<HeaderMap>,
    payload: Bytes,
) -> Result<u64, BusError> {
    check_bus(bus_name)?;
    check_topic(topic)?;
    let js = async_nats::jetstream::new(client.clone());
    let subject = bus::topic(bus_name, topic);
    let ack = match headers {
        Some(h) => js.publish_with_headers(subject, h, payload).await,
        None => js.publish(subject, payload).await,
    }
    .map_err(|e| BusError::Nats(format!("cannot publish on {bus_name}: {e}")))?
    .await
    .map_err(|e| BusError::Nats(format!("bus {bus_name} did not store the message: {e}")))?;
    Ok(ack.sequence)
}

/// Listens live to `bus` for topics matching `filter` (`site1.>`, `*.oven.temp`).
pub async fn subscribe(
    client: &Client,
    bus_name: &str,
    filter: &str,
) -> Result<impl Stream<Item = BusMessage> + use<>, BusError> {
    check_bus(bus_name)?;
    check_filter(filter)?;
    let sub = client
        .subscribe(bus::topic(bus_name, filter))
        .await
        .map_err(|e| BusError::Nats(format!("cannot listen to {bus_name}: {e}")))?;
    let name: Arc<str> = bus_name.into();
    Ok(sub.filter_map(move |m| {
        std::future::ready(BusMessage::new(
            name.clone(),
            m.subject,
            m.payload,
            m.headers,
        ))
    }))
}

/// Where a replay starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFrom {
    /// The oldest message the stream kept.
    Oldest,
    /// This stream sequence.
    Seq(u64),
    /// The first message stored at or after this time.
    Time(OffsetDateTime),
}

/// Where a replay stops early (it always stops at the last message stored when it began).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayUntil {
    /// After this stream sequence.
    Seq(u64),
    /// After this time.
    Time(OffsetDateTime),
}

/// How fast a replay delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplayRate {
    /// As fast as possible.
    #[default]
    Max,
    /// At the pace the messages were stored.
    Original,
}

/// What to replay.
#[derive(Debug, Clone)]
pub struct ReplaySpec {
    /// The scope (first topic tokens) to replay.
    pub scope: String,
    /// Topic filter below the scope; empty = everything in the scope.
    pub topic: String,
    /// Start.
    pub from: ReplayFrom,
    /// Optional early end.
    pub until: Option<ReplayUntil>,
    /// Pace.
    pub rate: ReplayRate,
}

/// How long to wait for the bus service.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Heartbeats missed before the replay asks for a new consumer.
const MISSED_HEARTBEATS: u32 = 3;

/// New consumers a replay asks for (after lost deliveries) before it gives up.
const MAX_REOPENS: u32 = 5;

/// Replays what `bus` captured under `spec.scope`, in stream order, ending at the last message
/// stored when the replay began (or earlier, at `spec.until`). Fails at once when the bus
/// service is not there or refuses (unknown bus, no right to read the scope).
pub async fn replay(
    client: &Client,
    bus_name: &str,
    spec: ReplaySpec,
) -> Result<impl Stream<Item = Result<BusMessage, BusError>> + use<>, BusError> {
    check_bus(bus_name)?;
    subjects::validate_scope(&spec.scope).map_err(|e| BusError::invalid("scope", e.to_string()))?;
    if !spec.topic.is_empty() {
        check_filter(&spec.topic)?;
    }
    let mut replay = Replay {
        client: client.clone(),
        bus: bus_name.into(),
        stream: bus::stream(bus_name),
        spec,
        current: None,
        end_seq: None,
        last_yielded: None,
        reopens: 0,
        done: false,
    };
    replay.open().await?;
    Ok(futures::stream::unfold(replay, |mut r| async move {
        let item = r.next().await?;
        Some((item, r))
    }))
}

/// One consumer the replay listens to.
struct Current {
    sub: Pin<Box<Subscriber>>,
    consumer: String,
    next_cseq: u64,
    /// Deliveries still expected from this consumer.
    pending: u64,
    heartbeat: Duration,
}

struct Replay {
    client: Client,
    bus: Arc<str>,
    stream: String,
    spec: ReplaySpec,
    current: Option<Current>,
    /// The stream's last sequence when the replay began: it ends there.
    end_seq: Option<u64>,
    last_yielded: Option<u64>,
    reopens: u32,
    done: bool,
}

impl Replay {
    /// Subscribes a new deliver subject and asks the bus service for a consumer on it, from
    /// the message after the last one yielded (or the spec's start).
    async fn open(&mut self) -> Result<(), BusError> {
        self.current = None;
        let token = nuid::next().to_string();
        let deliver = bus::replay_deliver(&self.bus, &self.spec.scope, &token);
        let sub = self
            .client
            .subscribe(deliver)
            .await
            .map_err(|e| BusError::Nats(format!("cannot subscribe to the replay: {e}")))?;
        let (from_seq, since) = match (self.last_yielded, self.spec.from) {
            (Some(last), _) => (last + 1, None),
            (None, ReplayFrom::Oldest) => (0, None),
            (None, ReplayFrom::Seq(seq)) => (seq.max(1), None),
            (None, ReplayFrom::Time(t)) => (0, Some(crate::timestamp::of(t))),
        };
        let request = ReplayRequest {
            token,
            topic: self.spec.topic.clone(),
            from_seq,
            since,
            rate: match self.spec.rate {
                ReplayRate::Max => "max".into(),
                ReplayRate::Original => "1x".into(),
            },
        };
        let reply: ReplayResponse = call::request(
            &self.client,
            &bus::replay(&self.bus, &self.spec.scope),
            &request,
            Encoding::Protobuf,
            REQUEST_TIMEOUT,
        )
        .await?;
        let end = *self.end_seq.get_or_insert(reply.last_seq);
        if reply.pending == 0 || from_seq > end {
            self.done = true;
        }
        self.current = Some(Current {
            sub: Box::pin(sub),
            consumer: reply.consumer,
            next_cseq: 1,
            pending: reply.pending,
            heartbeat: Duration::from_secs(u64::from(reply.heartbeat_secs.max(1))),
        });
        Ok(())
    }

    async fn reopen(&mut self, why: &str) -> Result<(), BusError> {
        self.reopens += 1;
        if self.reopens > MAX_REOPENS {
            self.done = true;
            return Err(BusError::Nats(format!(
                "replay of {} stopped after {MAX_REOPENS} restarts: {why}",
                self.bus
            )));
        }
        tracing::debug!(bus = %self.bus, why, "replay asks for a new consumer");
        self.open().await
    }

    async fn next(&mut self) -> Option<Result<BusMessage, BusError>> {
        loop {
            if self.done {
                return None;
            }
            let Some(current) = self.current.as_mut() else {
                if let Err(e) = self.reopen("lost the consumer").await {
                    return Some(Err(e));
                }
                continue;
            };
            let patience = current.heartbeat * MISSED_HEARTBEATS;
            let message = match tokio::time::timeout(patience, current.sub.next()).await {
                Err(_) => {
                    self.current = None; // heartbeats missed: the consumer is gone
                    continue;
                }
                Ok(None) => return None,
                Ok(Some(message)) => message,
            };
            match self.accept(message) {
                Delivery::Message(m) => return Some(Ok(*m)),
                Delivery::Skip => {}
                Delivery::Gap => self.current = None,
            }
        }
    }

    fn accept(&mut self, message: async_nats::Message) -> Delivery {
        let Some(current) = self.current.as_mut() else {
            return Delivery::Skip;
        };
        let (stream_seq, timestamp_nanos) = match delivery::check(
            &message,
            &self.stream,
            &current.consumer,
            &mut current.next_cseq,
        ) {
            Checked::Next {
                stream_seq,
                timestamp_nanos,
            } => (stream_seq, timestamp_nanos),
            Checked::Skip => return Delivery::Skip,
            Checked::Gap => return Delivery::Gap,
        };
        current.pending = current.pending.saturating_sub(1);
        let end = self.end_seq.unwrap_or(u64::MAX);
        let time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(timestamp_nanos)).ok();
        let past_until = match self.spec.until {
            Some(ReplayUntil::Seq(s)) => stream_seq > s,
            Some(ReplayUntil::Time(t)) => time.is_some_and(|at| at > t),
            None => false,
        };
        if stream_seq > end || past_until {
            self.done = true;
            return Delivery::Skip;
        }
        if current.pending == 0 || stream_seq == end {
            self.done = true;
        }
        if self.last_yielded.is_some_and(|l| stream_seq <= l) {
            return Delivery::Skip;
        }
        self.last_yielded = Some(stream_seq);
        let Some(mut delivered) = BusMessage::new(
            self.bus.clone(),
            message.subject,
            message.payload,
            message.headers,
        ) else {
            return Delivery::Skip;
        };
        delivered.seq = Some(stream_seq);
        delivered.time = time;
        Delivery::Message(Box::new(delivered))
    }
}

enum Delivery {
    Message(Box<BusMessage>),
    Skip,
    Gap,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_is_checked_once_and_a_message_points_into_its_subject() {
        let topic = Topic::new("data", "site1.oven.temp").expect("a good topic");
        assert_eq!(topic.subject(), "plantd.bus.data.site1.oven.temp");
        assert!(matches!(
            Topic::new("Data!", "site1.x"),
            Err(BusError::Invalid { field: "bus", .. })
        ));
        assert!(matches!(
            Topic::new("data", "site1.*"),
            Err(BusError::Invalid { field: "topic", .. })
        ));
        let message = BusMessage::new(
            "data".into(),
            Subject::from("plantd.bus.data.site1.oven.temp"),
            Bytes::from_static(b"21.5"),
            None,
        )
        .expect("a bus subject");
        assert_eq!(message.topic(), "site1.oven.temp");
        assert_eq!(&*message.bus, "data");
        assert!(
            BusMessage::new(
                "data".into(),
                Subject::from("plantd.bus.data"),
                Bytes::new(),
                None
            )
            .is_none(),
            "no topic, no message"
        );
    }

    #[test]
    fn topics_are_scopes_and_filters_allow_wildcards_in_their_place() {
        assert!(check_topic("site1.oven.temp").is_ok());
        for bad in ["", "a..b", "a.*", "a.>", "a b"] {
            assert!(
                matches!(
                    check_topic(bad),
                    Err(BusError::Invalid { field: "topic", .. })
                ),
                "{bad}"
            );
        }
        for good in ["site1", "site1.>", "*.oven.temp", ">", "a.*.c"] {
            assert!(check_filter(good).is_ok(), "{good}");
        }
        for bad in ["", "a.>.b", "a..b", "a b", "a.b*"] {
            assert!(
                matches!(
                    check_filter(bad),
                    Err(BusError::Invalid {
                        field: "filter",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }
}
