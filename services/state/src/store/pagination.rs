//! Page sizes and page tokens for `list`.
//!
//! Pages are keyset-paginated: a token is the last key of the previous page (base64url without
//! padding, so it is opaque and survives any transport), and the next page starts strictly after
//! it. Unlike offsets, this stays correct while others write: a key is never returned twice,
//! and a key that exists for the whole listing is never skipped.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::StoreError;
use crate::validate::Limits;

/// Page size when the request says 0.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// Largest page size a request may ask for.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// The page size for a requested `limit`: 0 means the default; above the maximum is a 400.
pub(crate) fn page_size(limit: u32) -> Result<usize, StoreError> {
    match limit {
        0 => Ok(DEFAULT_PAGE_SIZE as usize),
        n if n <= MAX_PAGE_SIZE => Ok(n as usize),
        n => Err(StoreError::invalid(
            "limit",
            format!("limit is {n}, the maximum is {MAX_PAGE_SIZE}"),
        )),
    }
}

/// The token that continues a listing after `last_key`.
pub(crate) fn encode_token(last_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(last_key)
}

/// The key a `page_token` continues after; `None` for the empty token (first page).
pub(crate) fn decode_token(token: &str, limits: &Limits) -> Result<Option<String>, StoreError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || {
        StoreError::invalid(
            "page_token",
            "page_token is not a token from a previous list reply",
        )
    };
    // A key is at most max_key_bytes, so a longer token cannot be ours.
    if token.len() > limits.max_key_bytes.saturating_mul(4) / 3 + 4 {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let key = String::from_utf8(bytes).map_err(|_| bad())?;
    if key.is_empty() || key.len() > limits.max_key_bytes {
        return Err(bad());
    }
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        // Fuzzing (issue #9): any token is a first page, a key, or a 400 naming the field.
        // `PROPTEST_CASES=100000 cargo test -p plantd-state pagination` runs it long.
        #[test]
        fn any_token_decodes_or_is_a_400_naming_the_field(token in proptest::prelude::any::<String>()) {
            match decode_token(&token, &Limits::default()) {
                Ok(None) => proptest::prop_assert!(token.is_empty()),
                Ok(Some(key)) => proptest::prop_assert_eq!(encode_token(&key), token),
                Err(err) => proptest::prop_assert_eq!((err.code(), err.field()), (400, Some("page_token"))),
            }
        }

        #[test]
        fn every_key_round_trips(chars in proptest::collection::vec(proptest::char::any(), 1..200)) {
            let key: String = chars.into_iter().collect();
            proptest::prop_assert_eq!(decode_token(&encode_token(&key), &Limits::default()), Ok(Some(key)));
        }
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(0), Ok(100));
        assert_eq!(page_size(1), Ok(1));
        assert_eq!(page_size(1000), Ok(1000));
        let err = page_size(1001).unwrap_err();
        assert_eq!((err.code(), err.field()), (400, Some("limit")));
        assert_eq!(err.to_string(), "limit is 1001, the maximum is 1000");
    }

    #[test]
    fn tokens_round_trip_and_bad_ones_name_the_field() {
        let limits = Limits::default();
        for key in ["a", "Temperatur Ofen ü", "🔥/x.y=z", &"k".repeat(1024)] {
            let token = encode_token(key);
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert_eq!(decode_token(&token, &limits), Ok(Some(key.to_owned())));
        }
        assert_eq!(decode_token("", &limits), Ok(None));
        let not_utf8 = URL_SAFE_NO_PAD.encode([0xff, 0xfe]);
        let too_long = encode_token(&"k".repeat(1025));
        for bad in ["!!!", "a", not_utf8.as_str(), too_long.as_str()] {
            let err = decode_token(bad, &limits).unwrap_err();
            assert_eq!(
                (err.code(), err.field()),
                (400, Some("page_token")),
                "{bad}"
            );
        }
    }
}
