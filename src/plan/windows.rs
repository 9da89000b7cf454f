//! Pure planning: which chunks a run needs, given what is already committed.

use chrono::{DateTime, Utc};

use crate::ranges::split_days;
#[cfg(test)]
use crate::ranges::subtract;
#[cfg(test)]
use crate::sink::layout::{ChunkId, ChunkKind};

/// Records of one stretch of an object's cursor range, from the counts planning asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub records: u64,
}

/// A query window: one Salesforce query over `[start, end)` (possibly many days) that is
/// expected to return about `records` records. The unit of fetching and of scheduling.
pub type Window = Segment;

/// The most records a window is planned to hold (the default of `sync.window_records`).
pub use crate::config::WINDOW_TARGET;

/// The records of a window that was not counted (a stretch of a day or less: counting it
/// would cost as much as fetching it).
pub const UNCOUNTED: u64 = u64::MAX;

/// A window's planned records, `None` when it was not counted.
pub fn counted(records: u64) -> Option<u64> {
    (records != UNCOUNTED).then_some(records)
}

/// Records per REST page (Salesforce's largest batch size).
pub const PAGE: u64 = 2_000;

/// Cuts a stretch's segments (sorted, contiguous) into windows: consecutive segments are
/// joined while the window holds at most the target — `most` (`sync.window_records`, by default
/// [`WINDOW_TARGET`]), or less so that at
/// least `concurrency` windows run at once when there is enough data (never below one page) —
/// and empty segments cost nothing (they join a neighbour; a stretch with no record at all is
/// one window of 0 records, which needs no query). A single segment larger than the target is
/// a window of its own.
pub fn cut_windows(segments: &[Segment], concurrency: usize, most: u64) -> Vec<Window> {
    let total: u64 = segments.iter().map(|s| s.records).sum();
    let most = most.max(1);
    let target = total
        .div_ceil(concurrency.max(1) as u64)
        .clamp(PAGE.min(most), most);
    join(segments, target)
}

/// Joins consecutive segments while a window holds at most `target` records.
fn join(segments: &[Segment], target: u64) -> Vec<Window> {
    let mut out: Vec<Window> = Vec::new();
    for s in segments {
        match out.last_mut() {
            Some(w) if w.end == s.start && (w.records == 0 || w.records + s.records <= target) => {
                w.end = s.end;
                w.records += s.records;
            }
            // leading empty time joins the window after it rather than standing alone
            _ => out.push(*s),
        }
    }
    out
}

/// Cuts segments into `n` windows of about equal records: window `i` ends at the first
/// segment boundary where the records so far reach `i/n` of the total (a job per window, so no
/// small remainder window is left over). Empty segments join their neighbours.
fn cut_even(segments: &[Segment], n: u64) -> Vec<Window> {
    let total: u64 = segments.iter().map(|s| s.records).sum();
    let n = n.max(1);
    let mut out: Vec<Window> = Vec::new();
    let mut seen = 0u64;
    let mut k = 1u64; // the window being filled
    for s in segments {
        match out.last_mut() {
            // join while this window's share is not reached yet (or it holds nothing)
            Some(w)
                if w.end == s.start
                    && (w.records == 0 || s.records == 0 || seen < total * k / n) =>
            {
                w.end = s.end;
                w.records += s.records;
            }
            Some(_) => {
                k += 1;
                out.push(*s);
            }
            None => out.push(*s),
        }
        seen += s.records;
    }
    out
}

/// Records from which `sync.api = "auto"` fetches a window with a Bulk API 2.0 job: REST
/// would need 50 requests (and, at the default rate limit and 300 ms a round trip, about as
/// many seconds as a Bulk job's fixed cost) where the job needs about four.
pub const BULK_MIN_RECORDS: u64 = 100_000;

/// The most records a Bulk window is planned to hold: a job of this size is a few result
/// pages, and the org's 10,000 jobs a day are never the limit.
pub const BULK_WINDOW_TARGET: u64 = 1_000_000;

