//! How an object's records spread over its cursor range, learnt cheaply before fetching: one
//! aggregate query (`GROUP BY DAY_ONLY(cursor)`) per ≤ 2,000 days, or — where Salesforce
//! refuses the aggregate or it times out — `COUNT()` bisection down to stretches of at most
//! [`WINDOW_TARGET`](crate::plan::windows::WINDOW_TARGET) records or one day.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::context::{Budget, Context, SyncError};
use crate::plan::windows::{self as plan, Segment};
use crate::salesforce::{soql, SfError};
use crate::schema::ObjectSchema;
use crate::timefmt::day_start;

/// Days one aggregate query may span (its groups come back in one batch of at most 2,000).
const AGGREGATE_DAYS: i64 = 2_000;

/// Segments covering `[start, end)` with their record counts; `None` when the query budget ran
/// out while counting.
pub async fn segments(
    ctx: &Context,
    obj: &ObjectSchema,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    budget: &Budget,
) -> Result<Option<Vec<Segment>>, SyncError> {
    if start >= end {
        return Ok(Some(vec![]));
    }
    match by_day(ctx, obj, start, end, budget).await {
        Ok(Some(counts)) => Ok(Some(plan::day_segments(start, end, &counts))),
        Ok(None) => Ok(None),
        Err(SyncError::Salesforce(e)) if aggregate_refused(&e) => {
            tracing::info!(object = %obj.object, error = %e, "the per-day aggregate was refused; counting by COUNT() bisection");
            let mut out = Vec::new();
            if bisect(ctx, obj, start, end, budget, &mut out).await? {
                Ok(Some(out))
            } else {
                Ok(None)
            }
        }
        Err(e) => Err(e),
    }
}

/// Errors after which the aggregate is given up for COUNT() bisection.
fn aggregate_refused(e: &SfError) -> bool {
    matches!(e, SfError::Api { code, .. } if matches!(code.as_str(),
        "QUERY_TIMEOUT" | "MALFORMED_QUERY" | "INVALID_FIELD" | "OPERATION_TOO_LARGE" | "EXCEEDED_ID_LIMIT"))
}

async fn by_day(
    ctx: &Context,
    obj: &ObjectSchema,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    budget: &Budget,
) -> Result<Option<BTreeMap<NaiveDate, u64>>, SyncError> {
    let mut counts = BTreeMap::new();
    let mut a = start;
    while a < end {
        let b = (day_start(a.date_naive()) + Duration::days(AGGREGATE_DAYS)).min(end);
        if !budget.try_take() {
            return Ok(None);
        }
        let q = soql::day_counts_query(&obj.object, &obj.cursor_field, obj.cursor_is_date, a, b);
        let body = ctx
            .client
            .query_first(
                &q,
                ctx.config.sync.include_deleted,
                &format!("records per day of {}", obj.object),
            )
            .await?;
        parse_day_counts(&body, &mut counts).map_err(|message| {
            SyncError::Salesforce(SfError::Protocol {
                what: format!("records per day of {}", obj.object),
                message,
            })
        })?;
        a = b;
    }
    Ok(Some(counts))
}

/// Reads `AggregateResult` records: each has a day (`YYYY-MM-DD`) and a count, whatever their
/// keys (`expr0`, `expr1`, the date field's name).
pub fn parse_day_counts(body: &[u8], into: &mut BTreeMap<NaiveDate, u64>) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let records = v["records"]
        .as_array()
        .ok_or("no records array in the aggregate result")?;
    if v["done"] == false {
        return Err("the aggregate result has more than one batch".into());
    }
    for r in records {
        let Some(obj) = r.as_object() else { continue };
        let mut day = None;
        let mut n = None;
        for (k, val) in obj {
            if k == "attributes" {
                continue;
            }
            match val {
                serde_json::Value::String(s) => {
                    day = NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok()
                }
                serde_json::Value::Number(x) => n = x.as_u64(),
                _ => {}
            }
        }
        if let (Some(d), Some(n)) = (day, n) {
            *into.entry(d).or_default() += n;
        }
    }
    Ok(())
}

