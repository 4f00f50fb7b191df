//! Organizations, users and role bindings.
//!
//! Inputs arrive validated (names, role names, normalized scopes: [`crate::roles`]); this
//! module only enforces what needs the database — uniqueness, existence, the org reference —
//! and revokes in the same transaction when a change invalidates a user's JWTs.

use rusqlite::{OptionalExtension as _, Transaction, params};

use super::{StoreError, optional, sessions};

/// An organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRecord {
    /// Its name.
    pub name: String,
    /// Creation time, Unix seconds.
    pub created: i64,
}

/// A user as admins see it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Login name.
    pub username: String,
    /// Organization, if any.
    pub org: Option<String>,
    /// Disabled users cannot log in or refresh.
    pub disabled: bool,
    /// `(role, normalized scope)` pairs, sorted.
    pub roles: Vec<(String, String)>,
    /// Creation time, Unix seconds.
    pub created: i64,
}

/// What login needs: the hash and whether the user may log in.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// argon2id PHC string.
    pub password_hash: String,
    /// Whether the user is disabled.
    pub disabled: bool,
}

/// A change to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    /// New argon2id hash (revokes the user's JWTs).
    pub password_hash: Option<String>,
    /// Disable (revokes) or enable.
    pub disabled: Option<bool>,
    /// New org; `Some(None)` removes it.
    pub org: Option<Option<String>>,
}

/// Creates org `name`.
pub fn create_org(tx: &Transaction<'_>, name: &str, now: i64) -> Result<OrgRecord, StoreError> {
    let inserted = tx
        .execute(
            "INSERT INTO orgs (name, created) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            params![name, now],
        )
        .map_err(|e| StoreError::sqlite("creating an org", &e))?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("org {name:?} already exists")));
    }
    Ok(OrgRecord {
        name: name.to_string(),
        created: now,
    })
}

/// Org `name`, or 404.
pub fn get_org(tx: &Transaction<'_>, name: &str) -> Result<OrgRecord, StoreError> {
    let created = tx
        .query_row("SELECT created FROM orgs WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| StoreError::sqlite("reading an org", &e))?;
    created
        .map(|created| OrgRecord {
            name: name.to_string(),
            created,
        })
        .ok_or_else(|| StoreError::NotFound(format!("org {name:?} not found")))
}

/// Every org, by name.
pub fn list_orgs(tx: &Transaction<'_>) -> Result<Vec<OrgRecord>, StoreError> {
    let mut stmt = tx
        .prepare_cached("SELECT name, created FROM orgs ORDER BY name")
        .map_err(|e| StoreError::sqlite("listing orgs", &e))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(OrgRecord {
                name: r.get(0)?,
                created: r.get(1)?,
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| StoreError::sqlite("listing orgs", &e))?;
    Ok(rows)
}

/// Creates a user with its role bindings.
pub fn create_user(
    tx: &Transaction<'_>,
    username: &str,
    password_hash: &str,
    org: Option<&str>,
    roles: &[(String, String)],
    now: i64,
) -> Result<UserRecord, StoreError> {
    if let Some(org) = org {
        get_org(tx, org)?;
    }
    let inserted = tx
        .execute(
            "INSERT INTO users (username, password_hash, org, created) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (username) DO NOTHING",
            params![username, password_hash, org, now],
        )
        .map_err(|e| StoreError::sqlite("creating a user", &e))?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "user {username:?} already exists"
        )));
    }
    for (role, scope) in roles {
        insert_binding(tx, username, role, scope)?;
    }
    get_user(tx, username)
}

/// User `username`, or 404.
pub fn get_user(tx: &Transaction<'_>, username: &str) -> Result<UserRecord, StoreError> {
    let row = optional(
        tx.query_row(
            "SELECT org, disabled, created FROM users WHERE username = ?1",
            [username],
            |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get(2)?,
                ))
            },
        ),
        "reading a user",
    )?;
    let (org, disabled, created) = row.ok_or_else(|| not_found(username))?;
    Ok(UserRecord {
        username: username.to_string(),
        org,
        disabled,
        roles: bindings(tx, username)?,
        created,
    })
}

/// Every user, by name.
pub fn list_users(tx: &Transaction<'_>) -> Result<Vec<UserRecord>, StoreError> {
    let names: Vec<String> = {
        let mut stmt = tx
            .prepare_cached("SELECT username FROM users ORDER BY username")
            .map_err(|e| StoreError::sqlite("listing users", &e))?;
        stmt.query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| StoreError::sqlite("listing users", &e))?
    };
    names.iter().map(|name| get_user(tx, name)).collect()
}

