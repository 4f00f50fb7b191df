//! plantd identity: who may connect to the hub and what they may do there.
//!
//! The hub nats-server runs in operator mode (DESIGN.md, "Security model"): it trusts one
//! operator key, knows accounts through signed account JWTs kept by its `full` resolver, and
//! admits a client only with a user JWT signed for one of those accounts plus a signature of
//! its connect nonce by the user's nkey. This crate is the groundwork of the identity service
//! that will issue and revoke those JWTs:
//!
//! - [`jwt`]: NATS JWT encoding and verification (ed25519 nkeys, no JWT crate);
//! - [`claims`]: operator, account and user claims in the nats-io/jwt v2 shape, with every limit
//!   explicit, because an omitted limit is 0 and locks users out (NATS-PITFALLS.md §5.1);
//! - [`permissions`]: the least-privilege permission sets of the bootstrap users;
//! - [`issue`]: issuing a user (nkey, JWT signed by an account signing key, creds text);
//! - [`bootstrap`]: `init`, which creates the operator, the SYS and plantd accounts, their
//!   signing keys, the bootstrap creds and the nats-server config snippet;
//! - [`server_config`] and [`files`]: the snippet renderer and the secret-file rules.
#![forbid(unsafe_code)]

pub mod bootstrap;
pub mod claims;
pub mod files;
pub mod issue;
pub mod jwt;
pub mod permissions;
pub mod server_config;

pub use bootstrap::{Bootstrap, BootstrapError, init};