/// COUNT() of `[a, b)`; halves (at a midnight when the stretch spans days) until a stretch
/// holds at most a window's worth of records or is one day or less. False when the budget ran
/// out.
async fn bisect(
    ctx: &Context,
    obj: &ObjectSchema,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    budget: &Budget,
    out: &mut Vec<Segment>,
) -> Result<bool, SyncError> {
    let mut stack = vec![(start, end)];
    while let Some((a, b)) = stack.pop() {
        if !budget.try_take() {
            return Ok(false);
        }
        let n = ctx
            .client
            .count(
                &soql::count_query(
                    &obj.object,
                    &obj.cursor_field,
                    obj.cursor_is_date,
                    Some((a, b)),
                ),
                ctx.config.sync.include_deleted,
                &format!("count of {}", obj.object),
            )
            .await?;
        match split_point(a, b) {
            Some(mid) if n > ctx.config.sync.window_records => {
                stack.push((mid, b));
                stack.push((a, mid));
            }
            _ => out.push(Segment {
                start: a,
                end: b,
                records: n,
            }),
        }
    }
    Ok(true)
}

/// Where a stretch is halved: the midnight nearest its middle; `None` for a day or less.
pub fn split_point(a: DateTime<Utc>, b: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mid = a + (b - a) / 2;
    let m = day_start(mid.date_naive());
    let m = if m <= a { m + Duration::days(1) } else { m };
    (m > a && m < b).then_some(m)
}

/// The query windows over `stretches` (sorted, disjoint: the parts of a range still to
/// fetch): one count pass over their whole span, then [`plan::cut_windows`] per stretch (a
/// window never spans committed time). `None` when the budget ran out while counting.
pub async fn windows_for(
    ctx: &Context,
    obj: &ObjectSchema,
    stretches: &[(DateTime<Utc>, DateTime<Utc>)],
    budget: &Budget,
) -> Result<Option<Vec<plan::Window>>, SyncError> {
    let (Some(first), Some(last)) = (stretches.first(), stretches.last()) else {
        return Ok(Some(vec![]));
    };
    // A day or less (a nightly incremental run): one window, no count — the query itself
    // costs what the count would, and says what is there.
    if stretches.len() == 1 && first.1 - first.0 <= Duration::days(1) {
        return Ok(Some(vec![plan::Window {
            start: first.0,
            end: first.1,
            records: plan::UNCOUNTED,
        }]));
    }
    let Some(segs) = segments(ctx, obj, first.0, last.1, budget).await? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for (a, b) in stretches {
        let clipped = plan::clip(&segs, *a, *b);
        out.extend(plan::cut_windows_for(
            &clipped,
            ctx.config.sync.concurrency,
            ctx.config.sync.window_records,
            ctx.config.sync.api,
            obj.bulk_obstacle().is_none(),
        ));
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_results_are_read_whatever_their_keys() {
        let body = br#"{"totalSize":2,"done":true,"records":[
            {"attributes":{"type":"AggregateResult"},"expr0":"2025-03-01","expr1":12},
            {"attributes":{"type":"AggregateResult"},"CloseDate":"2025-03-04","expr0":3}]}"#;
        let mut m = BTreeMap::new();
        parse_day_counts(body, &mut m).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[&NaiveDate::from_ymd_opt(2025, 3, 1).unwrap()], 12);
        assert_eq!(m[&NaiveDate::from_ymd_opt(2025, 3, 4).unwrap()], 3);
    }

    #[test]
    fn bisection_halves_at_midnights() {
        let t = |s: &str| crate::timefmt::DateOrTime::parse(s).unwrap().as_start();
        assert_eq!(
            split_point(t("2025-01-01"), t("2025-01-11")),
            Some(t("2025-01-06"))
        );
        assert_eq!(
            split_point(t("2025-01-01T06:00:00Z"), t("2025-01-02T06:00:00Z")),
            Some(t("2025-01-02"))
        );
        assert_eq!(split_point(t("2025-01-01"), t("2025-01-02")), None);
    }
}
