//! Registering a service's endpoints, dispatching requests concurrently, and draining.
//!
//! See the module docs of [`crate::micro`] for the contract. The flow of one request:
//! endpoint loop (one per endpoint) → wait for an in-flight permit → run the handler until it
//! first waits, then (if it did not finish) spawn it on the instance's task tracker → reply
//! (result or error, in the request's encoding) → count it.

use std::{
    collections::BTreeMap,
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, Instant},
};

use async_nats::{Client, HeaderMap, Subscriber};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use tokio::{sync::Semaphore, task::JoinHandle};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument;

use super::{
    discovery,
    endpoint::{Handler, RequestContext, typed},
    protocol::{EndpointInfo, InfoResponse, StatsResponse, valid_name, valid_semver},
    stats::Counters,
};
use crate::{
    ErrorCode, ServiceError,
    codec::{CONTENT_TYPE, Encoding, JSON, WireMessage},
    error::{ERROR_CODE_HEADER, ERROR_HEADER},
};

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The service or an endpoint name does not match `^[a-zA-Z0-9_-]+$`.
    #[error("invalid name {0:?}: use letters, digits, '-' and '_' only")]
    InvalidName(String),
    /// The version is not SemVer.
    #[error("invalid version {0:?}: must be SemVer such as 1.2.3")]
    InvalidVersion(String),
    /// Two endpoints share a name (their STATS would be indistinguishable).
    #[error("duplicate endpoint name {0:?}")]
    DuplicateEndpoint(String),
    /// Subscribing failed.
    #[error("cannot subscribe to {subject}: {source}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// The client error.
        source: async_nats::SubscribeError,
    },
}

/// Runtime limits of one instance.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeOptions {
    /// Most handlers running at once.
    pub max_in_flight: usize,
    /// How long `stop` waits for in-flight requests.
    pub drain_timeout: Duration,
    /// How long one handler may run before the caller gets a 504 and its permit is freed.
    pub handler_timeout: Duration,
}

impl RuntimeOptions {
    /// The options from a service's common settings.
    pub fn from_config(common: &crate::config::CommonConfig) -> RuntimeOptions {
        RuntimeOptions {
            max_in_flight: common.max_in_flight.max(1),
            drain_timeout: common.drain_timeout(),
            handler_timeout: common.handler_timeout(),
        }
    }
}

struct PendingEndpoint {
    name: String,
    subject: String,
    metadata: BTreeMap<String, String>,
    handler: Handler,
}

/// Describes a service before it starts.
pub struct ServiceBuilder {
    name: String,
    version: String,
    description: String,
    metadata: BTreeMap<String, String>,
    endpoints: Vec<PendingEndpoint>,
    id: Option<String>,
    breakers: Option<crate::module::breaker::Breakers>,
}

/// What the runtime, discovery and stats share about a running instance.
#[derive(Debug)]
pub struct ServiceShared {
    /// Service name (also the queue group).
    pub name: String,
    /// Instance id.
    pub id: String,
    /// SemVer version.
    pub version: String,
    /// Description.
    pub description: String,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Start time, RFC 3339 UTC.
    pub started: String,
    /// Endpoints, in registration order.
    pub endpoints: Vec<Arc<EndpointShared>>,
    /// The circuit breakers of the module's clients, shown in STATS.
    pub breakers: Option<crate::module::breaker::Breakers>,
    /// The in-flight bound, shared by every endpoint of the instance.
    pub permits: Arc<Semaphore>,
    /// Its size (`max_in_flight`).
    pub max_in_flight: usize,
}

impl ServiceShared {
    /// Handlers running right now.
    pub fn in_flight(&self) -> usize {
        self.max_in_flight
            .saturating_sub(self.permits.available_permits())
    }
}

/// One registered endpoint.
pub struct EndpointShared {
    /// Explicit endpoint name.
    pub name: String,
    /// Subject (may end in `>` for scoped operations).
    pub subject: String,
    /// Queue group (the service name).
    pub queue_group: String,
    /// Endpoint metadata.
    pub metadata: BTreeMap<String, String>,
    /// Its counters.
    pub counters: Counters,
    handler: Handler,
}

