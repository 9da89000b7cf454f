//! What a planned run will cost in requests, from its planned windows (the one estimate `check`
//! and `plan` both print).

use crate::schema::ObjectSchema;
use crate::sink::layout::ChunkId;

/// What a run will cost in query requests.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct Estimate {
    /// Query windows (one query each).
    pub windows: u64,
    /// Day chunks.
    pub chunks: u64,
    pub records: u64,
    /// Counting, then one request per page of 2,000 records per window.
    pub requests: u64,
    pub query_limit: u32,
    /// Runs needed with the per-object query budget.
    pub runs: u64,
}

/// Estimates the requests of planned windows: one aggregate count per 2,000 days, then each
/// window's pages (a window counted empty needs none).
pub fn estimate_windows(
    windows: &[(crate::sink::layout::ChunkId, u64)],
    query_limit: u32,
    bulk: &dyn Fn(u64) -> bool,
) -> Estimate {
    let days = windows
        .iter()
        .map(|(w, _)| crate::commit::days::day_chunks(w).len() as u64)
        .sum::<u64>();
    let counted = |r: u64| {
        if r == crate::plan::windows::UNCOUNTED {
            0
        } else {
            r
        }
    };
    let records = windows.iter().map(|w| counted(w.1)).sum();
    // an uncounted window (a day or less) is taken as one page
    let pages: u64 = windows
        .iter()
        .map(|(_, r)| match *r {
            r if bulk(r) => {
                BULK_JOB_REQUESTS + counted(r).div_ceil(crate::fetch::bulk::RESULTS_PAGE).max(1)
            }
            crate::plan::windows::UNCOUNTED => 1,
            r => r.div_ceil(crate::plan::windows::PAGE),
        })
        .sum();
    let uses_bulk = windows.iter().any(|(_, r)| bulk(*r));
    let requests = days.div_ceil(2000) + pages + u64::from(uses_bulk);
    Estimate {
        windows: windows.len() as u64,
        chunks: days,
        records,
        requests,
        query_limit,
        runs: requests.div_ceil(query_limit.max(1) as u64),
    }
}

/// A Bulk job's requests besides its result pages: the create and about three polls.
const BULK_JOB_REQUESTS: u64 = 4;

/// The estimate of an object's planned windows under the run's settings (REST or Bulk per
/// window as [`crate::plan::api::use_bulk`] decides it).
pub fn for_object(
    windows: &[(ChunkId, u64)],
    sync: &crate::config::SyncConfig,
    object: &ObjectSchema,
) -> Estimate {
    estimate_windows(windows, sync.query_limit, &|r| {
        crate::plan::api::use_bulk(sync.api, crate::plan::windows::counted(r), object)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Api;
    use crate::plan::windows::{cut_windows_for, Segment};
    use crate::sink::layout::ChunkKind;
    use crate::timefmt::day_start;
    use chrono::Duration;

    /// Windows planned over two years holding `per_day` records a day.
    fn planned(per_day: u64, api: Api) -> Vec<(ChunkId, u64)> {
        let start = day_start("2024-01-01".parse().unwrap());
        let segs: Vec<Segment> = (0..730)
            .map(|d| Segment {
                start: start + Duration::days(d),
                end: start + Duration::days(d + 1),
                records: per_day,
            })
            .collect();
        cut_windows_for(&segs, 4, 50_000, api, true)
            .into_iter()
            .map(|w| {
                (
                    ChunkId::new(ChunkKind::Historical, w.start, w.end),
                    w.records,
                )
            })
            .collect()
    }

    #[test]
    fn estimates_grow_with_records_not_days() {
        let rest = |_: u64| false;
        // about 1,000,000 records over two years: 1 count, then each window's pages (500 in
        // all, and at most one partial page per window)
        let ws = planned(1370, Api::Rest);
        let e = estimate_windows(&ws, 50, &rest);
        assert_eq!((e.records, e.chunks), (1_000_100, 730));
        assert_eq!(e.windows, 21, "{e:?}");
        let pages: u64 = ws.iter().map(|w| w.1.div_ceil(2000)).sum();
        assert!(pages <= 1_000_100 / 2000 + 21);
        assert_eq!(e.requests, 1 + pages, "{e:?}");
        assert_eq!(e.runs, e.requests.div_ceil(50));
        // a handful of records over two years: a count and a page
        let few = estimate_windows(&planned(0, Api::Rest), 50, &rest);
        assert_eq!((few.records, few.requests), (0, 1), "{few:?}");
        // the same million by Bulk: a job (create + ~3 polls) per window, its result pages of
        // 100,000 records, one /limits read
        let ws = planned(1370, Api::Bulk);
        let b = estimate_windows(&ws, 50, &|_| true);
        let pages: u64 = ws.iter().map(|w| w.1.div_ceil(100_000).max(1)).sum();
        assert_eq!(b.requests, 1 + 4 * ws.len() as u64 + pages + 1, "{b:?}");
        assert!(b.requests <= 1_000_000 / 25_000, "{b:?}");
    }
}
