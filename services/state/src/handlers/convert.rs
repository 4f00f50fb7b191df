//! Store types and errors → wire messages and [`ServiceError`]s, in one place.

use plantd_schemas::wkt::Timestamp;
use plantd_shared::{ErrorCode, ServiceError};

use crate::store::StoreError;

/// Unix microseconds → protobuf timestamp.
pub fn timestamp(micros: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1000).unwrap_or(0),
    })
}

/// A store error on the wire: same code, same field.
pub fn store(err: StoreError) -> ServiceError {
    let code = ErrorCode::from_u16(err.code());
    let field = err.field();
    let mut out = ServiceError::new(code, err.to_string());
    out.field = field.map(str::to_string);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_split_micros() {
        let ts = timestamp(1_700_000_000_123_456).unwrap();
        assert_eq!((ts.seconds, ts.nanos), (1_700_000_000, 123_456_000));
        let ts = timestamp(-1).unwrap();
        assert_eq!((ts.seconds, ts.nanos), (-1, 999_999_000));
    }
}