impl std::fmt::Debug for EndpointShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointShared")
            .field("name", &self.name)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl EndpointShared {
    pub(crate) fn info(&self) -> EndpointInfo {
        EndpointInfo {
            name: self.name.clone(),
            subject: self.subject.clone(),
            queue_group: self.queue_group.clone(),
            metadata: self.metadata.clone(),
        }
    }
}

impl ServiceBuilder {
    /// A service called `name` (also its queue group) at `version` (SemVer).
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> ServiceBuilder {
        ServiceBuilder {
            name: name.into(),
            version: version.into(),
            description: String::new(),
            metadata: BTreeMap::new(),
            endpoints: Vec::new(),
            id: None,
            breakers: None,
        }
    }

    /// Uses `id` as the instance id instead of a fresh one (a module registers under its id
    /// before it serves).
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Reports these circuit breakers in STATS (`breakers`).
    pub fn breakers(mut self, breakers: crate::module::breaker::Breakers) -> Self {
        self.breakers = Some(breakers);
        self
    }

    /// Sets the description shown by `$SRV.INFO`.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Adds a metadata entry (shown by PING, INFO and STATS).
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Adds an endpoint with an explicit name and a typed handler. For handlers of the form
    /// `async fn(&App, RequestContext, Req)` over a shared `Arc<App>`, use
    /// [`app_endpoint!`](crate::app_endpoint).
    pub fn endpoint<Req, Resp, F, Fut>(self, name: &str, subject: String, handler: F) -> Self
    where
        Req: WireMessage,
        Resp: WireMessage,
        F: Fn(RequestContext, Req) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Resp, ServiceError>> + Send + 'static,
    {
        self.raw_endpoint(name, subject, typed(handler))
    }

    /// Adds an endpoint with an erased handler.
    pub fn raw_endpoint(mut self, name: &str, subject: String, handler: Handler) -> Self {
        self.endpoints.push(PendingEndpoint {
            name: name.to_string(),
            subject,
            metadata: BTreeMap::new(),
            handler,
        });
        self
    }

    /// Subscribes every endpoint and the discovery subjects, then returns once the server
    /// has them (so "started" means "answers requests").
    pub async fn start(
        self,
        client: &Client,
        options: RuntimeOptions,
    ) -> Result<RunningService, StartError> {
        if !valid_name(&self.name) {
            return Err(StartError::InvalidName(self.name));
        }
        if !valid_semver(&self.version) {
            return Err(StartError::InvalidVersion(self.version));
        }
        let mut seen = std::collections::HashSet::new();
        for e in &self.endpoints {
            if !valid_name(&e.name) {
                return Err(StartError::InvalidName(e.name.clone()));
            }
            if !seen.insert(e.name.clone()) {
                return Err(StartError::DuplicateEndpoint(e.name.clone()));
            }
        }
        let started = crate::timestamp::now_rfc3339();
        let mut subscriptions = Vec::new();
        let mut endpoints = Vec::new();
        for e in self.endpoints {
            let sub = client
                .queue_subscribe(e.subject.clone(), self.name.clone())
                .await
                .map_err(|source| StartError::Subscribe {
                    subject: e.subject.clone(),
                    source,
                })?;
            subscriptions.push(sub);
            endpoints.push(Arc::new(EndpointShared {
                name: e.name,
                subject: e.subject,
                queue_group: self.name.clone(),
                metadata: e.metadata,
                counters: Counters::default(),
                handler: e.handler,
            }));
        }
        let shared = Arc::new(ServiceShared {
            name: self.name,
            id: self.id.unwrap_or_else(|| nuid::next().to_string()),
            version: self.version,
            description: self.description,
            metadata: self.metadata,
            started,
            endpoints,
            breakers: self.breakers,
            permits: Arc::new(Semaphore::new(options.max_in_flight.max(1))),
            max_in_flight: options.max_in_flight.max(1),
        });

        let accept_stop = CancellationToken::new();
        let discovery_stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let permits = Arc::clone(&shared.permits);
        let loops = subscriptions
            .into_iter()
            .zip(shared.endpoints.iter())
            .map(|(sub, ep)| {
                tokio::spawn(accept_loop(AcceptLoop {
                    sub,
                    endpoint: Arc::clone(ep),
                    client: client.clone(),
                    permits: Arc::clone(&permits),
                    tracker: tracker.clone(),
                    stop: accept_stop.clone(),
                    drain_timeout: options.drain_timeout,
                    handler_timeout: options.handler_timeout,
                }))
            })
            .collect();
        let discovery =
            discovery::spawn(client.clone(), Arc::clone(&shared), discovery_stop.clone())
                .await
                .map_err(|source| StartError::Subscribe {
                    subject: "$SRV.>".into(),
                    source,
                })?;
        // Once the server answered a flush, it has seen every SUB above. While disconnected
        // (services start before NATS by design) this returns an error we can ignore: the
        // subscriptions are sent on connect.
        let _ = client.flush().await;
        tracing::info!(service = %shared.name, id = %shared.id, "service started");
        Ok(RunningService {
            shared,
            client: client.clone(),
            accept_stop,
            discovery_stop,
            loops,
            discovery,
            tracker,
            drain_timeout: options.drain_timeout,
        })
    }
}

