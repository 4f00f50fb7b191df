//! Issuing a user: a fresh user nkey, its JWT signed by an account signing key, and the creds
//! file text that carries both.
//!
//! Every plantd user is signed by an account *signing key*, never by the account identity key,
//! so the account seed can stay offline and a leaked signing key can be rotated out of the
//! account JWT (DESIGN.md, "Security model"). That makes `issuer_account` mandatory
//! (NATS-PITFALLS.md §5.1), which is why this is the one function that builds user claims for
//! real use.

use nkeys::KeyPair;

use crate::claims::{Claims, Permissions, UserNats};
use crate::jwt::{self, JwtError};

/// A newly issued user. `Debug` hides the creds text (it holds the seed).
#[derive(Clone)]
pub struct IssuedUser {
    /// The user's public nkey (`U…`): what revocations name.
    pub public_key: String,
    /// The signed user JWT.
    pub jwt: String,
    creds: String,
}

impl std::fmt::Debug for IssuedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedUser")
            .field("public_key", &self.public_key)
            .field("creds", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl IssuedUser {
    /// The creds file text (JWT and seed). A secret: write it 0600, never log it.
    pub fn creds(&self) -> &str {
        &self.creds
    }
}

/// Issues user `name` of `account` (public key) with `permissions`, signed by `signing_key`
/// (one of the account's signing keys), without expiry.
pub fn issue_user(
    name: &str,
    permissions: Permissions,
    account: &str,
    signing_key: &KeyPair,
) -> Result<IssuedUser, JwtError> {
    issue(
        name,
        UserNats::new(permissions).issued_by(account),
        signing_key,
    )
}

/// Issues a user with the given `nats` claims (for callers that set expiry, connection types…
/// themselves through [`Claims`]).
pub fn issue(name: &str, nats: UserNats, signing_key: &KeyPair) -> Result<IssuedUser, JwtError> {
    let user = KeyPair::new_user();
    let claims = Claims::new(name, &user.public_key(), nats);
    issue_claims(&claims, &user, signing_key)
}

/// Signs `claims` about `user` and renders the creds file for it.
pub fn issue_claims(
    claims: &Claims<UserNats>,
    user: &KeyPair,
    signing_key: &KeyPair,
) -> Result<IssuedUser, JwtError> {
    let jwt = jwt::encode(claims, signing_key)?;
    let seed = user
        .seed()
        .map_err(|_| JwtError::Encode("the user key has no seed".into()))?;
    Ok(IssuedUser {
        public_key: user.public_key(),
        creds: plantd_shared::creds::Creds::render(&jwt, &seed),
        jwt,
    })
}

#[cfg(test)]
mod tests {
    use plantd_shared::creds::Creds;

    use super::*;

    #[test]
    fn issued_creds_parse_and_carry_issuer_account() {
        let (account, signer) = (KeyPair::new_account(), KeyPair::new_account());
        let user = issue_user(
            "svc",
            Permissions::default(),
            &account.public_key(),
            &signer,
        )
        .unwrap();
        let creds = Creds::parse(user.creds()).unwrap();
        assert_eq!(creds.jwt, user.jwt);
        let claims: Claims<UserNats> = jwt::decode(&user.jwt).unwrap();
        assert_eq!(claims.sub, user.public_key);
        assert_eq!(claims.iss, signer.public_key());
        assert_eq!(claims.nats.issuer_account, Some(account.public_key()));
        let signature = creds.sign(b"nonce").unwrap();
        KeyPair::from_public_key(&user.public_key)
            .unwrap()
            .verify(b"nonce", &signature)
            .unwrap();
        let seed = user.creds().lines().find(|l| l.starts_with("SU")).unwrap();
        assert!(!format!("{user:?}").contains(seed), "no seed in Debug");
    }
}
