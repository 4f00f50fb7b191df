-- plantd-state schema, version 1.
--
-- entries is the source of truth; outbox holds committed changes the JetStream KV mirror has
-- not yet acknowledged (seq is AUTOINCREMENT so a sequence number is never reused, even after
-- the mirror removed every row). Timestamps are unix microseconds. TEXT compares with BINARY
-- collation, i.e. by UTF-8 bytes, which is the order list pagination relies on.

CREATE TABLE meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID, STRICT;

CREATE TABLE scopes (
    name    TEXT PRIMARY KEY NOT NULL,
    created INTEGER NOT NULL
) WITHOUT ROWID, STRICT;

CREATE TABLE entries (
    scope    TEXT NOT NULL REFERENCES scopes (name),
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    version  INTEGER NOT NULL CHECK (version >= 1),
    created  INTEGER NOT NULL,
    modified INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID, STRICT;

CREATE TABLE outbox (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    scope   TEXT NOT NULL,
    key     TEXT NOT NULL,
    op      TEXT NOT NULL CHECK (op IN ('put', 'del')),
    value   TEXT,
    version INTEGER NOT NULL
) STRICT;
