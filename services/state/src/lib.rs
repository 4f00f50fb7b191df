//! The plantd state service: plantd's shared memory of configuration, setpoints and status.
//!
//! SQLite is the source of truth ([`store`]): a write is acknowledged only after its transaction
//! commits, and the same transaction appends the change to an outbox from which the JetStream
//! KV mirror is fed, so a crash or a NATS outage can delay the mirror but never lose or reorder a
//! change. [`kvkey`] maps `(scope, key)` onto KV keys reversibly, and [`validate`] holds the
//! input rules every entry point shares, so a bad scope, key or value is rejected the same way
//! whether it arrives over NATS or from a test.
#![forbid(unsafe_code)]

pub mod kvkey;
pub mod store;
pub mod validate;
