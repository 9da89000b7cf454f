//! Off-peak windows (pure): `--window 22:00-06:00 --tz America/New_York`. New chunks start
//! only while the window is open. Windows may cross midnight; on DST days a wall-clock time
//! that does not exist (spring forward) moves to the first instant after the gap, and one that
//! exists twice (fall back) opens at its first occurrence and closes at its last.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A daily wall-clock window in a time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct OffPeak {
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub tz: Tz,
}

/// Whether new chunks may start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowState {
    Open { closes_at: DateTime<Utc> },
    Closed { opens_at: DateTime<Utc> },
}

impl OffPeak {
    /// Parses `HH:MM-HH:MM` and an IANA zone name.
    pub fn parse(window: &str, tz: &str) -> Result<Self, String> {
        let (a, b) = window.split_once('-').ok_or_else(|| {
            format!("--window {window:?}: expected HH:MM-HH:MM, e.g. 22:00-06:00")
        })?;
        let p = |s: &str| {
            NaiveTime::parse_from_str(s.trim(), "%H:%M")
                .map_err(|_| format!("--window {window:?}: {s:?} is not HH:MM"))
        };
        let (start, end) = (p(a)?, p(b)?);
        if start == end {
            return Err(format!(
                "--window {window:?}: start and end are equal; omit --window to run at any time"
            ));
        }
        let tz: Tz = tz.parse().map_err(|_| {
            format!("--tz {tz:?}: not an IANA time zone such as America/New_York or Europe/Berlin")
        })?;
        Ok(Self { start, end, tz })
    }

    /// The UTC instant of a local wall-clock time (gaps move forward; folds pick `earliest`).
    fn instant(&self, day: NaiveDate, t: NaiveTime, earliest: bool) -> DateTime<Utc> {
        let mut naive = day.and_time(t);
        for _ in 0..(3 * 60) {
            match self.tz.from_local_datetime(&naive) {
                LocalResult::Single(x) => return x.with_timezone(&Utc),
                LocalResult::Ambiguous(a, b) => {
                    return if earliest { a } else { b }.with_timezone(&Utc)
                }
                LocalResult::None => naive += Duration::minutes(1),
            }
        }
        Utc.from_utc_datetime(&day.and_time(t))
    }

    /// The window that opens on local day `day`, as `[open, close)` in UTC.
    pub fn occurrence(&self, day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
        let open = self.instant(day, self.start, true);
        let close_day = if self.end > self.start {
            day
        } else {
            day.succ_opt().unwrap_or(day)
        };
        let close = self.instant(close_day, self.end, false);
        (open, close)
    }

