//! Time-range arithmetic of planning and committing: the cut a run may fetch to, UTC day
//! splits, and what of a range committed chunks leave uncovered.

use chrono::{DateTime, Duration, Utc};

use crate::timefmt::day_start;

/// The latest instant a window may end at: `now − lag_s`, so no chunk covers time that has not
/// happened (or whose late-committed records may still appear). For a `date` cursor, the last
/// midnight at or before that: a day is fetched once it has wholly passed.
pub fn cut(now: DateTime<Utc>, lag_s: u64, date_cursor: bool) -> DateTime<Utc> {
    let t = now - Duration::seconds(lag_s.min(i64::MAX as u64 / 1000) as i64);
    if date_cursor {
        day_start(t.date_naive())
    } else {
        t
    }
}

/// The next midnight at or after `t`.
pub fn ceil_day(t: DateTime<Utc>) -> DateTime<Utc> {
    let d = day_start(t.date_naive());
    if d == t {
        d
    } else {
        d + Duration::days(1)
    }
}

/// What to fetch of the range `[start, end)`: cut at `cut`, and for a `date` cursor widened to
/// whole days (a date `d` sits at d's midnight, so it is inside `[start, end)` exactly when
/// `ceil_day(start) <= d < ceil_day(end)`). `None` when nothing of it can be fetched yet.
pub fn fetch_range(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    cut: DateTime<Utc>,
    date_cursor: bool,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (s, e) = if date_cursor {
        (ceil_day(start), ceil_day(end).min(cut))
    } else {
        (start, end.min(cut))
    };
    (s < e).then_some((s, e))
}

/// Splits `[start, end)` at UTC midnights.
pub fn split_days(start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out = Vec::new();
    let mut a = start;
    while a < end {
        let next_midnight = day_start(a.date_naive()) + Duration::days(1);
        let b = next_midnight.min(end);
        out.push((a, b));
        a = b;
    }
    out
}

/// `[start, end)` minus the union of `covered`, as sorted disjoint intervals.
pub fn subtract(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    covered: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut cov: Vec<_> = covered
        .iter()
        .copied()
        .filter(|(a, b)| a < b && *b > start && *a < end)
        .collect();
    cov.sort();
    let mut out = Vec::new();
    let mut cur = start;
    for (a, b) in cov {
        if a > cur {
            out.push((cur, a.min(end)));
        }
        if b > cur {
            cur = b;
        }
        if cur >= end {
            break;
        }
    }
    if cur < end {
        out.push((cur, end));
    }
    out
}
