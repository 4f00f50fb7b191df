//! plantd's request/reply runtime: a NATS micro service (ADR-32) owned end to end.
//!
//! async-nats 0.51 ships a service API, but it breaks plantd's contract in ways that matter to
//! operators (NATS-PITFALLS.md §1.2): error replies have empty bodies, an error sent with a
//! body is not counted in STATS, STATS has no metadata, and `Service::stop` aborts instead of
//! draining. So the runtime speaks the protocol itself, which is small:
//!
//! * [`discovery`] answers `$SRV.PING|INFO|STATS` (all, by name, by name + id) with the JSON of
//!   the maintainers' micro v1 schemas;
//! * each endpoint is a queue subscription in a queue group named after the service, so N
//!   instances share load and `no responders` fails fast when none runs ([`service`]);
//! * a request is decoded by `Content-Type` (JSON default, protobuf), handled, and answered in
//!   the same encoding; a failure carries both ADR-32 error headers and a JSON body, and is
//!   counted ([`endpoint`], [`stats`]);
//! * handlers run concurrently, bounded by one semaphore per instance (`max_in_flight`); when
//!   it is exhausted the endpoint loop waits, so excess requests queue in the subscription
//!   (backpressure) instead of spawning without bound;
//! * every handler has a deadline (`handler_timeout_ms`): past it the caller gets a 504 and the
//!   in-flight slot is freed, so a hung handler cannot starve the instance;
//! * stopping drains without losing a request: endpoints end their subscription by a message
//!   count client and server agree on, reached at once with filler messages, so the server
//!   stops routing here only after everything it routed here was received; buffered and
//!   in-flight requests finish within the grace period, then discovery stops (see
//!   `service::drain`).

pub mod discovery;
pub mod endpoint;
pub mod gather;
pub mod protocol;
pub mod service;
pub mod stats;

pub use endpoint::{Handler, RequestContext, typed};
pub use service::{RunningService, ServiceBuilder, StartError};
