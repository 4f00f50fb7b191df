//! Password hashing with argon2id, bounded and constant-shaped.
//!
//! Hashes are argon2id PHC strings with the crate's default (OWASP-recommended) parameters:
//! 19 MiB, 2 passes, 1 lane, a random 16-byte salt. Hashing is CPU- and memory-heavy on
//! purpose, so it runs on the blocking pool and at most `max_concurrent_hashes` at once —
//! otherwise a burst of logins could allocate 19 MiB × `max_in_flight`.
//!
//! Login must not reveal whether a username exists, by message or by time: for an unknown user
//! [`Passwords::verify`] checks the password against a dummy hash made at start with the same
//! parameters, so both paths do the same work.

use std::sync::Arc;

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use plantd_shared::{ErrorCode, ServiceError};
use tokio::sync::Semaphore;

/// Hashes and verifies passwords; cheap to clone.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    dummy: Arc<str>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

impl Passwords {
    /// Prepares the dummy hash; `max_concurrent` bounds hashing.
    pub async fn new(max_concurrent: usize) -> Result<Passwords, ServiceError> {
        let dummy = blocking(|| hash_now("plantd: no such user")).await??;
        Ok(Passwords {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy: dummy.into(),
        })
    }

    /// The argon2id PHC string of `password`.
    pub async fn hash(&self, password: String) -> Result<String, ServiceError> {
        let _permit = self.permit().await?;
        blocking(move || hash_now(&password)).await?
    }

    /// Whether `password` matches `hash`; with no hash (unknown user) it does the same work
    /// against the dummy and answers `false`.
    pub async fn verify(
        &self,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, ServiceError> {
        let _permit = self.permit().await?;
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.to_string());
        let matched = blocking(move || {
            Argon2::default()
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok()
        })
        .await?;
        Ok(known && matched)
    }

    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ServiceError> {
        self.permits
            .acquire()
            .await
            .map_err(|_| ServiceError::new(ErrorCode::Unavailable, "the service is stopping"))
    }
}

fn hash_now(password: &str) -> Result<String, ServiceError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| ServiceError::new(ErrorCode::Internal, format!("cannot hash a password: {e}")))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServiceError::new(ErrorCode::Internal, format!("password task failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let passwords = Passwords::new(2).await.unwrap();
        let a = passwords.hash("correct horse".into()).await.unwrap();
        let b = passwords.hash("correct horse".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(
            passwords
                .verify("correct horse".into(), Some(a.clone()))
                .await
                .unwrap()
        );
        assert!(!passwords.verify("wrong".into(), Some(a)).await.unwrap());
        assert!(!passwords.verify("anything".into(), None).await.unwrap());
    }
}
