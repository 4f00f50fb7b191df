//! Reversible mapping of `(scope, key)` onto a JetStream KV key.
//!
//! KV keys may only hold `[-/_=.A-Za-z0-9]` and use `.` to separate subject tokens, while plantd
//! keys are arbitrary UTF-8 (dots, spaces, `ü`, emoji). Each scope token and the key therefore
//! become one KV token each: bytes in `[A-Za-z0-9_/-]` stay literal and every other byte —
//! including `.` and `=` itself — becomes `=XX` in uppercase hex. Because the key is always
//! exactly one token, a key that looks like a sub-scope (`b.c` in scope `a` → `a.b=2Ec`) can never
//! collide with a key of that sub-scope (`c` in scope `a.b` → `a.b.c`), and KV wildcards line up
//! with scopes: `<scope>.*` is a scope's own keys, `<scope>.>` the whole subtree.
//!
//! Decoding is strict: it accepts only what [`encode`] produces (uppercase hex, no escape of a
//! literal byte), so the mapping is a bijection and a foreign key in the bucket is reported
//! rather than silently aliased onto a plantd key.
//!
//! The encoded form is up to three times as long as its input; [`encode`] expects input that
//! passed [`crate::validate`] (non-empty key, non-empty scope tokens).

use std::fmt::Write as _;

/// Why a KV key is not one [`encode`] could have produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvKeyError {
    /// Fewer than two tokens: there must be at least one scope token and the key.
    #[error("kv key {0:?} has no scope or no key token")]
    TooFewTokens(String),
    /// A token is empty (leading, trailing or doubled `.`).
    #[error("kv key {0:?} has an empty token")]
    EmptyToken(String),
    /// A character that is neither literal nor a well-formed escape.
    #[error("kv key {kv_key:?} has an invalid escape or character at byte {at}")]
    BadEscape {
        /// The offending KV key.
        kv_key: String,
        /// Byte offset of the problem.
        at: usize,
    },
    /// The decoded bytes of a token are not UTF-8.
    #[error("kv key {0:?} does not decode to utf-8")]
    NotUtf8(String),
}

/// Whether `b` stays literal in an encoded token.
fn is_literal(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'/')
}

/// Appends the encoding of one token to `out`.
fn encode_token(token: &str, out: &mut String) {
    for &b in token.as_bytes() {
        if is_literal(b) {
            out.push(char::from(b));
        } else {
            // Writing into a String cannot fail.
            let _ = write!(out, "={b:02X}");
        }
    }
}

/// Encodes a scope alone: its tokens, each escaped, joined by `.`.
fn encode_scope(scope: &str) -> String {
    let mut out = String::with_capacity(scope.len());
    for (i, token) in scope.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        encode_token(token, &mut out);
    }
    out
}

/// Encodes `(scope, key)` as a KV key: the encoded scope tokens, `.`, the encoded key.
pub fn encode(scope: &str, key: &str) -> String {
    let mut out = encode_scope(scope);
    out.push('.');
    encode_token(key, &mut out);
    out
}

/// Decodes a KV key made by [`encode`] into `(scope, key)`: the last token is the key, the
/// others the scope.
pub fn decode(kv_key: &str) -> Result<(String, String), KvKeyError> {
    let Some((scope_part, key_part)) = kv_key.rsplit_once('.') else {
        return Err(KvKeyError::TooFewTokens(kv_key.to_owned()));
    };
    let mut scope = String::with_capacity(scope_part.len());
    let mut offset = 0;
    for (i, token) in scope_part.split('.').enumerate() {
        if i > 0 {
            scope.push('.');
        }
        scope.push_str(&decode_token(kv_key, token, offset)?);
        offset += token.len() + 1;
    }
    let key = decode_token(kv_key, key_part, scope_part.len() + 1)?;
    Ok((scope, key))
}

/// Decodes one token that starts at byte `offset` of `kv_key` (used for error positions).
fn decode_token(kv_key: &str, token: &str, offset: usize) -> Result<String, KvKeyError> {
    if token.is_empty() {
        return Err(KvKeyError::EmptyToken(kv_key.to_owned()));
    }
    let bad = |at: usize| KvKeyError::BadEscape {
        kv_key: kv_key.to_owned(),
        at: offset + at,
    };
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if is_literal(b) {
            out.push(b);
            i += 1;
        } else if b == b'=' {
            let hi = bytes
                .get(i + 1)
                .copied()
                .and_then(hex_value)
                .ok_or_else(|| bad(i))?;
            let lo = bytes
                .get(i + 2)
                .copied()
                .and_then(hex_value)
                .ok_or_else(|| bad(i))?;
            let decoded = (hi << 4) | lo;
            if is_literal(decoded) {
                // encode() would have kept this byte literal: not canonical.
                return Err(bad(i));
            }
            out.push(decoded);
            i += 3;
        } else {
            return Err(bad(i));
        }
    }
    String::from_utf8(out).map_err(|_| KvKeyError::NotUtf8(kv_key.to_owned()))
}