/// Windows for `sync.api`: REST windows (`most` records at most); Bulk windows (up to
/// [`BULK_WINDOW_TARGET`], at least `concurrency` of them when there is enough data); or, in
/// `auto`, Bulk-sized windows where a stretch holds at least [`BULK_MIN_RECORDS`] and REST
/// windows for the rest. `bulk_ok`: the object's fields can all be fetched by Bulk.
pub fn cut_windows_for(
    segments: &[Segment],
    concurrency: usize,
    most: u64,
    api: crate::config::Api,
    bulk_ok: bool,
) -> Vec<Window> {
    use crate::config::Api;
    let total: u64 = segments.iter().map(|s| s.records).sum();
    match api {
        Api::Bulk if bulk_ok => {
            let n = total
                .div_ceil(BULK_WINDOW_TARGET)
                .max((concurrency as u64).min(total.div_ceil(PAGE)))
                .max(1);
            cut_even(segments, n)
        }
        Api::Auto if bulk_ok && total >= BULK_MIN_RECORDS => {
            let n = total
                .div_ceil(BULK_WINDOW_TARGET)
                .max((concurrency as u64).min(total / BULK_MIN_RECORDS))
                .max(1);
            cut_even(segments, n)
                .into_iter()
                .flat_map(|w| {
                    if w.records >= BULK_MIN_RECORDS || w.records == 0 {
                        vec![w]
                    } else {
                        // too small for a Bulk job: REST windows
                        cut_windows(&clip(segments, w.start, w.end), 1, most)
                    }
                })
                .collect()
        }
        _ => cut_windows(segments, concurrency, most),
    }
}

