//! Input rules for scopes, keys and values, shared by every entry point of the state service.
//!
//! The rules live in one place so that a NATS handler, the store and a test reject the same input
//! with the same message and wire code. A scope becomes part of a NATS subject
//! (`plantd.state.get.<scope>`), so its tokens must be valid subject tokens: non-empty, without
//! the wildcards `*` and `>`, whitespace or control characters. Keys and values travel in the
//! payload and may hold any UTF-8 (the type `&str` already guarantees that); only their size is
//! bounded, because the store and the KV mirror have to hold them. A size violation is a 413,
//! every other violation a 400, and each error names the field that was wrong.

use serde::{Deserialize, Serialize};

/// Largest scope, in bytes, including the dots between its tokens.
pub const MAX_SCOPE_BYTES: usize = plantd_shared::subjects::MAX_SCOPE_BYTES;

/// Default for [`Limits::max_key_bytes`].
pub const DEFAULT_MAX_KEY_BYTES: usize = 1024;

/// Default for [`Limits::max_value_bytes`]: 1 MiB less 4 KiB, so that a value and the mirror's
/// headers fit a nats-server with the default 1 MiB `max_payload`.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1024 * 1024 - 4096;

/// Size limits for keys and values; part of the service configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest key, in bytes of UTF-8.
    pub max_key_bytes: usize,
    /// Largest value, in bytes of UTF-8.
    pub max_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_key_bytes: DEFAULT_MAX_KEY_BYTES,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
        }
    }
}

/// Why an input was rejected. Each error names its field and maps to a wire code via
/// [`ValidationError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The field is empty but must not be (400).
    #[error("{field} must not be empty")]
    Empty {
        /// The field that was empty.
        field: &'static str,
    },
    /// The field breaks a rule other than its size (400).
    #[error("{field} {reason}")]
    Invalid {
        /// The field that was wrong.
        field: &'static str,
        /// What is wrong with it, phrased to follow the field name.
        reason: String,
    },
    /// The field is larger than its limit (413).
    #[error("{field} is {len} bytes, the maximum is {max}")]
    TooLarge {
        /// The field that was too large.
        field: &'static str,
        /// Its size in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
}

impl ValidationError {
    /// The wire code: 413 for a size violation, 400 for everything else.
    pub fn code(&self) -> u16 {
        match self {
            Self::Empty { .. } | Self::Invalid { .. } => 400,
            Self::TooLarge { .. } => 413,
        }
    }

    /// The name of the field that was wrong (`"scope"`, `"key"`, `"value"`, …).
    pub fn field(&self) -> &'static str {
        match self {
            Self::Empty { field } | Self::Invalid { field, .. } | Self::TooLarge { field, .. } => {
                field
            }
        }
    }
}

/// Checks a scope: one or more dot-separated subject tokens, at most [`MAX_SCOPE_BYTES`]. The
/// rule itself is the one every plantd subject uses ([`plantd_shared::subjects::validate_scope`]);
/// this maps it to a 400 naming the field.
///
/// A scope longer than the limit is a 400, not a 413: it names a place in the subject space and
/// is not a payload.
pub fn scope(scope: &str) -> Result<(), ValidationError> {
    use plantd_shared::subjects::{ScopeError, validate_scope};
    const FIELD: &str = "scope";
    validate_scope(scope).map_err(|err| match err {
        ScopeError::Empty => ValidationError::Empty { field: FIELD },
        other => ValidationError::Invalid {
            field: FIELD,
            reason: other.to_string().trim_start_matches("scope ").to_string(),
        },
    })
}

/// Checks a key: non-empty UTF-8 of at most `limits.max_key_bytes` bytes.
pub fn key(key: &str, limits: &Limits) -> Result<(), ValidationError> {
    if key.is_empty() {
        return Err(ValidationError::Empty { field: "key" });
    }
    max_len("key", key, limits.max_key_bytes)
}

/// Checks a value: UTF-8 of at most `limits.max_value_bytes` bytes; empty is allowed.
pub fn value(value: &str, limits: &Limits) -> Result<(), ValidationError> {
    max_len("value", value, limits.max_value_bytes)
}

/// Checks that `text` is at most `max` bytes long; used for keys, values and list prefixes.
pub fn max_len(field: &'static str, text: &str, max: usize) -> Result<(), ValidationError> {
    if text.len() > max {
        return Err(ValidationError::TooLarge {
            field,
            len: text.len(),
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_good_scopes() {
        for good in [
            "site1",
            "site1.line2.oven",
            "org.plantd.Service1",
            "a-b_c.ü.$x",
        ] {
            assert_eq!(scope(good), Ok(()), "{good}");
        }
        assert_eq!(scope(&"a".repeat(MAX_SCOPE_BYTES)), Ok(()));
    }

    #[test]
    fn rejects_bad_scopes_with_400_naming_scope() {
        let long = "a".repeat(MAX_SCOPE_BYTES + 1);
        for bad in [
            "", ".a", "a.", "a..b", "a.*", "a.>", "a b", "a\tb", "a\u{7}b", "*", &long,
        ] {
            let err = scope(bad).expect_err(bad);
            assert_eq!(err.code(), 400, "{bad}");
            assert_eq!(err.field(), "scope");
            assert!(err.to_string().starts_with("scope "), "{err}");
        }
        assert_eq!(
            scope("").unwrap_err().to_string(),
            "scope must not be empty"
        );
        assert_eq!(
            scope(&long).unwrap_err().to_string(),
            "scope is 257 bytes, the maximum is 256"
        );
    }

    #[test]
    fn keys_may_hold_any_utf8_but_not_be_empty_or_too_long() {
        let limits = Limits::default();
        for good in [
            "temp",
            "a.b",
            "Temperatur Ofen ü",
            "🔥",
            "with\nnewline",
            "*>",
        ] {
            assert_eq!(key(good, &limits), Ok(()), "{good:?}");
        }
        let err = key("", &limits).unwrap_err();
        assert_eq!((err.code(), err.field()), (400, "key"));
        assert_eq!(err.to_string(), "key must not be empty");

        let err = key(&"k".repeat(1025), &limits).unwrap_err();
        assert_eq!((err.code(), err.field()), (413, "key"));
        assert_eq!(err.to_string(), "key is 1025 bytes, the maximum is 1024");
    }

    #[test]
    fn values_are_bounded_in_bytes() {
        let limits = Limits::default();
        assert_eq!(value("", &limits), Ok(()));
        assert_eq!(value(&"v".repeat(1_044_480), &limits), Ok(()));
        let err = value(&"v".repeat(1_044_481), &limits).unwrap_err();
        assert_eq!((err.code(), err.field()), (413, "value"));
        assert_eq!(
            err.to_string(),
            "value is 1044481 bytes, the maximum is 1044480"
        );

        let small = Limits {
            max_key_bytes: 4,
            max_value_bytes: 3,
        };
        // Bytes, not characters: "ü" is two bytes.
        assert!(value("üü", &small).is_err());
        assert!(key("üü", &small).is_ok());
        assert!(key("üüü", &small).is_err());
    }
}
