//! The claims of NATS operator, account and user JWTs, in the nats-io/jwt v2 shape.
//!
//! nats-server decodes these with the Go library, so field names, nesting and types follow
//! `nats-io/jwt/v2` exactly: the common fields (`jti`, `iat`, `iss`, `name`, `sub`, `exp`, …)
//! at the top, everything NATS-specific under `nats` with `type` and `version: 2` (a top-level
//! `type` would make Go read the token as a v1 JWT). Go's embedded structs (`NatsLimits`,
//! `AccountLimits`, `JetStreamLimits`, `Permissions`) become `#[serde(flatten)]` structs here;
//! account and user specifics live in the `account` and `user` submodules, re-exported here.
//!
//! Why hand-built claims are dangerous, and how these types guard against it
//! (NATS-PITFALLS.md §5.1): in Go every limit is `omitempty`, so an omitted limit reads as **0**,
//! and 0 means "none allowed" — a user with no `subs`/`payload` is disconnected on its first
//! SUB/PUB, an account with no `conn` admits nobody, and an account without
//! `mem_storage`/`disk_storage` has JetStream off. So:
//!
//! - serialization always writes every limit, `-1` meaning unlimited;
//! - `Default` is Go's zero value (what an omitted field decodes to), so a decoded claim shows
//!   what the server will enforce, never an optimistic guess; the constructors
//!   ([`NatsLimits::unlimited`], [`OperatorLimits::plantd`], [`UserNats::new`] …) are the only
//!   way plantd builds claims, and they set `-1` explicitly;
//! - `bearer_token` is always written and false unless a caller sets it; accounts carry
//!   `disallow_bearer: true` so the server refuses bearer users even if one slips through.

use std::time::{SystemTime, UNIX_EPOCH};

use nkeys::KeyPairType;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The `nats.version` every claim plantd writes carries (nats-io/jwt v2).
pub const CLAIM_VERSION: u32 = 2;

/// "No limit" for every numeric limit.
pub const NO_LIMIT: i64 = -1;

/// `nats.type` of a JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimType {
    /// An operator JWT (the root of trust, self-signed).
    Operator,
    /// An account JWT (signed by the operator or an operator signing key).
    Account,
    /// A user JWT (signed by the account or an account signing key).
    User,
    /// Anything else (activation, authorization, generic): plantd does not issue these.
    #[default]
    #[serde(other)]
    Other,
}

impl std::fmt::Display for ClaimType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClaimType::Operator => "operator",
            ClaimType::Account => "account",
            ClaimType::User => "user",
            ClaimType::Other => "other",
        })
    }
}

/// The NATS-specific part of one kind of claim: what [`crate::jwt`] needs to know to encode
/// and check it.
pub trait NatsClaim: Serialize + DeserializeOwned + Clone {
    /// The `nats.type` this claim must carry.
    const TYPE: ClaimType;
    /// The nkey type of `sub`.
    const SUBJECT: KeyPairType;
    /// The nkey type that may sign it (`iss`).
    const ISSUER: KeyPairType;
    /// `nats.type` and `nats.version` as they are in this claim.
    fn type_and_version(&self) -> (ClaimType, u32);
}

/// A whole JWT claims set: the common fields and the NATS part `nats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims<N> {
    /// Id: base32 SHA-512/256 of the claims without it; set by [`crate::jwt::encode`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
    /// Issued at, Unix seconds. Revocations compare against it (`revoked_at >= iat`).
    #[serde(default)]
    pub iat: i64,
    /// Public key of the signer; set by [`crate::jwt::encode`].
    #[serde(default)]
    pub iss: String,
    /// Human-readable name.
    #[serde(default)]
    pub name: String,
    /// Public key of the operator, account or user this JWT describes.
    #[serde(default)]
    pub sub: String,
    /// Expiry, Unix seconds; `None` never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Not valid before, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Audience (unused by plantd).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// The NATS-specific part.
    pub nats: N,
}

impl<N> Claims<N> {
    /// Claims about `subject` named `name`, issued now, without expiry.
    pub fn new(name: &str, subject: &str, nats: N) -> Claims<N> {
        Claims {
            jti: String::new(),
            iat: unix_now(),
            iss: String::new(),
            name: name.to_string(),
            sub: subject.to_string(),
            exp: None,
            nbf: None,
            aud: None,
            nats,
        }
    }
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the system clock is after 1970");
    i64::try_from(since.as_secs()).expect("the Unix time fits in i64")
}

/// `nats` of an operator JWT.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OperatorNats {
    /// Operator signing keys (`O…`) allowed to sign account JWTs.
    pub signing_keys: Vec<String>,
    /// The system account (`A…`); must equal `system_account` in the server config.
    pub system_account: String,
    /// Refuse account JWTs signed by the operator identity key itself.
    pub strict_signing_key_usage: bool,
    /// Always [`ClaimType::Operator`].
    #[serde(rename = "type")]
    pub kind: ClaimType,
    /// Always [`CLAIM_VERSION`].
    pub version: u32,
}

impl OperatorNats {
    /// An operator trusting `signing_keys`, with `system_account`.
    pub fn new(system_account: &str, signing_keys: Vec<String>) -> OperatorNats {
        OperatorNats {
            signing_keys,
            system_account: system_account.to_string(),
            strict_signing_key_usage: true,
            kind: ClaimType::Operator,
            version: CLAIM_VERSION,
        }
    }
}

impl NatsClaim for OperatorNats {
    const TYPE: ClaimType = ClaimType::Operator;
    const SUBJECT: KeyPairType = KeyPairType::Operator;
    const ISSUER: KeyPairType = KeyPairType::Operator;
    fn type_and_version(&self) -> (ClaimType, u32) {
        (self.kind, self.version)
    }
}

/// Limits on connections and messages (Go `NatsLimits`), in accounts and users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsLimits {
    /// Maximum subscriptions.
    pub subs: i64,
    /// Maximum bytes.
    pub data: i64,
    /// Maximum message payload.
    pub payload: i64,
}

impl NatsLimits {
    /// Every limit `-1`.
    pub fn unlimited() -> NatsLimits {
        NatsLimits {
            subs: NO_LIMIT,
            data: NO_LIMIT,
            payload: NO_LIMIT,
        }
    }
}

mod account;
mod user;

pub use account::{AccountLimits, AccountNats, JetStreamLimits, OperatorLimits};
pub use user::{Permission, Permissions, ResponsePermission, UserNats};

#[cfg(test)]
mod tests;