/// The part of `segments` inside `[start, end)`: clipped, a clipped segment keeping its whole
/// count (an upper bound: partly committed days are rare).
pub fn clip(segments: &[Segment], start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<Segment> {
    segments
        .iter()
        .filter(|s| s.start < end && s.end > start)
        .map(|s| Segment {
            start: s.start.max(start),
            end: s.end.min(end),
            records: s.records,
        })
        .collect()
}

/// Per-day segments over `[start, end)` from day counts (days without a count hold none).
pub fn day_segments(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    counts: &std::collections::BTreeMap<chrono::NaiveDate, u64>,
) -> Vec<Segment> {
    split_days(start, end)
        .into_iter()
        .map(|(a, b)| Segment {
            start: a,
            end: b,
            records: counts.get(&a.date_naive()).copied().unwrap_or(0),
        })
        .collect()
}

/// The chunks of kind `kind` that cover `[start, end)`, one or more per UTC day, skipping
/// whatever committed chunks (of any kind) already cover. (Runs plan query windows now, see
/// `crate::plan::counts::windows_for`; the day-by-day plan is kept for the coverage property tests.)
#[cfg(test)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranges::*;
    use crate::timefmt::day_start;
    use chrono::Duration;

    #[test]
    fn bulk_windows_are_even_and_leave_no_small_remainder() {
        use crate::config::Api;
        let start = day_start("2024-01-01".parse().unwrap());
        // two years of 1,370 records a day: 1,000,100 records
        let segs: Vec<Segment> = (0..730)
            .map(|d| Segment {
                start: start + Duration::days(d),
                end: start + Duration::days(d + 1),
                records: 1_370,
            })
            .collect();
        for api in [Api::Auto, Api::Bulk] {
            let w = cut_windows_for(&segs, 4, WINDOW_TARGET, api, true);
            assert_eq!(w.len(), 4, "{api:?}: {w:?}");
            assert!(w.iter().all(|w| w.records >= 240_000), "{w:?}");
            assert_eq!(w.iter().map(|w| w.records).sum::<u64>(), 1_000_100);
        }
        // REST, or an object Bulk cannot serve: REST-sized windows
        assert_eq!(
            cut_windows_for(&segs, 4, WINDOW_TARGET, Api::Rest, true).len(),
            21
        );
        assert_eq!(
            cut_windows_for(&segs, 4, WINDOW_TARGET, Api::Auto, false).len(),
            21
        );
        // under the threshold, auto stays on REST windows
        let small: Vec<Segment> = segs.iter().map(|s| Segment { records: 10, ..*s }).collect();
        let w = cut_windows_for(&small, 4, WINDOW_TARGET, Api::Auto, true);
        assert!(w.iter().all(|w| w.records < BULK_MIN_RECORDS));
    }

    proptest::proptest! {
        /// Bulk windows tile the range, keep every record, and are at most the asked number
        /// (no empty window of their own when records exist).
        #[test]
        fn cut_even_tiles_the_range(counts in proptest::collection::vec(0u64..5_000, 1..400), n in 1u64..12) {
            let start = day_start("2024-01-01".parse().unwrap());
            let segs: Vec<Segment> = counts.iter().enumerate().map(|(d, &r)| Segment {
                start: start + Duration::days(d as i64),
                end: start + Duration::days(d as i64 + 1),
                records: r,
            }).collect();
            let w = cut_even(&segs, n);
            proptest::prop_assert_eq!(w[0].start, segs[0].start);
            proptest::prop_assert_eq!(w[w.len() - 1].end, segs[segs.len() - 1].end);
            for p in w.windows(2) {
                proptest::prop_assert_eq!(p[0].end, p[1].start);
            }
            proptest::prop_assert_eq!(w.iter().map(|w| w.records).sum::<u64>(), counts.iter().sum::<u64>());
            proptest::prop_assert!(w.len() as u64 <= n, "{} windows for n = {}", w.len(), n);
            if counts.iter().sum::<u64>() > 0 {
                proptest::prop_assert!(w.iter().filter(|w| w.records == 0).count() == 0 || w.len() == 1);
            }
        }
    }
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

    fn seg(a: &str, b: &str, n: u64) -> Segment {
        Segment {
            start: t(a),
            end: t(b),
            records: n,
        }
    }

    #[test]
    fn windows_follow_records_not_days() {
        // two years, 25 records: one window
        let mut counts = std::collections::BTreeMap::new();
        for d in [3, 90, 400, 700] {
            counts.insert((t("2024-01-01") + Duration::days(d)).date_naive(), 6);
        }
        let segs = day_segments(t("2024-01-01"), t("2026-01-01"), &counts);
        let w = cut_windows(&segs, 4, WINDOW_TARGET);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(
            (w[0].start, w[0].end, w[0].records),
            (t("2024-01-01"), t("2026-01-01"), 24)
        );
        // an empty year: one window of 0 records
        let w = cut_windows(
            &day_segments(t("2024-01-01"), t("2025-01-01"), &Default::default()),
            4,
            WINDOW_TARGET,
        );
        assert_eq!(w, vec![seg("2024-01-01", "2025-01-01", 0)]);
        // dense days: at least `concurrency` windows, none above the target unless one day is
        let segs: Vec<Segment> = (0..100)
            .map(|d| {
                let a = t("2025-01-01") + Duration::days(d);
                Segment {
                    start: a,
                    end: a + Duration::days(1),
                    records: if d == 50 { 70_000 } else { 1_000 },
                }
            })
            .collect();
        let w = cut_windows(&segs, 4, WINDOW_TARGET);
        assert!(w.len() >= 4);
        assert!(w
            .iter()
            .all(|w| w.records <= WINDOW_TARGET || w.end - w.start == Duration::days(1)));
        assert!(w.iter().any(|w| w.records == 70_000));
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
        fn windows_cover_the_stretch_exactly_and_keep_every_record(
            counts in proptest::collection::vec(0u64..30_000, 1..200), conc in 1usize..10
        ) {
            let base = t("2024-06-01");
            let segs: Vec<Segment> = counts.iter().enumerate().map(|(i, n)| Segment {
                start: base + Duration::days(i as i64),
                end: base + Duration::days(i as i64 + 1),
                records: *n,
            }).collect();
            let w = cut_windows(&segs, conc, WINDOW_TARGET);
            prop_assert_eq!(w.first().unwrap().start, segs.first().unwrap().start);
            prop_assert_eq!(w.last().unwrap().end, segs.last().unwrap().end);
            for p in w.windows(2) {
                prop_assert_eq!(p[0].end, p[1].start);
            }
            prop_assert_eq!(w.iter().map(|w| w.records).sum::<u64>(), counts.iter().sum::<u64>());
            let biggest = counts.iter().copied().max().unwrap_or(0);
            for x in &w {
                prop_assert!(x.records <= WINDOW_TARGET.max(biggest));
            }
            // requests: pages of every window, at most one partial page per window
            let pages: u64 = w.iter().map(|x| x.records.div_ceil(PAGE).max(1)).sum();
            let total: u64 = counts.iter().sum();
            prop_assert!(pages <= total.div_ceil(PAGE) + w.len() as u64);
        }

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
            prop_assert!(subtract(s, e, &all).is_empty());
            // planned chunks do not overlap each other
            let mut p: Vec<_> = plan.iter().map(|c| (c.start, c.end)).collect();
            p.sort();
            for w in p.windows(2) {
                prop_assert!(w[0].1 <= w[1].0);
            }
        }
    }
}
