//! NATS JWT encoding and decoding, without a JWT crate.
//!
//! A NATS JWT is not a generic JWT: the algorithm is `ed25519-nkey` (an ed25519 signature by an
//! nkey), the signer is named by its public key in `iss`, and what the key may sign depends on
//! its type (operator → operator and account JWTs, account → user JWTs). Generic JWT crates
//! know none of that, and the Rust NATS JWT crates have the defaults that lock users out or
//! make them bearer tokens (NATS-PITFALLS.md §5.1), so plantd writes the 100 lines itself,
//! following nats-io/jwt v2 `claims.go` and `decoder.go`:
//!
//! - header `{"typ":"JWT","alg":"ed25519-nkey"}`, claims JSON, both base64url without padding;
//! - signature: ed25519 by the issuer's nkey over `base64url(header).base64url(claims)`;
//! - `jti`: base32 (RFC 4648, no padding) of the SHA-512/256 of the claims JSON without `jti`.
//!   Go hashes only the common fields; the server never recomputes it, and hashing the whole
//!   claim makes two JWTs with different permissions always differ in id.
//!
//! [`decode`] trusts nothing: it checks the header, the claim type and version, the key types
//! of `iss` and `sub`, the signature against `iss`, then `exp` and `nbf`. It does not decide
//! whether the issuer is *trusted* — that is the caller's (and the server's) job, e.g.
//! [`Claims::did_sign`](crate::claims::Claims::did_sign) for user JWTs.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nkeys::{KeyPair, KeyPairType};
use sha2::{Digest as _, Sha512_256};
use thiserror::Error;

use crate::claims::{CLAIM_VERSION, ClaimType, Claims, NatsClaim, unix_now};

/// The header of every NATS v2 JWT, exactly as nats-io/jwt writes it.
pub const HEADER: &str = r#"{"typ":"JWT","alg":"ed25519-nkey"}"#;

/// Why a JWT could not be encoded or was refused. Messages never contain a seed.
#[derive(Debug, Error)]
pub enum JwtError {
    /// Not three dot-separated parts.
    #[error("a JWT has 3 dot-separated parts, this one has {0}")]
    Shape(usize),
    /// A part is not base64url.
    #[error("the JWT {0} is not unpadded base64url")]
    Base64(&'static str),
    /// The header is not `ed25519-nkey`.
    #[error("the JWT header is not a NATS v2 header: {0}")]
    Header(String),
    /// The claims are not JSON of the expected shape.
    #[error("the JWT claims are not valid {expected} claims: {source}")]
    Json {
        /// The claim type expected.
        expected: ClaimType,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// `nats.type` or `nats.version` is not what was expected.
    #[error("the JWT is a {found} v{version} JWT, expected a {expected} v2 JWT")]
    WrongType {
        /// Expected type.
        expected: ClaimType,
        /// Type found.
        found: ClaimType,
        /// Version found.
        version: u32,
    },
    /// `iss` or `sub` is not a public key of the right type.
    #[error("the JWT {field} {key:?} is not a {expected:?} public key")]
    WrongKey {
        /// `iss` or `sub`.
        field: &'static str,
        /// The key found.
        key: String,
        /// The key type required.
        expected: KeyPairType,
    },
    /// The signature does not verify against `iss`.
    #[error("the JWT signature does not verify against its issuer {0}")]
    BadSignature(String),
    /// `exp` is in the past.
    #[error("the JWT expired at {exp} (now {now})")]
    Expired {
        /// Expiry, Unix seconds.
        exp: i64,
        /// Now, Unix seconds.
        now: i64,
    },
    /// `nbf` is in the future.
    #[error("the JWT is not valid before {nbf} (now {now})")]
    NotYetValid {
        /// Not before, Unix seconds.
        nbf: i64,
        /// Now, Unix seconds.
        now: i64,
    },
    /// The claims could not be serialized or signed.
    #[error("cannot encode the JWT: {0}")]
    Encode(String),
}

/// Signs `claims` with `issuer`, setting `iss` and `jti`. Refuses a signer or subject of the
/// wrong key type (an account JWT signed by an account key, a user JWT about an account…) and
/// a claim whose `nats.type`/`version` is not the one of its kind.
pub fn encode<N: NatsClaim>(claims: &Claims<N>, issuer: &KeyPair) -> Result<String, JwtError> {
    check_key("sub", &claims.sub, N::SUBJECT)?;
    check_type(&claims.nats)?;
    let iss = issuer.public_key();
    check_key("iss", &iss, N::ISSUER)?;
    let mut claims = claims.clone();
    claims.iss = iss;
    claims.jti = String::new();
    claims.jti = jti(&to_json(&claims)?);
    sign_unchecked(&to_json(&claims)?, issuer)
}

/// Decodes and verifies a JWT of kind `N` at the current time. See the module docs.
pub fn decode<N: NatsClaim>(token: &str) -> Result<Claims<N>, JwtError> {
    decode_at(token, unix_now())
}

/// [`decode`] at `now` (Unix seconds).
pub fn decode_at<N: NatsClaim>(token: &str, now: i64) -> Result<Claims<N>, JwtError> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err(JwtError::Shape(parts.len()));
    };
    check_header(&unbase64(header, "header")?)?;
    let claims: Claims<N> =
        serde_json::from_slice(&unbase64(payload, "claims")?).map_err(|source| JwtError::Json {
            expected: N::TYPE,
            source,
        })?;
    check_key("iss", &claims.iss, N::ISSUER)?;
    check_key("sub", &claims.sub, N::SUBJECT)?;
    let signature = unbase64(signature, "signature")?;
    let signed = &token[..header.len() + 1 + payload.len()];
    KeyPair::from_public_key(&claims.iss)
        .and_then(|key| key.verify(signed.as_bytes(), &signature))
        .map_err(|_| JwtError::BadSignature(claims.iss.clone()))?;
    check_type(&claims.nats)?;
    if let Some(exp) = claims.exp.filter(|exp| *exp > 0 && now > *exp) {
        return Err(JwtError::Expired { exp, now });
    }
    if let Some(nbf) = claims.nbf.filter(|nbf| *nbf > now) {
        return Err(JwtError::NotYetValid { nbf, now });
    }
    Ok(claims)
}