/// A running service instance.
pub struct RunningService {
    shared: Arc<ServiceShared>,
    client: Client,
    accept_stop: CancellationToken,
    discovery_stop: CancellationToken,
    loops: Vec<JoinHandle<()>>,
    discovery: JoinHandle<()>,
    tracker: TaskTracker,
    drain_timeout: Duration,
}

impl RunningService {
    /// The instance id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// What `$SRV.INFO` answers for this instance.
    pub fn info(&self) -> InfoResponse {
        discovery::info(&self.shared)
    }

    /// What the runtime shares about this instance (counters for `/metrics`).
    pub fn shared(&self) -> Arc<ServiceShared> {
        Arc::clone(&self.shared)
    }

    /// What `$SRV.STATS` answers for this instance.
    pub fn stats(&self) -> StatsResponse {
        discovery::stats(&self.shared)
    }

    /// Stops gracefully: end the endpoints' subscriptions without losing a request routed here
    /// (new requests go to other instances), finish buffered and in-flight requests within the
    /// drain timeout, log each endpoint's totals, then stop discovery.
    /// Returns `false` when the grace period ran out with requests still running.
    pub async fn stop(self) -> bool {
        let name = self.shared.name.clone();
        tracing::info!(service = %name, "draining");
        self.accept_stop.cancel();
        let deadline = tokio::time::Instant::now() + self.drain_timeout;
        for handle in self.loops {
            let _ = tokio::time::timeout_at(deadline, handle).await;
        }
        self.tracker.close();
        let drained = tokio::time::timeout_at(deadline, self.tracker.wait())
            .await
            .is_ok();
        for endpoint in &self.shared.endpoints {
            let stats = endpoint.counters.snapshot();
            tracing::info!(
                service = %name,
                endpoint = %endpoint.name,
                requests = stats.requests,
                errors = stats.errors,
                "endpoint totals at stop"
            );
        }
        if drained {
            tracing::info!(service = %name, "drained");
        } else {
            tracing::warn!(service = %name, "drain timeout ran out with requests in flight");
        }
        self.discovery_stop.cancel();
        let _ = self.discovery.await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.client.flush()).await;
        drained
    }
}

struct AcceptLoop {
    sub: Subscriber,
    endpoint: Arc<EndpointShared>,
    client: Client,
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
    stop: CancellationToken,
    drain_timeout: Duration,
    handler_timeout: Duration,
}