    /// Open or closed at `now`, with the next change.
    pub fn state(&self, now: DateTime<Utc>) -> WindowState {
        let today = now.with_timezone(&self.tz).date_naive();
        let mut next_open: Option<DateTime<Utc>> = None;
        for offset in -1..=2 {
            let day = today + Duration::days(offset);
            let (open, close) = self.occurrence(day);
            if open <= now && now < close {
                return WindowState::Open { closes_at: close };
            }
            if open > now && next_open.map(|n| open < n).unwrap_or(true) {
                next_open = Some(open);
            }
        }
        WindowState::Closed {
            opens_at: next_open.unwrap_or(now + Duration::days(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn same_day_window() {
        let w = OffPeak::parse("01:00-05:00", "Europe/Berlin").unwrap();
        // 2025-06-10 02:00 Berlin (CEST, UTC+2) = 00:00Z
        assert_eq!(
            w.state(utc("2025-06-10T00:00:00Z")),
            WindowState::Open {
                closes_at: utc("2025-06-10T03:00:00Z")
            }
        );
        // already closed today: opens tomorrow 01:00 CEST
        assert_eq!(
            w.state(utc("2025-06-10T10:00:00Z")),
            WindowState::Closed {
                opens_at: utc("2025-06-10T23:00:00Z")
            }
        );
    }

    #[test]
    fn window_crossing_midnight() {
        let w = OffPeak::parse("22:00-06:00", "America/New_York").unwrap();
        // 23:30 EDT (UTC-4) on June 10 = 03:30Z June 11: open until 06:00 EDT = 10:00Z
        assert_eq!(
            w.state(utc("2025-06-11T03:30:00Z")),
            WindowState::Open {
                closes_at: utc("2025-06-11T10:00:00Z")
            }
        );
        // 05:00 EDT June 11 (09:00Z): still the window that opened the evening before
        assert_eq!(
            w.state(utc("2025-06-11T09:00:00Z")),
            WindowState::Open {
                closes_at: utc("2025-06-11T10:00:00Z")
            }
        );
        // 12:00 EDT: closed, opens 22:00 EDT = 02:00Z next day
        assert_eq!(
            w.state(utc("2025-06-11T16:00:00Z")),
            WindowState::Closed {
                opens_at: utc("2025-06-12T02:00:00Z")
            }
        );
    }

    #[test]
    fn spring_forward_new_york() {
        // 2025-03-09: clocks jump 02:00 → 03:00 EST→EDT. A 02:30-04:00 window opens at 03:00 EDT (07:00Z).
        let w = OffPeak::parse("02:30-04:00", "America/New_York").unwrap();
        let (open, close) = w.occurrence(NaiveDate::from_ymd_opt(2025, 3, 9).unwrap());
        assert_eq!(open, utc("2025-03-09T07:00:00Z"));
        assert_eq!(close, utc("2025-03-09T08:00:00Z"));
        // a night window over the change is one hour shorter: 22:00 EST (03:00Z) to 06:00 EDT (10:00Z) = 7 h
        let w = OffPeak::parse("22:00-06:00", "America/New_York").unwrap();
        let (open, close) = w.occurrence(NaiveDate::from_ymd_opt(2025, 3, 8).unwrap());
        assert_eq!(close - open, Duration::hours(7));
    }

    #[test]
    fn fall_back_berlin() {
        // 2025-10-26: 03:00 CEST → 02:00 CET. 02:00-03:00 happens twice; the window spans both.
        let w = OffPeak::parse("02:00-03:00", "Europe/Berlin").unwrap();
        let (open, close) = w.occurrence(NaiveDate::from_ymd_opt(2025, 10, 26).unwrap());
        assert_eq!(open, utc("2025-10-26T00:00:00Z")); // 02:00 CEST
        assert_eq!(close, utc("2025-10-26T02:00:00Z")); // 03:00 CET
                                                        // a night window over the change is one hour longer: 9 h
        let w = OffPeak::parse("22:00-06:00", "Europe/Berlin").unwrap();
        let (open, close) = w.occurrence(NaiveDate::from_ymd_opt(2025, 10, 25).unwrap());
        assert_eq!(close - open, Duration::hours(9));
        assert!(matches!(
            w.state(utc("2025-10-26T01:30:00Z")),
            WindowState::Open { .. }
        ));
    }

    #[test]
    fn bad_windows_are_explained() {
        assert!(OffPeak::parse("25:00-06:00", "UTC").is_err());
        assert!(OffPeak::parse("22:00", "UTC").is_err());
        assert!(OffPeak::parse("22:00-22:00", "UTC").is_err());
        assert!(OffPeak::parse("22:00-06:00", "Mars/Olympus")
            .unwrap_err()
            .contains("IANA"));
    }

    proptest! {
        /// Whatever the instant and window, the state is consistent: open means now is inside
        /// an occurrence that closes later; closed means the next opening is after now and
        /// within two days.
        #[test]
        fn state_is_consistent(secs in 1_700_000_000i64..1_800_000_000, a in 0u32..1440, b in 0u32..1440, zone in 0usize..4) {
            prop_assume!(a != b);
            let tz = ["America/New_York", "Europe/Berlin", "UTC", "Australia/Sydney"][zone];
            let w = OffPeak::parse(&format!("{:02}:{:02}-{:02}:{:02}", a / 60, a % 60, b / 60, b % 60), tz).unwrap();
            let now = DateTime::from_timestamp(secs, 0).unwrap();
            match w.state(now) {
                WindowState::Open { closes_at } => prop_assert!(closes_at > now && closes_at - now <= Duration::hours(25)),
                WindowState::Closed { opens_at } => {
                    prop_assert!(opens_at > now && opens_at - now <= Duration::hours(49));
                    let open_then = matches!(w.state(opens_at), WindowState::Open { .. });
                    prop_assert!(open_then);
                }
            }
        }
    }
}
