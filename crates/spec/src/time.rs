//! ISO-8601 timestamps, stored as microseconds since the Unix epoch in UTC.
//!
//! Every timestamp the product stores is UTC with microsecond precision, the
//! finest unit both DuckDB and PostgreSQL keep. Parsing is deliberately strict about
//! shape (a date, `T` or a space, a time) so that a property such as `"2024"` or
//! `"12:00"` stays text instead of becoming a timestamp column.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Utc};

/// Microseconds since 1970-01-01T00:00:00Z.
pub type Micros = i64;

/// Parses an ISO-8601 date-time. A value without an offset is taken as UTC, as
/// Segment's warehouses do.
pub fn parse_timestamp(s: &str) -> Option<Micros> {
    let b = s.as_bytes();
    // Cheap shape check first: this runs on every string property to decide its
    // column type, and almost all of them are not timestamps.
    if b.len() < 19
        || b.len() > 40
        || !b[0].is_ascii_digit()
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ')
        || b[13] != b':'
    {
        return None;
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc).timestamp_micros());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Some(dt.with_timezone(&Utc).timestamp_micros());
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&dt).timestamp_micros());
        }
    }
    None
}

/// `2022-05-02T14:01:00.000Z` style, used where a timestamp goes back into JSON.
pub fn format_iso(t: Micros) -> String {
    match DateTime::<Utc>::from_timestamp_micros(t) {
        Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => t.to_string(),
    }
}

/// `2022-05-02 14:01:00` (fraction only when non-zero): how warehouses print a
/// `TIMESTAMP`, and how the golden files write them.
pub fn format_sql(t: Micros) -> String {
    match DateTime::<Utc>::from_timestamp_micros(t) {
        Some(dt) => {
            if t.rem_euclid(1_000_000) == 0 {
                dt.format("%Y-%m-%d %H:%M:%S").to_string()
            } else {
                dt.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
            }
        }
        None => t.to_string(),
    }
}

/// The current time, for load times only; the identity engine never asks for it.
pub fn now_micros() -> Micros {
    Utc::now().timestamp_micros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let z = parse_timestamp("2022-05-02T14:01:00Z").unwrap();
        assert_eq!(format_sql(z), "2022-05-02 14:01:00");
        assert_eq!(parse_timestamp("2022-05-02T16:01:00+02:00"), Some(z));
        assert_eq!(parse_timestamp("2022-05-02 14:01:00"), Some(z));
        assert_eq!(parse_timestamp("2022-05-02T14:01:00.000Z"), Some(z));
        assert_eq!(
            format_sql(parse_timestamp("2022-05-02T14:01:00.123456Z").unwrap()),
            "2022-05-02 14:01:00.123456"
        );
        assert_eq!(format_iso(z), "2022-05-02T14:01:00.000Z");
    }

    #[test]
    fn rejects_non_timestamps() {
        for s in [
            "2022",
            "2022-05-02",
            "hello world, this is long",
            "12:00:00",
            "2022-13-45T99:00:00Z",
        ] {
            assert_eq!(parse_timestamp(s), None, "{s}");
        }
    }
}
