//! Pure planning: which chunks a run needs, given what is already committed.

use chrono::{DateTime, Duration, Utc};

use crate::sink::layout::{ChunkId, ChunkKind};
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

/// The chunks of kind `kind` that cover `[start, end)`, one or more per UTC day, skipping
/// whatever committed chunks (of any kind) already cover.
pub fn plan_range(
    kind: ChunkKind,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    committed: &[ChunkId],
) -> Vec<ChunkId> {
    let covered: Vec<_> = committed.iter().map(|c| (c.start, c.end)).collect();
    split_days(start, end)
        .into_iter()
        .flat_map(|(a, b)| subtract(a, b, &covered))
        .map(|(a, b)| ChunkId::new(kind, a, b))
        .collect()
}

/// Merges intervals; returns the gaps between `from` and `to` that none covers.
pub fn gaps(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    covered: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    subtract(from, to, covered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::DateOrTime;
    use proptest::prelude::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateOrTime::parse(s).unwrap().as_start()
    }

    #[test]
    fn days_split_at_midnight() {
        let d = split_days(t("2024-01-01T12:00:00Z"), t("2024-01-03T06:00:00Z"));
        assert_eq!(
            d,
            vec![
                (t("2024-01-01T12:00:00Z"), t("2024-01-02")),
                (t("2024-01-02"), t("2024-01-03")),
                (t("2024-01-03"), t("2024-01-03T06:00:00Z")),
            ]
        );
    }

    #[test]
    fn committed_chunks_are_skipped_and_partial_days_completed() {
        let first = plan_range(
            ChunkKind::Historical,
            t("2024-01-01"),
            t("2024-01-02T12:00:00Z"),
            &[],
        );
        assert_eq!(first.len(), 2);
        assert_eq!(
            first[1].to_string(),
            "historical-20240102T000000Z-20240102T120000Z"
        );
        let second = plan_range(
            ChunkKind::Historical,
            t("2024-01-01"),
            t("2024-01-03"),
            &first,
        );
        assert_eq!(second.len(), 1);
        assert_eq!(
            second[0].to_string(),
            "historical-20240102T120000Z-20240103T000000Z"
        );
        assert!(plan_range(
            ChunkKind::Historical,
            t("2024-01-01"),
            t("2024-01-03"),
            &[first, second].concat()
        )
        .is_empty());
    }

    #[test]
    fn the_cut_keeps_windows_in_the_past() {
        let now = t("2026-12-01T11:45:10Z");
        assert_eq!(cut(now, 300, false), t("2026-12-01T11:40:10Z"));
        assert_eq!(cut(now, 300, true), t("2026-12-01"));
        // an end three days ahead is cut; a date cursor stops at the last whole day
        let end = t("2026-12-04");
        assert_eq!(
            fetch_range(t("2026-11-28"), end, cut(now, 300, false), false),
            Some((t("2026-11-28"), t("2026-12-01T11:40:10Z")))
        );
        assert_eq!(
            fetch_range(t("2026-11-28T06:00:00Z"), end, cut(now, 300, true), true),
            Some((t("2026-11-29"), t("2026-12-01")))
        );
        assert_eq!(
            fetch_range(t("2026-12-02"), end, cut(now, 300, false), false),
            None
        );
    }

    proptest! {
        #[test]
        fn fetched_ranges_never_pass_the_cut_and_date_ranges_are_whole_days(
            start in 0i64..(20 * 86_400), len in 1i64..(10 * 86_400), now in 0i64..(40 * 86_400),
            lag in 0u64..(2 * 86_400), date in any::<bool>()
        ) {
            let base = t("2026-03-01");
            let (s, e) = (base + Duration::seconds(start), base + Duration::seconds(start + len));
            let c = cut(base + Duration::seconds(now), lag, date);
            if let Some((a, b)) = fetch_range(s, e, c, date) {
                prop_assert!(a < b && b <= c);
                let e2 = if date { ceil_day(e) } else { e };
                prop_assert!(b <= e2);
                if date {
                    prop_assert_eq!(a, day_start(a.date_naive()));
                    prop_assert_eq!(b, day_start(b.date_naive()));
                    prop_assert!(a >= s && a < s + Duration::days(1));
                } else {
                    prop_assert_eq!(a, s);
                }
            } else {
                // nothing fetchable: the (day-widened) range starts at or after the cut
                let a = if date { ceil_day(s) } else { s };
                let e2 = if date { ceil_day(e) } else { e };
                prop_assert!(a >= c.min(e2));
            }
        }

        #[test]
        fn plan_covers_exactly_the_uncovered_time(
            start in 0i64..(10 * 86_400), len in 1i64..(5 * 86_400),
            cov in proptest::collection::vec((0i64..(16 * 86_400), 1i64..86_400), 0..6)
        ) {
            let base = t("2024-03-01");
            let s = base + Duration::seconds(start);
            let e = s + Duration::seconds(len);
            let committed: Vec<ChunkId> = cov.iter().flat_map(|(a, l)| {
                let a = base + Duration::seconds(*a);
                split_days(a, a + Duration::seconds(*l)).into_iter().map(|(x, y)| ChunkId::new(ChunkKind::Backfill, x, y))
            }).collect();
            let plan = plan_range(ChunkKind::Historical, s, e, &committed);
            // every planned chunk lies inside one day, inside [s, e), and outside every committed window
            for c in &plan {
                prop_assert!(c.start >= s && c.end <= e && c.start < c.end);
                prop_assert_eq!(c.start.date_naive(), (c.end - Duration::milliseconds(1)).date_naive());
                for k in &committed {
                    prop_assert!(c.end <= k.start || c.start >= k.end);
                }
            }
            // planned + committed covers [s, e) with no hole
            let mut all: Vec<_> = plan.iter().map(|c| (c.start, c.end)).collect();
            all.extend(committed.iter().map(|c| (c.start, c.end)));
            prop_assert!(gaps(s, e, &all).is_empty());
            // planned chunks do not overlap each other
            let mut p: Vec<_> = plan.iter().map(|c| (c.start, c.end)).collect();
            p.sort();
            for w in p.windows(2) {
                prop_assert!(w[0].1 <= w[1].0);
            }
        }
    }
}
