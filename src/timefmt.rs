//! Small, pure helpers for the time formats this tool reads and writes.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// A date or an exact instant, as users write `start_date` / `end_date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOrTime {
    /// A whole day (inclusive when used as an end).
    Date(NaiveDate),
    /// An exact instant (exclusive when used as an end).
    Time(DateTime<Utc>),
}

impl DateOrTime {
    /// Parses `YYYY-MM-DD` or an RFC 3339 datetime (`2024-01-01T12:00:00Z`).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Some(Self::Date(d));
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Some(Self::Time(t.with_timezone(&Utc)));
        }
        if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
            return Some(Self::Time(Utc.from_utc_datetime(&t)));
        }
        None
    }

    /// The instant where a range starting here begins.
    pub fn as_start(self) -> DateTime<Utc> {
        match self {
            Self::Date(d) => day_start(d),
            Self::Time(t) => t,
        }
    }

    /// The exclusive instant where a range ending here ends: a date includes its whole day.
    pub fn as_end(self) -> DateTime<Utc> {
        match self {
            Self::Date(d) => day_start(d) + chrono::Duration::days(1),
            Self::Time(t) => t,
        }
    }
}

/// Midnight UTC of a day.
pub fn day_start(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

/// SOQL datetime literal: `2024-01-01T00:00:00Z` (seconds precision, or millis when needed).
pub fn soql_datetime(t: DateTime<Utc>) -> String {
    if t.timestamp_subsec_millis() == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }
}

/// RFC 3339 with a `Z`, as written into manifests and summaries.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Compact form used inside chunk ids: `20240101T120000Z` (`20240101T120000.250Z` with millis).
pub fn compact(t: DateTime<Utc>) -> String {
    if t.timestamp_subsec_millis() == 0 {
        t.format("%Y%m%dT%H%M%SZ").to_string()
    } else {
        t.format("%Y%m%dT%H%M%S%.3fZ").to_string()
    }
}

/// Parses [`compact`]'s output.
pub fn parse_compact(s: &str) -> Option<DateTime<Utc>> {
    let body = s.strip_suffix('Z')?;
    let fmt = if body.contains('.') {
        "%Y%m%dT%H%M%S%.3f"
    } else {
        "%Y%m%dT%H%M%S"
    };
    NaiveDateTime::parse_from_str(body, fmt)
        .ok()
        .map(|t| Utc.from_utc_datetime(&t))
}

/// Salesforce REST datetime text: `2024-03-01T12:34:56.000+0000`.
pub fn sf_datetime(ms: i64) -> String {
    let t = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// Appends [`sf_datetime`]'s text without allocating (the emulator's hot path), for years
/// 0–9999.
pub fn push_sf_datetime(out: &mut Vec<u8>, ms: i64) {
    push_datetime(out, ms, false)
}

/// Appends the Bulk API 2.0 CSV form of a datetime, `2024-01-01T00:00:00.000Z`.
pub fn push_bulk_datetime(out: &mut Vec<u8>, ms: i64) {
    push_datetime(out, ms, true)
}

fn push_datetime(out: &mut Vec<u8>, ms: i64, zulu: bool) {
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // days since 1970-01-01 → civil date (H. Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut b = *b"0000-00-00T00:00:00.000+0000";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y.clamp(0, 9999));
    put(5, 2, m);
    put(8, 2, d);
    put(11, 2, ms_of_day / 3_600_000);
    put(14, 2, ms_of_day / 60_000 % 60);
    put(17, 2, ms_of_day / 1000 % 60);
    put(20, 3, ms_of_day % 1000);
    if zulu {
        b[23] = b'Z';
        out.extend_from_slice(&b[..24]);
    } else {
        out.extend_from_slice(&b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_sf_datetime_matches_chrono() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut cases = vec![
            0i64,
            -1,
            951_782_400_000,
            4_102_444_799_999,
            -62_135_596_800_000,
        ];
        for _ in 0..20_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            cases.push((rng % 7_000_000_000_000) as i64 - 2_000_000_000_000);
        }
        for ms in cases {
            let mut out = Vec::new();
            push_sf_datetime(&mut out, ms);
            assert_eq!(String::from_utf8(out).unwrap(), sf_datetime(ms), "{ms}");
        }
    }

    #[test]
    fn date_end_is_inclusive_and_time_end_exclusive() {
        let d = DateOrTime::parse("2024-02-28").unwrap();
        assert_eq!(rfc3339(d.as_end()), "2024-02-29T00:00:00Z");
        let t = DateOrTime::parse("2024-02-28T06:00:00Z").unwrap();
        assert_eq!(rfc3339(t.as_end()), "2024-02-28T06:00:00Z");
        assert!(DateOrTime::parse("28/02/2024").is_none());
    }

    #[test]
    fn compact_round_trips() {
        let t = DateOrTime::parse("2024-02-28T06:07:08Z")
            .unwrap()
            .as_start();
        assert_eq!(compact(t), "20240228T060708Z");
        assert_eq!(parse_compact(&compact(t)), Some(t));
        let t2 = t + chrono::Duration::milliseconds(250);
        assert_eq!(parse_compact(&compact(t2)), Some(t2));
        assert_eq!(
            sf_datetime(t.timestamp_millis()),
            "2024-02-28T06:07:08.000+0000"
        );
    }
}
