//! Protobuf timestamps (`google.protobuf.Timestamp`) to and from `time`, in one place.

use plantd_schemas::wkt::Timestamp;
use time::OffsetDateTime;

/// `t` as a protobuf timestamp.
pub fn of(t: OffsetDateTime) -> Timestamp {
    Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

/// Now, as a protobuf timestamp.
pub fn now() -> Timestamp {
    of(OffsetDateTime::now_utc())
}

/// A protobuf timestamp as a time; `None` when out of range or its nanos are not 0..1e9.
pub fn to_time(ts: &Timestamp) -> Option<OffsetDateTime> {
    let nanos = u32::try_from(ts.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    OffsetDateTime::from_unix_timestamp(ts.seconds)
        .ok()?
        .replace_nanosecond(nanos)
        .ok()
}

/// A protobuf timestamp as RFC 3339 (`2026-12-04T10:20:30.123456789Z`); `None` when out of range.
pub fn rfc3339(ts: &Timestamp) -> Option<String> {
    to_time(ts)?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// Now, as RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("the current UTC time always formats as RFC 3339")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_bad_nanos() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(to_time(&of(t)), Some(t));
        let bad = Timestamp {
            seconds: 1,
            nanos: -1,
        };
        assert_eq!(to_time(&bad), None);
    }
}
