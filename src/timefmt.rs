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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
