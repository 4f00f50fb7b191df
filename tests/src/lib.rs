//! The end-to-end test harness of plantd: real processes, real ports, no mocks.
//!
//! plantd's contract is what travels over NATS, so its end-to-end tests (in `tests/tests/*.rs`)
//! run a real `nats-server` and the real workspace binaries, the way async-nats tests itself
//! and linkerd's integration crate tests the proxy. This library is what those tests share:
//!
//! - [`NatsServer`]: a nats-server rendered from `nats/hub.conf.template` on a free loopback port
//!   with its own JetStream store, which can be stopped, killed and restarted on the same port
//!   and store, and which never outlives its test;
//! - [`bin_path`] and [`ChildProcess`]: run a workspace binary (`plantd-echo`, `plant`, …) with
//!   its output captured to files and a guaranteed kill-and-reap when the test ends;
//! - [`eventually`]: wait for a condition by polling against a deadline, because fixed sleeps
//!   make tests slow where the machine is fast and flaky where it is slow;
//! - [`python::run_script`]: run a third-party client script of `tests/python/`;
//! - [`Relay`]: a TCP link a test can cut and restore (edge sites offline);
//! - [`tls::self_signed_cert`]: a certificate for a TLS listener under test.
//!
//! Every test owns its temp dirs and its servers, so tests run in parallel without sharing a port
//! or a store. Waiting is always "poll every [`POLL_INTERVAL`] until a deadline".
#![forbid(unsafe_code)]

mod binaries;
mod eventually;
mod nats_server;
mod plant_cli;
mod process;
pub mod python;
mod relay;
mod server_events;
pub mod tls;

use std::time::Duration;

pub use binaries::{BIN_DIR_ENV, bin_path};
pub use eventually::{Attempt, eventually};
pub use nats_server::{NATS_SERVER_ENV, NatsServer, NatsServerOptions, nats_server_binary};
pub use nix::sys::signal::Signal;
pub use plant_cli::{plant_command, run_to_end};
pub use process::ChildProcess;
pub use relay::Relay;
pub use server_events::{Events, server_error};

/// How often every wait in this crate re-checks its condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);
