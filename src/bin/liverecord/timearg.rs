// SPDX-License-Identifier: MIT OR Apache-2.0
//! Time arguments: wall-clock times (RFC 3339 / ISO 8601, UTC) for `list`
//! and `splice`, media offsets (seconds or `HH:MM:SS.mmm`) for `trim`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// Parses a wall-clock time: RFC 3339 (`2026-12-01T10:00:00Z`,
/// `2026-12-01T11:00:00+01:00`, fractions allowed), or the same without an
/// offset (`2026-12-01T10:00:00`, `2026-12-01 10:00`), taken as UTC, or a
/// date alone (midnight UTC).
pub fn parse_wall(s: &str) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    // RFC 3339 allows a space for the T; chrono's parser does not.
    if let Ok(d) = DateTime::parse_from_rfc3339(&t.replacen(' ', "T", 1)) {
        return Ok(d.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
        "%Y%m%dT%H%M%SZ",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(n.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if let Some(n) = d.and_hms_opt(0, 0, 0) {
            return Ok(n.and_utc());
        }
    }
    Err(format!(
        "invalid time {s:?}: expected RFC 3339 / ISO 8601 UTC, e.g. 2026-12-01T10:00:00Z"
    ))
}

/// Parses a media time offset: seconds (`12.5`) or `[HH:]MM:SS[.fff]`.
/// Returns nanoseconds.
pub fn parse_media(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "invalid media time {s:?}: expected seconds (12.5) or HH:MM:SS(.mmm) (00:01:02.500)"
        )
    };
    let t = s.trim();
    let parts: Vec<&str> = t.split(':').collect();
    if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(bad());
    }
    let (whole, last) = parts.split_at(parts.len() - 1);
    let mut ns: u128 = 0;
    for p in whole {
        if !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let v: u128 = p.parse().map_err(|_| bad())?;
        ns = (ns + v) * 60;
    }
    let secs = parse_decimal_ns(last[0]).ok_or_else(bad)?;
    if parts.len() > 1 && secs >= 60_000_000_000 {
        return Err(bad());
    }
    ns = ns * 1_000_000_000 + secs;
    u64::try_from(ns).map_err(|_| bad())
}

/// `12`, `12.5`, `.5` as nanoseconds; digits and one dot only.
fn parse_decimal_ns(s: &str) -> Option<u128> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut f = frac.to_owned();
    f.truncate(9);
    while f.len() < 9 {
        f.push('0');
    }
    let frac: u128 = f.parse().ok()?;
    int.checked_mul(1_000_000_000)?.checked_add(frac)
}

/// Nanoseconds as seconds with millisecond precision: `12.345`.
pub fn secs(ns: i64) -> String {
    format!("{:.3}", ns as f64 / 1e9)
}

/// A wall-clock time with milliseconds: `2026-12-01T10:00:00.123Z`.
pub fn wall_ms(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Parses a time written by the element (RFC 3339).
pub fn parse_record_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn wall_times() {
        let want = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        for s in [
            "2026-12-01T10:00:00Z",
            "2026-12-01T11:00:00+01:00",
            "2026-12-01T10:00:00.000Z",
            "2026-12-01 10:00:00Z",
            "2026-12-01T10:00:00",
            "2026-12-01 10:00",
            "20261201T100000Z",
        ] {
            assert_eq!(parse_wall(s), Ok(want), "{s}");
        }
        assert_eq!(
            parse_wall("2026-12-01"),
            Ok(Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap())
        );
        for s in ["", "yesterday", "2026-13-01T00:00:00Z", "10:00"] {
            assert!(parse_wall(s).is_err(), "{s}");
        }
    }

    #[test]
    fn media_times() {
        assert_eq!(parse_media("12.5"), Ok(12_500_000_000));
        assert_eq!(parse_media("0"), Ok(0));
        assert_eq!(parse_media(".25"), Ok(250_000_000));
        assert_eq!(parse_media("01:02:03.5"), Ok(3_723_500_000_000));
        assert_eq!(parse_media("02:03"), Ok(123_000_000_000));
        assert_eq!(parse_media("00:00:01.123456789"), Ok(1_123_456_789));
        for s in ["", "-1", "1:2:3:4", "a", "1:60", "1.2.3", "1e3", ":5", "."] {
            assert!(parse_media(s).is_err(), "{s}");
        }
    }
}