/// Builds `header.claims.signature` from claims JSON with no check at all; [`encode`] checks.
pub(crate) fn sign_unchecked(claims_json: &str, issuer: &KeyPair) -> Result<String, JwtError> {
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(claims_json)
    );
    let signature = issuer
        .sign(signed.as_bytes())
        .map_err(|e| JwtError::Encode(format!("signing failed: {e}")))?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

fn to_json<N: NatsClaim>(claims: &Claims<N>) -> Result<String, JwtError> {
    serde_json::to_string(claims).map_err(|e| JwtError::Encode(e.to_string()))
}

/// base32 (RFC 4648 alphabet, no padding) of the SHA-512/256 of `claims_json`.
fn jti(claims_json: &str) -> String {
    base32_nopad(&Sha512_256::digest(claims_json.as_bytes()))
}

fn base32_nopad(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

fn unbase64(part: &str, what: &'static str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Base64(what))
}

fn check_header(header: &[u8]) -> Result<(), JwtError> {
    let value: serde_json::Value =
        serde_json::from_slice(header).map_err(|e| JwtError::Header(e.to_string()))?;
    let typ = value["typ"].as_str().unwrap_or_default();
    let alg = value["alg"].as_str().unwrap_or_default();
    if !typ.eq_ignore_ascii_case("JWT") || alg != "ed25519-nkey" {
        return Err(JwtError::Header(format!("typ {typ:?}, alg {alg:?}")));
    }
    Ok(())
}

fn check_type<N: NatsClaim>(nats: &N) -> Result<(), JwtError> {
    match nats.type_and_version() {
        (found, CLAIM_VERSION) if found == N::TYPE => Ok(()),
        (found, version) => Err(JwtError::WrongType {
            expected: N::TYPE,
            found,
            version,
        }),
    }
}

fn check_key(field: &'static str, key: &str, expected: KeyPairType) -> Result<(), JwtError> {
    match KeyPair::from_public_key(key) {
        Ok(pair) if pair.key_pair_type() == expected => Ok(()),
        _ => Err(JwtError::WrongKey {
            field,
            key: key.to_string(),
            expected,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::{AccountNats, OperatorLimits, Permission, Permissions, UserNats};

    fn user_claims(user: &KeyPair, account: &str) -> Claims<UserNats> {
        let perms = Permissions {
            publish: Permission::allow(["plantd.>"]),
            ..Permissions::default()
        };
        Claims::new(
            "u",
            &user.public_key(),
            UserNats::new(perms).issued_by(account),
        )
    }

    #[test]
    fn round_trip_sets_iss_and_a_stable_jti() {
        let (account, signer, user) = (
            KeyPair::new_account(),
            KeyPair::new_account(),
            KeyPair::new_user(),
        );
        let claims = user_claims(&user, &account.public_key());
        let token = encode(&claims, &signer).unwrap();
        let decoded: Claims<UserNats> = decode(&token).unwrap();
        assert_eq!(decoded.iss, signer.public_key());
        assert_eq!(decoded.nats, claims.nats);
        assert_eq!(decoded.jti.len(), 52, "base32 of 32 bytes, unpadded");
        assert_eq!(token, encode(&claims, &signer).unwrap(), "deterministic");
        let header = token.split('.').next().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(header).unwrap(), HEADER.as_bytes());
    }

    #[test]
    fn base32_matches_rfc4648_vectors() {
        assert_eq!(base32_nopad(b""), "");
        assert_eq!(base32_nopad(b"f"), "MY");
        assert_eq!(base32_nopad(b"foob"), "MZXW6YQ");
        assert_eq!(base32_nopad(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn tampered_payload_or_signature_is_refused() {
        let (account, user) = (KeyPair::new_account(), KeyPair::new_user());
        let token = encode(&user_claims(&user, &account.public_key()), &account).unwrap();
        let parts: Vec<&str> = token.split('.').collect();

        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims["nats"]["pub"]["allow"] = serde_json::json!([">"]);
        let forged_payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
        assert!(matches!(
            decode::<UserNats>(&forged),
            Err(JwtError::BadSignature(_))
        ));

        let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        sig[0] ^= 1;
        let forged = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
        assert!(matches!(
            decode::<UserNats>(&forged),
            Err(JwtError::BadSignature(_))
        ));
        assert!(matches!(
            decode::<UserNats>(&format!("{}.{}", parts[0], parts[1])),
            Err(JwtError::Shape(2))
        ));
    }

    #[test]
    fn expired_and_not_yet_valid_are_refused() {
        let (account, user) = (KeyPair::new_account(), KeyPair::new_user());
        let mut claims = user_claims(&user, &account.public_key());
        claims.exp = Some(claims.iat + 60);
        let token = encode(&claims, &account).unwrap();
        assert!(decode_at::<UserNats>(&token, claims.iat + 60).is_ok());
        assert!(matches!(
            decode_at::<UserNats>(&token, claims.iat + 61),
            Err(JwtError::Expired { .. })
        ));
        claims.exp = None;
        claims.nbf = Some(claims.iat + 10);
        let token = encode(&claims, &account).unwrap();
        assert!(matches!(
            decode_at::<UserNats>(&token, claims.iat),
            Err(JwtError::NotYetValid { .. })
        ));
    }

    #[test]
    fn wrong_issuer_or_subject_type_is_refused() {
        let (operator, account, user) = (
            KeyPair::new_operator(),
            KeyPair::new_account(),
            KeyPair::new_user(),
        );
        let claims = user_claims(&user, &account.public_key());
        // encode refuses to let an operator sign a user.
        assert!(matches!(
            encode(&claims, &operator),
            Err(JwtError::WrongKey { field: "iss", .. })
        ));
        // A hand-forged user JWT signed by an operator is refused by decode.
        let mut forged = claims.clone();
        forged.iss = operator.public_key();
        let token = sign_unchecked(&serde_json::to_string(&forged).unwrap(), &operator).unwrap();
        assert!(matches!(
            decode::<UserNats>(&token),
            Err(JwtError::WrongKey { field: "iss", .. })
        ));
        // An account JWT signed by an account key.
        let acc = Claims::new(
            "a",
            &account.public_key(),
            AccountNats::new(OperatorLimits::plantd(), vec![]),
        );
        assert!(encode(&acc, &account).is_err());
        let token = encode(&acc, &operator).unwrap();
        assert!(decode::<AccountNats>(&token).is_ok());
        // A user JWT decoded as an account JWT.
        let user_token = encode(&claims, &account).unwrap();
        assert!(decode::<AccountNats>(&user_token).is_err());
    }

    #[test]
    fn wrong_claim_type_or_version_is_refused() {
        let (account, user) = (KeyPair::new_account(), KeyPair::new_user());
        let mut claims = user_claims(&user, &account.public_key());
        claims.nats.version = 1;
        assert!(matches!(
            encode(&claims, &account),
            Err(JwtError::WrongType { .. })
        ));
        claims.nats.version = CLAIM_VERSION;
        claims.iss = account.public_key();
        let mut json: serde_json::Value = serde_json::to_value(&claims).unwrap();
        json["nats"]["type"] = "account".into();
        let token = sign_unchecked(&json.to_string(), &account).unwrap();
        assert!(matches!(
            decode::<UserNats>(&token),
            Err(JwtError::WrongType { .. })
        ));
    }
}
