//! The store's one error type, whose variants map 1:1 to the wire codes.
//!
//! Handlers turn a [`StoreError`] into a micro error reply with [`StoreError::code`] and its
//! `Display` text, so the text is written for the caller: lowercase, naming the scope, key or
//! field that was wrong. SQLite failures become [`StoreError::Internal`] with a short reason (the
//! SQLite result code) — never the SQL or the schema; the full error is logged where it happens.

use crate::validate::ValidationError;

/// What was not found: the scope, or a key in an existing scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The scope does not exist.
    Scope {
        /// The scope that was asked for.
        scope: String,
    },
    /// The scope exists but the key does not.
    Key {
        /// The scope that was asked for.
        scope: String,
        /// The key that was asked for.
        key: String,
    },
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Scope { scope } => write!(f, "scope {scope:?} not found"),
            Self::Key { scope, key } => write!(f, "key {key:?} not found in scope {scope:?}"),
        }
    }
}

/// Every way a store operation can fail; [`StoreError::code`] is its wire code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// 404: the scope or the key does not exist; the message says which.
    #[error("{0}")]
    NotFound(Missing),
    /// 409: `create_only` on an existing key, or an expected version that did not match.
    #[error("{0}")]
    Conflict(String),
    /// 400: bad input; `field` names the part of the request that was wrong.
    #[error("{message}")]
    Invalid {
        /// The request field that was wrong (`scope`, `key`, `limit`, `page_token`, …).
        field: &'static str,
        /// What was wrong, naming the field.
        message: String,
    },
    /// 413: a key, value or prefix larger than its limit.
    #[error("{message}")]
    TooLarge {
        /// The request field that was too large.
        field: &'static str,
        /// The size and the limit, naming the field.
        message: String,
    },
    /// 503: the writer has stopped (shutdown or crash); another instance may serve the request.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    /// 500: SQLite or the disk failed; the message is a short reason without SQL.
    #[error("internal store error: {0}")]
    Internal(String),
}

impl StoreError {
    /// The wire code (`Nats-Service-Error-Code`) of this error.
    pub fn code(&self) -> u16 {
        match self {
            Self::Invalid { .. } => 400,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::TooLarge { .. } => 413,
            Self::Internal(_) => 500,
            Self::Unavailable(_) => 503,
        }
    }

    /// The request field an `Invalid` or `TooLarge` error is about.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid { field, .. } | Self::TooLarge { field, .. } => Some(field),
            _ => None,
        }
    }

    /// A 404 for a missing scope.
    pub(crate) fn scope_not_found(scope: &str) -> Self {
        Self::NotFound(Missing::Scope {
            scope: scope.to_owned(),
        })
    }

    /// A 404 for a missing key in an existing scope.
    pub(crate) fn key_not_found(scope: &str, key: &str) -> Self {
        Self::NotFound(Missing::Key {
            scope: scope.to_owned(),
            key: key.to_owned(),
        })
    }

    /// A 400 naming `field`.
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }

    /// A 500 for a SQLite failure while doing `what`; logs the full error, returns a short one.
    pub(crate) fn sqlite(what: &str, err: &rusqlite::Error) -> Self {
        tracing::error!(error = %err, operation = what, "sqlite error");
        Self::Internal(format!("{what} failed: {}", short_reason(err)))
    }
}

impl From<plantd_shared::sqlite::SchemaError> for StoreError {
    fn from(err: plantd_shared::sqlite::SchemaError) -> Self {
        match err {
            plantd_shared::sqlite::SchemaError::Sqlite { doing, source } => {
                Self::sqlite(&doing, &source)
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<ValidationError> for StoreError {
    fn from(err: ValidationError) -> Self {
        let field = err.field();
        let message = err.to_string();
        match err {
            ValidationError::TooLarge { .. } => Self::TooLarge { field, message },
            ValidationError::Empty { .. } | ValidationError::Invalid { .. } => {
                Self::Invalid { field, message }
            }
        }
    }
}

/// A reason that names the kind of failure without SQL text, table or column names.
fn short_reason(err: &rusqlite::Error) -> String {
    match err {
        rusqlite::Error::SqliteFailure(code, _) => {
            // The ffi error's Display is "Error code N: description" — no SQL in it.
            let text = code.to_string();
            match text.split_once(": ") {
                Some((_, description)) => description.to_lowercase(),
                None => text.to_lowercase(),
            }
        }
        rusqlite::Error::QueryReturnedNoRows => "an expected row is missing".to_owned(),
        rusqlite::Error::InvalidColumnType(..) | rusqlite::Error::FromSqlConversionFailure(..) => {
            "a stored value has an unexpected type".to_owned()
        }
        rusqlite::Error::ToSqlConversionFailure(_)
        | rusqlite::Error::IntegralValueOutOfRange(..) => "a number is out of range".to_owned(),
        _ => "sqlite error".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_one_per_variant() {
        let cases = [
            (StoreError::invalid("limit", "limit is 2000"), 400),
            (StoreError::scope_not_found("s"), 404),
            (StoreError::key_not_found("s", "k"), 404),
            (StoreError::Conflict("x".into()), 409),
            (
                StoreError::TooLarge {
                    field: "value",
                    message: "value is 2 bytes".into(),
                },
                413,
            ),
            (StoreError::Internal("x".into()), 500),
            (StoreError::Unavailable("x".into()), 503),
        ];
        for (err, code) in cases {
            assert_eq!(err.code(), code, "{err}");
        }
    }

    #[test]
    fn not_found_messages_say_what_is_missing() {
        assert_eq!(
            StoreError::scope_not_found("site1").to_string(),
            "scope \"site1\" not found"
        );
        assert_eq!(
            StoreError::key_not_found("site1", "temp").to_string(),
            "key \"temp\" not found in scope \"site1\""
        );
    }

    #[test]
    fn validation_errors_keep_code_and_field() {
        let err: StoreError = crate::validate::key("", &Default::default())
            .unwrap_err()
            .into();
        assert_eq!((err.code(), err.field()), (400, Some("key")));
        let err: StoreError = crate::validate::max_len("value", "xx", 1)
            .unwrap_err()
            .into();
        assert_eq!((err.code(), err.field()), (413, Some("value")));
        assert_eq!(err.to_string(), "value is 2 bytes, the maximum is 1");
    }

    #[test]
    fn sqlite_errors_do_not_leak_sql() {
        let conn = rusqlite::Connection::open_in_memory().expect("in-memory sqlite opens");
        let err = conn
            .execute("INSERT INTO secret_table_name VALUES (1)", [])
            .unwrap_err();
        let store_err = StoreError::sqlite("insert", &err);
        assert_eq!(store_err.code(), 500);
        let text = store_err.to_string();
        assert!(!text.contains("secret_table_name"), "{text}");
        assert!(
            text.starts_with("internal store error: insert failed: "),
            "{text}"
        );
    }
}
