//! The library every plantd binary stands on.
//!
//! One place for what all services share, so no service re-implements it: layered
//! configuration ([`config`]), the NATS connection with its events and creds ([`connection`],
//! [`creds`]), the request/reply runtime that speaks NATS micro (ADR-32) with plantd's error and
//! encoding contract ([`micro`], [`codec`], [`error`]), health ([`health`]), logging
//! ([`telemetry`]), buses and pipelines ([`bus`], [`pipe`]), graceful shutdown ([`shutdown`]), subject names ([`subjects`]), one owner per data dir
//! ([`data_dir_lock`]) and the module SDK ([`module`]).
#![forbid(unsafe_code)]

pub mod bus;
pub mod call;
pub mod codec;
pub mod config;
pub mod connection;
pub mod creds;
pub mod data_dir_lock;
pub mod delivery;
pub mod error;
pub mod health;
pub mod log_ship;
pub mod metrics;
pub mod micro;
pub mod module;
pub mod nats_server;
pub mod pipe;
pub mod process;
pub mod process_control;
pub mod prometheus;
pub mod shutdown;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod sse;
pub mod subjects;
pub mod telemetry;
pub mod timestamp;
pub mod trace;

pub use error::{ErrorCode, ServiceError};