/// Header on the messages a draining instance sends to use up its own subscription (see
/// [`drain`]). A message with this header and no reply subject is dropped silently by every
/// instance: it is not a request.
pub const DRAIN_HEADER: &str = "Plantd-Drain";

/// How many more messages the server may route to a draining endpoint than it had delivered
/// when the drain began: covers what is on the wire while the `UNSUB` travels. What was
/// already in the client's buffer is counted exactly, so only the wire needs this slack.
const DRAIN_SLACK: u64 = 4096;

/// Most filler messages a draining endpoint sends per round.
const FILLER_BATCH: u64 = 512;

/// A draining endpoint sends its next round of fillers after this long.
const FILLER_ROUND: Duration = Duration::from_millis(5);

/// Takes requests off one endpoint's subscription until it is stopped, then drains it.
async fn accept_loop(mut l: AcceptLoop) {
    let mut received: u64 = 0;
    loop {
        tokio::select! {
            biased;
            _ = l.stop.cancelled() => break,
            msg = l.sub.next() => match msg {
                Some(msg) => {
                    received += 1;
                    l.dispatch(msg).await;
                }
                // The client closed the subscription (the connection is gone for good).
                None => return,
            },
        }
    }
    drain(l, received).await;
}

/// Ends an endpoint's subscription without losing a request that the server routed to it.
///
/// async-nats 0.51 cannot do this by itself: `Subscriber::drain` and `unsubscribe` forget the
/// subscription locally before the server has processed the `UNSUB`, so a request routed to
/// this instance just before is dropped unanswered (NATS-PITFALLS.md; found by
/// `tests/tests/echo_drain.rs`). What does hold is a message count both sides agree on:
///
/// 1. Everything already in the client's buffer is taken, so `received` is exactly what the
///    client was given; then `UNSUB <sid> <received + DRAIN_SLACK>` tells client *and* server
///    to end the subscription after that many messages in all. The server never delivers past
///    the count (a queue message it cannot deliver here goes to another member), and the client
///    keeps the subscription until it has seen the count, so nothing falls between them.
/// 2. To reach the count now rather than after thousands of requests, the endpoint publishes
///    fillers (no reply subject, [`DRAIN_HEADER`]) on a subject its own subscription matches.
///    The server spreads them over the queue group; the ones routed here use up the count, the
///    others are dropped by the instances that get them. Requests that arrive meanwhile are
///    handled here, like any other.
/// 3. The subscription ends (the stream yields `None`) exactly when the server has delivered
///    the count: from then on the server routes every request to other instances, or answers
///    "no responders" when none is left.
///
/// Publishing the fillers needs publish rights on the endpoint's subjects, which identity
/// grants every service on its own subject tree. Without them (or past the drain deadline) the
/// drain stops waiting and says how many messages the server might still route here.
async fn drain(mut l: AcceptLoop, mut received: u64) {
    let mut pending = std::collections::VecDeque::new();
    while let Some(Some(msg)) = l.sub.next().now_or_never() {
        received += 1;
        pending.push_back(msg);
    }
    let limit = received + DRAIN_SLACK;
    if let Err(err) = l.sub.unsubscribe_after(limit).await {
        tracing::warn!(endpoint = %l.endpoint.name, error = %err, "cannot unsubscribe endpoint; stopping it");
        for msg in pending {
            l.dispatch(msg).await;
        }
        return;
    }
    let filler = filler_subject(&l.endpoint.subject);
    let deadline = tokio::time::Instant::now() + l.drain_timeout;
    let mut round = tokio::time::interval(FILLER_ROUND);
    round.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut fillers_sent: u64 = 0;
    loop {
        if let Some(msg) = pending.pop_front() {
            l.dispatch(msg).await;
            continue;
        }
        tokio::select! {
            biased;
            msg = l.sub.next() => match msg {
                Some(msg) => {
                    received += 1;
                    l.dispatch(msg).await;
                }
                None => break,
            },
            _ = round.tick() => {
                let batch = limit.saturating_sub(received).min(FILLER_BATCH);
                for _ in 0..batch {
                    if l.client.publish_with_headers(filler.clone(), drain_headers(), Bytes::new()).await.is_err() {
                        break;
                    }
                }
                fillers_sent += batch;
            }
            _ = tokio::time::sleep_until(deadline) => {
                tracing::warn!(
                    endpoint = %l.endpoint.name,
                    may_still_arrive = limit.saturating_sub(received),
                    "drain deadline passed before the server ended the subscription"
                );
                return;
            }
        }
    }
    tracing::debug!(endpoint = %l.endpoint.name, received, fillers_sent, "endpoint drained");
}

