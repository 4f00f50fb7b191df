//! Issuing a person's JWT and packing it into a `Grant`, sealed for login replies.
//!
//! A person's JWT is bound to a key the *client* generated (the seed never leaves it), signed
//! by the plantd account signing key with `issuer_account`, never a bearer token, valid for
//! `user_jwt_ttl_secs`, and carries exactly the permissions its role bindings map to
//! ([`crate::roles`]).
//!
//! Login replies travel to `_INBOX_login.>`, which every login client may subscribe to (they
//! share the login-only credential). The JWT alone is useless without the client's seed, but
//! the grant also names the user and its roles, so it is sealed (nkeys xkey: X25519 +
//! XSalsa20-Poly1305 box) from the service's curve key to the curve key the client sent; only
//! that client can open it. The service's curve key is made fresh at every start — it only
//! needs to live as long as one request — and is returned in every reply.

use std::time::Duration;

use nkeys::{KeyPair, KeyPairType, XKey};
use pbjson_types::Timestamp;
use plantd_schemas::identity::v1::{Grant, RoleBinding};
use plantd_shared::{ErrorCode, ServiceError};
use prost::Message as _;

use crate::claims::{Claims, UserNats};
use crate::issue::IssuedUser;
use crate::jwt;
use crate::roles::{self, Binding};

/// Issues person JWTs; holds the account signing key and the service's curve key.
pub struct Issuer {
    /// The plantd account public key (`issuer_account`).
    pub account: String,
    signing_key: KeyPair,
    xkey: XKey,
    ttl: Duration,
    bucket: String,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("account", &self.account)
            .field("signing_key", &self.signing_key.public_key())
            .finish_non_exhaustive()
    }
}

/// A signed person JWT and its claims.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The JWT.
    pub jwt: String,
    /// Its claims (`jti`, `iat`, `exp` as signed).
    pub claims: Claims<UserNats>,
}

impl Issuer {
    /// An issuer for `account` signing with `signing_key`; `bucket` is the state KV bucket.
    pub fn new(account: String, signing_key: KeyPair, ttl: Duration, bucket: String) -> Issuer {
        Issuer {
            account,
            signing_key,
            xkey: XKey::new(),
            ttl,
            bucket,
        }
    }

    /// The service's curve public key (`X…`).
    pub fn server_xkey(&self) -> String {
        self.xkey.public_key()
    }

    /// The account signing key's public key.
    pub fn signing_public_key(&self) -> String {
        self.signing_key.public_key()
    }

    /// Signs a JWT for `username` bound to `public_key` with the permissions of `bindings`.
    pub fn issue(
        &self,
        username: &str,
        public_key: &str,
        bindings: &[Binding],
        now: i64,
    ) -> Result<Issued, ServiceError> {
        let permissions = roles::permissions(username, bindings, &self.bucket);
        let nats = UserNats::new(permissions).issued_by(&self.account);
        let mut claims = Claims::new(username, public_key, nats);
        claims.iat = now;
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        claims.exp = Some(now.saturating_add(ttl));
        let token = jwt::encode(&claims, &self.signing_key).map_err(|e| {
            ServiceError::new(ErrorCode::Internal, format!("cannot sign the jwt: {e}"))
        })?;
        let claims: Claims<UserNats> = jwt::decode_at(&token, now).map_err(|e| {
            ServiceError::new(
                ErrorCode::Internal,
                format!("signed jwt does not verify: {e}"),
            )
        })?;
        Ok(Issued { jwt: token, claims })
    }

    /// Issues long-lived creds (a fresh key, no expiry) with `nats` for a service or edge link.
    pub fn issue_service(&self, name: &str, nats: UserNats) -> Result<IssuedUser, ServiceError> {
        crate::issue::issue(name, nats, &self.signing_key)
            .map_err(|e| ServiceError::new(ErrorCode::Internal, format!("cannot issue creds: {e}")))
    }