/// The password hash and disabled flag of `username`, if it exists.
pub fn credentials(
    tx: &Transaction<'_>,
    username: &str,
) -> Result<Option<Credentials>, StoreError> {
    optional(
        tx.query_row(
            "SELECT password_hash, disabled FROM users WHERE username = ?1",
            [username],
            |r| {
                Ok(Credentials {
                    password_hash: r.get(0)?,
                    disabled: r.get(1)?,
                })
            },
        ),
        "reading credentials",
    )
}

/// Applies `update`; returns the user and how many of its keys were revoked (a new password or
/// disabling revokes every live session).
pub fn update_user(
    tx: &Transaction<'_>,
    username: &str,
    update: &UserUpdate,
    now: i64,
) -> Result<(UserRecord, usize), StoreError> {
    get_user(tx, username)?;
    let set = |sql: &str, value: &dyn rusqlite::ToSql| {
        tx.execute(sql, params![value, username])
            .map_err(|e| StoreError::sqlite("updating a user", &e))
    };
    if let Some(hash) = &update.password_hash {
        set(
            "UPDATE users SET password_hash = ?1 WHERE username = ?2",
            hash,
        )?;
    }
    if let Some(disabled) = update.disabled {
        set(
            "UPDATE users SET disabled = ?1 WHERE username = ?2",
            &disabled,
        )?;
    }
    if let Some(org) = &update.org {
        if let Some(org) = org {
            get_org(tx, org)?;
        }
        set("UPDATE users SET org = ?1 WHERE username = ?2", org)?;
    }
    let revoke = update.password_hash.is_some() || update.disabled == Some(true);
    let revoked = if revoke {
        sessions::revoke_user(tx, username, now)?
    } else {
        0
    };
    Ok((get_user(tx, username)?, revoked))
}

/// Deletes `username` (revoking its sessions first); returns `(existed, keys revoked)`.
pub fn delete_user(
    tx: &Transaction<'_>,
    username: &str,
    now: i64,
) -> Result<(bool, usize), StoreError> {
    let revoked = sessions::revoke_user(tx, username, now)?;
    sessions::forget_user(tx, username)?;
    let deleted = tx
        .execute("DELETE FROM users WHERE username = ?1", [username])
        .map_err(|e| StoreError::sqlite("deleting a user", &e))?;
    Ok((deleted > 0, revoked))
}

/// Adds a binding; an existing identical binding is left alone (nothing revoked). A new one
/// revokes the user's JWTs, which carry the old permissions.
pub fn assign_role(
    tx: &Transaction<'_>,
    username: &str,
    role: &str,
    scope: &str,
    now: i64,
) -> Result<(UserRecord, usize), StoreError> {
    get_user(tx, username)?;
    let revoked = if insert_binding(tx, username, role, scope)? {
        sessions::revoke_user(tx, username, now)?
    } else {
        0
    };
    Ok((get_user(tx, username)?, revoked))
}

/// Removes a binding (404 if the user does not have it) and revokes the user's JWTs.
pub fn unassign_role(
    tx: &Transaction<'_>,
    username: &str,
    role: &str,
    scope: &str,
    now: i64,
) -> Result<(UserRecord, usize), StoreError> {
    get_user(tx, username)?;
    let deleted = tx
        .execute(
            "DELETE FROM role_bindings WHERE username = ?1 AND role = ?2 AND scope = ?3",
            params![username, role, scope],
        )
        .map_err(|e| StoreError::sqlite("removing a role binding", &e))?;
    if deleted == 0 {
        return Err(StoreError::NotFound(format!(
            "user {username:?} has no role {role:?} on scope {scope:?}"
        )));
    }
    let revoked = sessions::revoke_user(tx, username, now)?;
    Ok((get_user(tx, username)?, revoked))
}

fn insert_binding(
    tx: &Transaction<'_>,
    username: &str,
    role: &str,
    scope: &str,
) -> Result<bool, StoreError> {
    let inserted = tx
        .execute(
            "INSERT INTO role_bindings (username, role, scope) VALUES (?1, ?2, ?3) \
             ON CONFLICT DO NOTHING",
            params![username, role, scope],
        )
        .map_err(|e| StoreError::sqlite("adding a role binding", &e))?;
    Ok(inserted > 0)
}

fn bindings(tx: &Transaction<'_>, username: &str) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT role, scope FROM role_bindings WHERE username = ?1 ORDER BY role, scope",
        )
        .map_err(|e| StoreError::sqlite("reading role bindings", &e))?;
    stmt.query_map([username], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| StoreError::sqlite("reading role bindings", &e))
}

fn not_found(username: &str) -> StoreError {
    StoreError::NotFound(format!("user {username:?} not found"))
}
