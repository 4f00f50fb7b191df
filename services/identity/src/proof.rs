//! `UserProof`: how a request shows it comes from the holder of a JWT identity issued.
//!
//! NATS tells a responder nothing about the sender, and a JWT is public (it travels in every
//! CONNECT), so a request made for a person carries its JWT *and* an ed25519 signature, by the
//! key the JWT is bound to, over `"<request subject>\n<timestamp_ms>"`. Binding the subject
//! stops a proof made for `whoami` from being replayed as a `logout`; the timestamp bounds
//! replay to the configured clock skew. Within that window a proof can be replayed by whoever
//! saw it — only the identity service and admins (`sub >`) can see requests on
//! `plantd.identity.>`, and the proof grants nothing beyond the person's own session.
//!
//! [`ProofVerifier::verify`] accepts a proof only if: the JWT verifies and has not expired, it
//! was signed by the plantd account or its signing key (with `issuer_account`), the timestamp
//! is within the skew, the signature verifies, the key is not revoked at or after the JWT's
//! `iat` (the server's `>=` rule), and the JWT is a session identity recorded. Every failure
//! is a 401 whose message says which check failed, never anything secret.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nkeys::KeyPair;
use plantd_schemas::identity::v1::UserProof;
use plantd_shared::{ErrorCode, ServiceError};

use crate::claims::{Claims, UserNats};
use crate::jwt;
use crate::store::{Store, sessions};

/// A verified proof: the JWT's claims and the session identity recorded for it.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The JWT's claims.
    pub claims: Claims<UserNats>,
    /// The session row.
    pub session: sessions::Session,
}

/// Checks proofs against the plantd account.
#[derive(Debug, Clone)]
pub struct ProofVerifier {
    /// The plantd account public key.
    pub account: String,
    /// Its signing keys.
    pub signing_keys: Vec<String>,
    /// Allowed clock skew, milliseconds.
    pub skew_ms: i64,
}

/// The bytes a proof signs for a request on `subject` at `timestamp_ms`.
pub fn message(subject: &str, timestamp_ms: i64) -> String {
    format!("{subject}\n{timestamp_ms}")
}

/// Makes a proof for a request on `subject` (what clients do; the seed stays with them).
pub fn sign(jwt: &str, key: &KeyPair, subject: &str, timestamp_ms: i64) -> UserProof {
    // Signing with a seeded user key cannot fail; an unseeded key yields an empty signature,
    // which the service refuses.
    let signature = key
        .sign(message(subject, timestamp_ms).as_bytes())
        .map(|sig| URL_SAFE_NO_PAD.encode(sig))
        .unwrap_or_default();
    UserProof {
        jwt: jwt.to_string(),
        timestamp_ms,
        signature,
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

impl ProofVerifier {
    /// Verifies `proof` for a request on `subject` at `now_ms`; see the module docs.
    pub async fn verify(
        &self,
        store: &Store,
        subject: &str,
        proof: Option<&UserProof>,
        now_ms: i64,
    ) -> Result<Verified, ServiceError> {
        let proof = proof.ok_or_else(|| unauthorized("the request carries no proof"))?;
        let claims: Claims<UserNats> = jwt::decode_at(&proof.jwt, now_ms.div_euclid(1000))
            .map_err(|e| unauthorized(&format!("the proof's jwt is not valid: {e}")))?;
        let by_account = claims.iss == self.account;
        let by_signing_key = self.signing_keys.contains(&claims.iss)
            && claims.nats.issuer_account.as_deref() == Some(self.account.as_str());
        if !by_account && !by_signing_key {
            return Err(unauthorized(
                "the proof's jwt was not issued by the plantd account",
            ));
        }
        if (now_ms - proof.timestamp_ms).abs() > self.skew_ms {
            return Err(unauthorized(
                "the proof's timestamp is outside the allowed clock skew",
            ));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(proof.signature.trim_end_matches('='))
            .map_err(|_| unauthorized("the proof's signature is not base64url"))?;
        KeyPair::from_public_key(&claims.sub)
            .and_then(|key| key.verify(message(subject, proof.timestamp_ms).as_bytes(), &signature))
            .map_err(|_| unauthorized("the proof's signature does not verify against its jwt"))?;
        let (key, jti) = (claims.sub.clone(), claims.jti.clone());
        let (revoked_at, session) = store
            .run(move |tx| Ok((sessions::revoked_at(tx, &key)?, sessions::by_jti(tx, &jti)?)))
            .await
            .map_err(crate::handlers::store_error)?;
        if revoked_at.is_some_and(|at| at >= claims.iat) {
            return Err(unauthorized("the proof's jwt was revoked; log in again"));
        }
        let session = session
            .filter(|s| s.public_key == claims.sub)
            .ok_or_else(|| unauthorized("the proof's jwt is not a login session"))?;
        Ok(Verified { claims, session })
    }
}

fn unauthorized(message: &str) -> ServiceError {
    ServiceError::new(ErrorCode::Unauthorized, message).with_field("proof")
}