    /// The grant for an issued JWT.
    pub fn grant(&self, issued: &Issued, bindings: &[Binding]) -> Grant {
        Grant {
            jwt: issued.jwt.clone(),
            expires: issued
                .claims
                .exp
                .map(|seconds| Timestamp { seconds, nanos: 0 }),
            username: issued.claims.name.clone(),
            roles: wire_bindings(bindings),
            inbox_prefix: roles::inbox_prefix(&issued.claims.name),
        }
    }

    /// Seals `grant` (protobuf) to the client's curve key `client_xkey`.
    pub fn seal(&self, grant: &Grant, client_xkey: &str) -> Result<Vec<u8>, ServiceError> {
        let recipient = XKey::from_public_key(client_xkey).map_err(|_| bad_xkey())?;
        self.xkey
            .seal(&grant.encode_to_vec(), &recipient)
            .map_err(|e| ServiceError::new(ErrorCode::Internal, format!("cannot seal: {e}")))
    }
}

/// Opens a sealed grant with the client's curve key (what a login client does).
pub fn open(sealed: &[u8], client: &XKey, server_xkey: &str) -> Result<Grant, String> {
    let sender = XKey::from_public_key(server_xkey).map_err(|e| e.to_string())?;
    let plain = client.open(sealed, &sender).map_err(|e| e.to_string())?;
    Grant::decode(plain.as_slice()).map_err(|e| e.to_string())
}

/// Bindings as wire messages.
pub fn wire_bindings(bindings: &[Binding]) -> Vec<RoleBinding> {
    bindings
        .iter()
        .map(|b| RoleBinding {
            role: b.role.name().to_string(),
            scope: b.scope.clone(),
        })
        .collect()
}

/// Checks a request's user public key: a `U…` nkey.
pub fn check_user_key(public_key: &str) -> Result<(), ServiceError> {
    match KeyPair::from_public_key(public_key) {
        Ok(key) if key.key_pair_type() == KeyPairType::User => Ok(()),
        _ => Err(ServiceError::invalid_field(
            "public_key",
            "public_key must be a user nkey (U…)",
        )),
    }
}

/// Checks a request's curve key: an `X…` xkey.
pub fn check_xkey(xkey: &str) -> Result<(), ServiceError> {
    XKey::from_public_key(xkey)
        .map(|_| ())
        .map_err(|_| bad_xkey())
}

fn bad_xkey() -> ServiceError {
    ServiceError::invalid_field("xkey", "xkey must be a curve public key (X…)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_jwt_is_bound_expiring_and_sealed_only_for_the_client() {
        let (account, signing) = (KeyPair::new_account(), KeyPair::new_account());
        let issuer = Issuer::new(
            account.public_key(),
            signing,
            Duration::from_secs(3600),
            "plantd-state".into(),
        );
        let user = KeyPair::new_user();
        let bindings = [Binding::parse("viewer", "site1").unwrap()];
        let issued = issuer
            .issue("alice", &user.public_key(), &bindings, 1_000)
            .unwrap();
        assert_eq!(issued.claims.sub, user.public_key());
        assert_eq!(issued.claims.exp, Some(4_600));
        assert_eq!(
            issued.claims.nats.issuer_account,
            Some(account.public_key())
        );
        assert!(!issued.claims.nats.bearer_token);

        let grant = issuer.grant(&issued, &bindings);
        assert_eq!(grant.inbox_prefix, "_INBOX_alice");
        let client = XKey::new();
        let sealed = issuer.seal(&grant, &client.public_key()).unwrap();
        assert_eq!(
            open(&sealed, &client, &issuer.server_xkey()).unwrap(),
            grant
        );
        let eavesdropper = XKey::new();
        assert!(open(&sealed, &eavesdropper, &issuer.server_xkey()).is_err());
        assert!(check_user_key(&account.public_key()).is_err());
        assert!(check_xkey(&user.public_key()).is_err());
    }
}