impl AcceptLoop {
    /// Drops fillers; otherwise waits for an in-flight permit and handles the request (its
    /// first step here, the rest on a spawned task if it has to wait).
    async fn dispatch(&self, msg: async_nats::Message) {
        if is_filler(&msg) {
            return;
        }
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .expect("the in-flight semaphore is never closed");
        let endpoint = Arc::clone(&self.endpoint);
        let client = self.client.clone();
        let deadline = self.handler_timeout;
        let mut request = Box::pin(async move {
            handle(msg, &endpoint, &client, deadline).await;
            drop(permit);
        });
        // Most requests finish without ever waiting (echo, a cached read, a refusal): run the
        // first step here and they are answered without a task spawn and a hop to another
        // worker thread (~25 us per request on the bench machine). One that waits (a write, a
        // slow handler) is spawned as it stands and runs concurrently.
        if futures::poll!(request.as_mut()).is_pending() {
            self.tracker.spawn(request);
        }
    }
}

/// A concrete subject the endpoint's own subscription matches: wildcards become `_drain`.
fn filler_subject(endpoint_subject: &str) -> String {
    endpoint_subject
        .split('.')
        .map(|token| match token {
            "*" | ">" => "_drain",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn drain_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(DRAIN_HEADER, "filler");
    headers
}

/// A draining instance's filler: no reply subject and the drain header.
fn is_filler(msg: &async_nats::Message) -> bool {
    msg.reply.is_none()
        && msg
            .headers
            .as_ref()
            .is_some_and(|h| h.get(DRAIN_HEADER).is_some())
}

/// Handles one request and answers it.
async fn handle(
    msg: async_nats::Message,
    endpoint: &EndpointShared,
    client: &Client,
    deadline: Duration,
) {
    let started = Instant::now();
    let Some(reply) = msg.reply else {
        // Never applied: a message without a reply subject is not a request anybody can be
        // answered for, and it is what another service's reply looks like when a caller
        // points its reply subject at this endpoint (reply-subject reflection, docs/services.md).
        let refused = ServiceError::new(
            ErrorCode::BadRequest,
            "message without a reply subject: not handled",
        );
        tracing::warn!(endpoint = %endpoint.name, subject = %msg.subject, "{}", refused.message);
        endpoint.counters.record(started.elapsed(), Some(&refused));
        return;
    };
    let ctx = RequestContext {
        subject: msg.subject.to_string(),
        encoding: Encoding::from_headers(msg.headers.as_ref()),
        headers: msg.headers,
    };
    let encoding = ctx.encoding;
    // A span exported when tracing is on (a child of the caller's `traceparent`); a debug
    // span otherwise, which the usual `info` filter turns off.
    let span = if crate::trace::enabled() {
        let span =
            tracing::info_span!("request", endpoint = %endpoint.name, subject = %ctx.subject);
        crate::trace::set_parent_from(&span, ctx.headers.as_ref());
        span
    } else {
        tracing::debug_span!("request", endpoint = %endpoint.name, subject = %ctx.subject)
    };
    let handled = AssertUnwindSafe((endpoint.handler)(ctx, msg.payload))
        .catch_unwind()
        .instrument(span);
    // A handler past its deadline is dropped (cancelled at its next await), which frees its
    // permit; a write it already handed on may still complete, hence "outcome unknown".
    let result = match tokio::time::timeout(deadline, handled).await {
        Ok(Ok(result)) => result,
        Ok(Err(_panic)) => {
            tracing::error!(endpoint = %endpoint.name, "handler panicked");
            Err(ServiceError::new(ErrorCode::Internal, "internal error"))
        }
        Err(_elapsed) => {
            tracing::warn!(endpoint = %endpoint.name, deadline_ms = deadline.as_millis(), "handler deadline passed");
            Err(ServiceError::new(
                ErrorCode::Timeout,
                format!(
                    "not finished within the {} ms handler deadline; the outcome is unknown",
                    deadline.as_millis()
                ),
            ))
        }
    };
    let result = match result {
        // Only replies past a few KiB pay for reading the server info (a clone under a lock).
        Ok(body) if body.len() > ALWAYS_FITS => match too_large(client, body.len()) {
            Some(max) => Err(ServiceError::new(
                ErrorCode::TooLarge,
                format!(
                    "reply is {} bytes, over the server's max_payload of {max}",
                    body.len()
                ),
            )),
            None => Ok(body),
        },
        other => other,
    };
    let (headers, body, mut error) = match result {
        Ok(body) => (encoding.headers(), body, None),
        Err(err) => (
            error_headers(&err),
            Bytes::from(err.to_json_body()),
            Some(err),
        ),
    };
    if let Err(err) = client
        .publish_with_headers(reply.clone(), headers, body)
        .await
    {
        // The caller would otherwise wait for nothing: answer with the failure (small, so it
        // fits) and count it, instead of counting a success that never arrived.
        let failed = ServiceError::new(ErrorCode::Internal, format!("cannot send reply: {err}"));
        tracing::warn!(endpoint = %endpoint.name, error = %err, "cannot send reply; answering 500");
        let _ = client
            .publish_with_headers(
                reply,
                error_headers(&failed),
                Bytes::from(failed.to_json_body()),
            )
            .await;
        error = Some(failed);
    }
    endpoint.counters.record(started.elapsed(), error.as_ref());
}

/// Room kept for the reply's headers under the server's max_payload (which counts headers and
/// body; a reply has `Content-Type`, an error reply also the two ADR-32 headers).
const HEADER_ROOM: usize = 512;

/// Below this a reply always fits: no usable nats-server has a max_payload this small.
const ALWAYS_FITS: usize = 4096;

/// The server's max_payload if a reply of `len` bytes (plus header room) exceeds it.
fn too_large(client: &Client, len: usize) -> Option<usize> {
    let max = client.server_info().max_payload;
    (max > 0 && len.saturating_add(HEADER_ROOM) > max).then_some(max)
}

/// The ADR-32 error headers (header values cannot hold line breaks).
fn error_headers(err: &ServiceError) -> HeaderMap {
    let text: String = err
        .message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut headers = HeaderMap::new();
    headers.insert(ERROR_HEADER, text.as_str());
    headers.insert(ERROR_CODE_HEADER, err.code.as_u16().to_string().as_str());
    headers.insert(CONTENT_TYPE, JSON);
    headers
}

/// Adds an endpoint whose handler is `async fn(&App, RequestContext, Req) -> Result<Resp,
/// ServiceError>` over an `Arc<App>`: `app_endpoint!(builder, &app, "get", subject, keys::get)`.
///
/// Each request gets its own clone of the `Arc`, so the handler's future owns what it borrows.
/// A macro rather than a method: a generic bound cannot name "an async fn borrowing `&App` for
/// as long as its future lives" without boxing every request's future.
#[macro_export]
macro_rules! app_endpoint {
    ($builder:expr, $app:expr, $name:literal, $subject:expr, $handler:path) => {{
        let app = ::std::sync::Arc::clone($app);
        $builder.endpoint($name, $subject, move |ctx, req| {
            let app = ::std::sync::Arc::clone(&app);
            async move { $handler(&app, ctx, req).await }
        })
    }};
}