/// The value of an uppercase hex digit.
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// KV filter matching the keys of `scope` itself, not of its sub-scopes: `<scope>.*`.
pub fn scope_filter(scope: &str) -> String {
    format!("{}.*", encode_scope(scope))
}

/// KV filter matching the keys of `scope` and of all its sub-scopes: `<scope>.>`.
pub fn subtree_filter(scope: &str) -> String {
    format!("{}.>", encode_scope(scope))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_kv_key(s: &str) -> bool {
        !s.is_empty()
            && !s.starts_with('.')
            && !s.ends_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b))
    }

    fn round_trip(scope: &str, key: &str) {
        let kv = encode(scope, key);
        assert!(is_kv_key(&kv), "{kv:?} from ({scope:?}, {key:?})");
        assert_eq!(
            decode(&kv),
            Ok((scope.to_owned(), key.to_owned())),
            "{kv:?}"
        );
    }

    #[test]
    fn round_trips_awkward_keys() {
        for key in [
            "temp",
            "a.b.c",
            "with space",
            "path/to/x",
            "a=b",
            "=41",
            "Temperatur Ofen ü",
            "🔥 hot",
            "*",
            ">",
            "..",
            "tab\there",
            "-_/",
        ] {
            round_trip("site1.line2.oven", key);
            round_trip("org.plantd.Service1", key);
        }
    }

    #[test]
    fn encoding_is_as_documented() {
        assert_eq!(encode("site1.oven", "temp"), "site1.oven.temp");
        assert_eq!(encode("a", "b.c"), "a.b=2Ec");
        assert_eq!(encode("a", "x=y z"), "a.x=3Dy=20z");
        assert_eq!(encode("a", "ü"), "a.=C3=BC");
        assert_eq!(encode("s$1", "k"), "s=241.k");
        assert_eq!(scope_filter("site1.oven"), "site1.oven.*");
        assert_eq!(subtree_filter("site1"), "site1.>");
        assert_eq!(subtree_filter("a=b"), "a=3Db.>");
    }

    #[test]
    fn a_key_that_looks_like_a_sub_scope_never_collides() {
        let key_in_parent = encode("a", "b.c");
        let key_in_child = encode("a.b", "c");
        assert_ne!(key_in_parent, key_in_child);
        assert_eq!(decode(&key_in_child), Ok(("a.b".into(), "c".into())));
        assert_eq!(decode(&key_in_parent), Ok(("a".into(), "b.c".into())));
    }

    #[test]
    fn rejects_what_encode_cannot_produce() {
        for bad in [
            "", "onlyone", ".a", "a.", "a..b", "a.=4", "a.=zz", "a.=2e", "a.=41", "a.b c", "a.=FF",
            "a.ü",
        ] {
            assert!(decode(bad).is_err(), "{bad:?} decoded to {:?}", decode(bad));
        }
        assert!(matches!(decode("a.=FF"), Err(KvKeyError::NotUtf8(_))));
        assert!(matches!(decode("a"), Err(KvKeyError::TooFewTokens(_))));
        assert!(matches!(
            decode("ab.c=2"),
            Err(KvKeyError::BadEscape { at: 4, .. })
        ));
    }

    /// A small deterministic generator (xorshift) so the test needs no rand crate.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn string(&mut self, alphabet: &[char], max_len: u64) -> String {
            let len = 1 + self.next() % max_len;
            (0..len)
                .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize])
                .collect()
        }
    }

    #[test]
    fn generated_pairs_round_trip_and_stay_distinct() {
        let key_chars: Vec<char> = "aZ09_-/.= =*>\t\nüß€🔥\u{0}\u{7f}%$".chars().collect();
        let scope_chars: Vec<char> = "aZ09_-/=ü$%".chars().collect();
        let mut rng = Gen(0x9E37_79B9_7F4A_7C15);
        let mut seen = std::collections::HashMap::new();
        for _ in 0..5000 {
            let tokens = 1 + rng.next() % 3;
            let scope = (0..tokens)
                .map(|_| rng.string(&scope_chars, 6))
                .collect::<Vec<_>>()
                .join(".");
            let key = rng.string(&key_chars, 12);
            round_trip(&scope, &key);
            let kv = encode(&scope, &key);
            if let Some(previous) = seen.insert(kv.clone(), (scope.clone(), key.clone())) {
                assert_eq!(previous, (scope, key), "collision on {kv:?}");
            }
        }
    }
}
