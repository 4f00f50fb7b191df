//! Sessions (one row per issued person JWT), revocations, service creds and meta.
//!
//! Revocation is per user *key*, like the server's (`revocations: {key: t}` refuses JWTs of
//! that key with `iat <= t`, NATS-PITFALLS.md §5.3). Revoking a user therefore revokes every
//! key it holds a live session with; a revoked key can never get a new JWT (the new `iat` could
//! fall in the same second), so a client logs in again with a fresh key.

use std::collections::BTreeMap;

use rusqlite::{Transaction, params};

use super::{StoreError, optional};

/// The revocation key that revokes every user of the account.
pub const ALL_USERS: &str = "*";

/// A person's JWT as recorded at issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The JWT id.
    pub jti: String,
    /// Who it was issued to.
    pub username: String,
    /// The user public key (`U…`) it is bound to.
    pub public_key: String,
    /// `iat`, Unix seconds.
    pub issued_at: i64,
    /// `exp`, Unix seconds.
    pub expires_at: i64,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// Records a new session. Refused (409) if its key was revoked or belongs to another user.
/// The `jti` is a hash of the claims, so a refresh within the same second yields the very same
/// JWT: recording it again is a no-op.
pub fn record(tx: &Transaction<'_>, session: &Session) -> Result<(), StoreError> {
    if revoked_at(tx, &session.public_key)?.is_some() {
        return Err(StoreError::Conflict(format!(
            "public key {} was revoked; log in with a new key",
            session.public_key
        )));
    }
    let owner: Option<String> = optional(
        tx.query_row(
            "SELECT username FROM sessions WHERE public_key = ?1 AND username <> ?2 LIMIT 1",
            params![session.public_key, session.username],
            |r| r.get(0),
        ),
        "checking a key's owner",
    )?;
    if owner.is_some() {
        return Err(StoreError::Conflict(format!(
            "public key {} is bound to another user; log in with a new key",
            session.public_key
        )));
    }
    tx.execute(
        "INSERT INTO sessions (jti, username, public_key, issued_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (jti) DO NOTHING",
        params![
            session.jti,
            session.username,
            session.public_key,
            session.issued_at,
            session.expires_at
        ],
    )
    .map_err(|e| StoreError::sqlite("recording a session", &e))?;
    Ok(())
}

/// The session of JWT `jti`, if identity issued it.
pub fn by_jti(tx: &Transaction<'_>, jti: &str) -> Result<Option<Session>, StoreError> {
    optional(
        tx.query_row(
            "SELECT jti, username, public_key, issued_at, expires_at, revoked \
             FROM sessions WHERE jti = ?1",
            [jti],
            |r| {
                Ok(Session {
                    jti: r.get(0)?,
                    username: r.get(1)?,
                    public_key: r.get(2)?,
                    issued_at: r.get(3)?,
                    expires_at: r.get(4)?,
                    revoked: r.get(5)?,
                })
            },
        ),
        "reading a session",
    )
}

/// When `public_key` (or every user) was last revoked, if ever: a JWT of the key with
/// `iat <=` that time is revoked.
pub fn revoked_at(tx: &Transaction<'_>, public_key: &str) -> Result<Option<i64>, StoreError> {
    let at: Option<i64> = tx
        .query_row(
            "SELECT max(revoked_at) FROM revocations WHERE public_key IN (?1, ?2)",
            params![public_key, ALL_USERS],
            |r| r.get(0),
        )
        .map_err(|e| StoreError::sqlite("reading a revocation", &e))?;
    Ok(at)
}

