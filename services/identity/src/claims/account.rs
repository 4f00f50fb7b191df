//! Account claims: limits, signing keys, revocations.
//!
//! The account JWT is where most lock-outs hide (NATS-PITFALLS.md §5.1): `conn: 0` admits no
//! client, `leaf: 0` no leaf link, no storage limit means JetStream off, and dropping a
//! signing key disconnects every user it signed. [`OperatorLimits::plantd`] and
//! [`OperatorLimits::system`] are therefore the only limits plantd writes, every field set.

use std::collections::BTreeMap;

use nkeys::KeyPairType;
use serde::{Deserialize, Serialize};

use super::{
    CLAIM_VERSION, ClaimType, Claims, NO_LIMIT, NatsClaim, NatsLimits, Permissions, UserNats,
};

/// Account-wide limits (Go `AccountLimits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountLimits {
    /// Maximum imports.
    pub imports: i64,
    /// Maximum exports.
    pub exports: i64,
    /// Whether exports may contain wildcards (a boolean in nats-io/jwt, not a count).
    pub wildcards: bool,
    /// Refuse users whose JWT is a bearer token.
    pub disallow_bearer: bool,
    /// Maximum client connections.
    pub conn: i64,
    /// Maximum leaf-node connections.
    pub leaf: i64,
}

/// JetStream limits (Go `JetStreamLimits`); JetStream is on iff a storage limit is non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct JetStreamLimits {
    /// Memory storage bytes across all streams (0 = disabled).
    pub mem_storage: i64,
    /// File storage bytes across all streams (0 = disabled).
    pub disk_storage: i64,
    /// Maximum streams.
    pub streams: i64,
    /// Maximum consumers.
    pub consumer: i64,
    /// Maximum ack pending per consumer (0 = server default).
    pub max_ack_pending: i64,
    /// Maximum bytes of one memory stream (0 = unlimited).
    pub mem_max_stream_bytes: i64,
    /// Maximum bytes of one file stream (0 = unlimited).
    pub disk_max_stream_bytes: i64,
    /// Whether every stream must declare `max_bytes`.
    pub max_bytes_required: bool,
}

/// All limits of an account (Go `OperatorLimits`, untiered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OperatorLimits {
    /// Connection and message limits.
    #[serde(flatten)]
    pub nats: NatsLimits,
    /// Account-wide limits.
    #[serde(flatten)]
    pub account: AccountLimits,
    /// JetStream limits.
    #[serde(flatten)]
    pub jetstream: JetStreamLimits,
}

impl OperatorLimits {
    /// The plantd account: everything unlimited, JetStream on, bearer tokens refused.
    pub fn plantd() -> OperatorLimits {
        OperatorLimits {
            jetstream: JetStreamLimits {
                mem_storage: NO_LIMIT,
                disk_storage: NO_LIMIT,
                streams: NO_LIMIT,
                consumer: NO_LIMIT,
                // For these three 0 means "no cap" (nats-io/jwt `NewAccountClaims` writes 0;
                // its `IsUnlimited` maps -1 to 0), so 0 is the explicit unlimited value.
                max_ack_pending: 0,
                mem_max_stream_bytes: 0,
                disk_max_stream_bytes: 0,
                max_bytes_required: false,
            },
            ..OperatorLimits::system()
        }
    }

    /// The system account: unlimited, bearer tokens refused, JetStream off (the server refuses
    /// JetStream in the system account).
    pub fn system() -> OperatorLimits {
        OperatorLimits {
            nats: NatsLimits::unlimited(),
            account: AccountLimits {
                imports: NO_LIMIT,
                exports: NO_LIMIT,
                wildcards: true,
                disallow_bearer: true,
                conn: NO_LIMIT,
                leaf: NO_LIMIT,
            },
            jetstream: JetStreamLimits::default(),
        }
    }
}

/// `nats` of an account JWT.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountNats {
    /// Limits; see [`OperatorLimits::plantd`].
    pub limits: OperatorLimits,
    /// Unscoped account signing keys (`A…`) allowed to sign user JWTs. Scoped keys would
    /// replace the users' own permissions (PITFALLS §5.1), so plantd never uses them.
    pub signing_keys: Vec<String>,
    /// Revoked users: user public key (or `"*"`) → Unix seconds; a user JWT with
    /// `iat <= ` that time is refused.
    pub revocations: BTreeMap<String, i64>,
    /// Permissions of users whose JWT sets none (plantd always sets them).
    pub default_permissions: Permissions,
    /// Always [`ClaimType::Account`].
    #[serde(rename = "type")]
    pub kind: ClaimType,
    /// Always [`CLAIM_VERSION`].
    pub version: u32,
}

impl AccountNats {
    /// An account with `limits` and `signing_keys`, nothing revoked.
    pub fn new(limits: OperatorLimits, signing_keys: Vec<String>) -> AccountNats {
        AccountNats {
            limits,
            signing_keys,
            revocations: BTreeMap::new(),
            default_permissions: Permissions::default(),
            kind: ClaimType::Account,
            version: CLAIM_VERSION,
        }
    }
}

impl NatsClaim for AccountNats {
    const TYPE: ClaimType = ClaimType::Account;
    const SUBJECT: KeyPairType = KeyPairType::Account;
    const ISSUER: KeyPairType = KeyPairType::Operator;
    fn type_and_version(&self) -> (ClaimType, u32) {
        (self.kind, self.version)
    }
}

impl Claims<AccountNats> {
    /// Whether the server would attribute `user` to this account: signed by the account
    /// itself, or by one of its signing keys with `issuer_account` naming it (Go `DidSign`).
    pub fn did_sign(&self, user: &Claims<UserNats>) -> bool {
        if user.iss == self.sub {
            return true;
        }
        user.nats.issuer_account.as_deref() == Some(self.sub.as_str())
            && self.nats.signing_keys.contains(&user.iss)
    }
}
