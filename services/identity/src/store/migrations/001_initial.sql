-- plantd-identity schema, version 1.
--
-- Times are Unix seconds, the unit of JWT `iat`/`exp` and of the account's revocation list.
-- `revocations` is the source of truth for that list: every account JWT identity pushes carries
-- exactly its rows. A row stays until every JWT of its key has expired (`expires_at`; NULL for
-- keys whose JWTs never expire, i.e. service creds), so pruning can never un-revoke a live JWT.
-- `sessions` has no foreign key to `users`: a deleted user's sessions are revoked, then dropped.

CREATE TABLE meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID, STRICT;

CREATE TABLE orgs (
    name    TEXT PRIMARY KEY NOT NULL,
    created INTEGER NOT NULL
) WITHOUT ROWID, STRICT;

CREATE TABLE users (
    username      TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    org           TEXT REFERENCES orgs (name),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created       INTEGER NOT NULL
) WITHOUT ROWID, STRICT;

CREATE TABLE role_bindings (
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    role     TEXT NOT NULL,
    scope    TEXT NOT NULL,
    PRIMARY KEY (username, role, scope)
) WITHOUT ROWID, STRICT;

CREATE TABLE sessions (
    jti        TEXT PRIMARY KEY NOT NULL,
    username   TEXT NOT NULL,
    public_key TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
) WITHOUT ROWID, STRICT;

CREATE INDEX sessions_by_user ON sessions (username);
CREATE INDEX sessions_by_key ON sessions (public_key);

CREATE TABLE revocations (
    public_key TEXT PRIMARY KEY NOT NULL,
    revoked_at INTEGER NOT NULL,
    expires_at INTEGER
) WITHOUT ROWID, STRICT;

CREATE TABLE service_creds (
    public_key TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    issued_at  INTEGER NOT NULL
) WITHOUT ROWID, STRICT;