/// Revokes every JWT of `public_key` issued up to `now`; returns whether anything changed.
/// The row lives until the key's last recorded JWT expires (for keys without sessions, i.e.
/// service creds, forever).
pub fn revoke_key(tx: &Transaction<'_>, public_key: &str, now: i64) -> Result<bool, StoreError> {
    let changed = tx
        .execute(
            "INSERT INTO revocations (public_key, revoked_at, expires_at) \
             VALUES (?1, ?2, (SELECT max(expires_at) FROM sessions WHERE public_key = ?1)) \
             ON CONFLICT (public_key) DO UPDATE SET revoked_at = excluded.revoked_at, \
               expires_at = excluded.expires_at \
             WHERE excluded.revoked_at > revocations.revoked_at",
            params![public_key, now],
        )
        .map_err(|e| StoreError::sqlite("revoking a key", &e))?;
    tx.execute(
        "UPDATE sessions SET revoked = 1 WHERE public_key = ?1 AND issued_at <= ?2",
        params![public_key, now],
    )
    .map_err(|e| StoreError::sqlite("revoking a key's sessions", &e))?;
    Ok(changed > 0)
}

/// Revokes every key `username` holds an unexpired, unrevoked session with; returns how many.
pub fn revoke_user(tx: &Transaction<'_>, username: &str, now: i64) -> Result<usize, StoreError> {
    let keys: Vec<String> = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT DISTINCT public_key FROM sessions \
                 WHERE username = ?1 AND revoked = 0 AND expires_at >= ?2",
            )
            .map_err(|e| StoreError::sqlite("finding a user's sessions", &e))?;
        stmt.query_map(params![username, now], |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| StoreError::sqlite("finding a user's sessions", &e))?
    };
    for key in &keys {
        revoke_key(tx, key, now)?;
    }
    Ok(keys.len())
}

/// Drops the session rows of a deleted user (revoke first: revocations are kept).
pub fn forget_user(tx: &Transaction<'_>, username: &str) -> Result<(), StoreError> {
    tx.execute("DELETE FROM sessions WHERE username = ?1", [username])
        .map_err(|e| StoreError::sqlite("dropping a user's sessions", &e))?;
    Ok(())
}

/// The account's revocation list: every row, key → time.
pub fn revocations(tx: &Transaction<'_>) -> Result<BTreeMap<String, i64>, StoreError> {
    let mut stmt = tx
        .prepare_cached("SELECT public_key, revoked_at FROM revocations")
        .map_err(|e| StoreError::sqlite("reading revocations", &e))?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect::<rusqlite::Result<BTreeMap<_, _>>>())
        .map_err(|e| StoreError::sqlite("reading revocations", &e))
}

/// Deletes sessions and revocations whose JWTs all expired more than `margin` seconds before
/// `now` (the margin covers a server clock behind ours). Returns the revocations removed.
pub fn prune(tx: &Transaction<'_>, now: i64, margin: i64) -> Result<usize, StoreError> {
    let before = now.saturating_sub(margin);
    let removed = tx
        .execute(
            "DELETE FROM revocations WHERE expires_at IS NOT NULL AND expires_at < ?1",
            [before],
        )
        .map_err(|e| StoreError::sqlite("pruning revocations", &e))?;
    tx.execute("DELETE FROM sessions WHERE expires_at < ?1", [before])
        .map_err(|e| StoreError::sqlite("pruning sessions", &e))?;
    Ok(removed)
}

/// Records issued service creds (for audit and later revocation by key).
pub fn record_service_creds(
    tx: &Transaction<'_>,
    public_key: &str,
    name: &str,
    kind: &str,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO service_creds (public_key, name, kind, issued_at) VALUES (?1, ?2, ?3, ?4)",
        params![public_key, name, kind, now],
    )
    .map_err(|e| StoreError::sqlite("recording service creds", &e))?;
    Ok(())
}

/// A meta value.
pub fn meta(tx: &Transaction<'_>, name: &str) -> Result<Option<String>, StoreError> {
    optional(
        tx.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
            r.get(0)
        }),
        "reading meta",
    )
}

/// Sets a meta value.
pub fn set_meta(tx: &Transaction<'_>, name: &str, value: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO meta (name, value) VALUES (?1, ?2) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        params![name, value],
    )
    .map_err(|e| StoreError::sqlite("writing meta", &e))?;
    Ok(())
}
