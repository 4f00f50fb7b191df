//! User claims: permissions, limits, bearer flag and `issuer_account`.
//!
//! A plantd user never gets more than the subjects its role grants plus replies
//! (DESIGN.md, "Security model"), always has explicit `-1` limits (an omitted `subs` or
//! `payload` is 0 and gets it disconnected on its first SUB or PUB), is never a bearer token,
//! and names its account in `issuer_account` because it is signed by a signing key.

use nkeys::KeyPairType;
use serde::{Deserialize, Serialize};

use super::{CLAIM_VERSION, ClaimType, NatsClaim, NatsLimits};

/// Allowed and denied subjects for publish or subscribe; both empty = no restriction.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Permission {
    /// Allowed subjects (wildcards allowed); if non-empty, everything else is denied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Denied subjects, checked after `allow`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

impl Permission {
    /// Only `subjects` allowed.
    pub fn allow<S: Into<String>>(subjects: impl IntoIterator<Item = S>) -> Permission {
        Permission {
            allow: subjects.into_iter().map(Into::into).collect(),
            deny: Vec::new(),
        }
    }
}

/// `allow_responses`: publish once to the reply subject of each message received, for a
/// while, without any publish permission. With it and no `pub.allow`, every other publish is
/// denied (nats-server `validateResponsePermissions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResponsePermission {
    /// Replies allowed per request (0 = server default 1).
    pub max: i64,
    /// How long after the request, in nanoseconds (Go `time.Duration`; 0 = default 2 min).
    pub ttl: i64,
}

/// Publish, subscribe and response permissions (Go `Permissions`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Permissions {
    /// Publish permissions.
    #[serde(rename = "pub")]
    pub publish: Permission,
    /// Subscribe permissions.
    #[serde(rename = "sub")]
    pub subscribe: Permission,
    /// Response permissions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resp: Option<ResponsePermission>,
}

/// `nats` of a user JWT.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UserNats {
    /// What the user may publish and subscribe to.
    #[serde(flatten)]
    pub permissions: Permissions,
    /// Its connection and message limits.
    #[serde(flatten)]
    pub limits: NatsLimits,
    /// If true the server skips the nonce signature: the JWT alone is the credential. Never
    /// true for plantd users, and refused by plantd accounts (`disallow_bearer`).
    pub bearer_token: bool,
    /// The account, when the JWT is signed by one of its signing keys. Without it the server
    /// looks the signing key up as an account and refuses the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer_account: Option<String>,
    /// Connection types allowed (`STANDARD`, `WEBSOCKET`, `LEAFNODE`, …); empty = all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_connection_types: Vec<String>,
    /// Always [`ClaimType::User`].
    #[serde(rename = "type")]
    pub kind: ClaimType,
    /// Always [`CLAIM_VERSION`].
    pub version: u32,
}

impl UserNats {
    /// A user with `permissions`, unlimited subs/data/payload, not a bearer token, signed by the
    /// account identity key (call [`issued_by`](Self::issued_by) for a signing key).
    pub fn new(permissions: Permissions) -> UserNats {
        UserNats {
            permissions,
            limits: NatsLimits::unlimited(),
            bearer_token: false,
            issuer_account: None,
            allowed_connection_types: Vec::new(),
            kind: ClaimType::User,
            version: CLAIM_VERSION,
        }
    }

    /// Marks the user as issued by a signing key of `account`.
    pub fn issued_by(mut self, account: &str) -> UserNats {
        self.issuer_account = Some(account.to_string());
        self
    }
}

impl NatsClaim for UserNats {
    const TYPE: ClaimType = ClaimType::User;
    const SUBJECT: KeyPairType = KeyPairType::User;
    const ISSUER: KeyPairType = KeyPairType::Account;
    fn type_and_version(&self) -> (ClaimType, u32) {
        (self.kind, self.version)
    }
}
