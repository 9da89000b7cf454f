//! Incremental mode: a forward-only cursor derived from committed manifests only.
//!
//! The first run of an object commits a start-point marker (an empty window `[P, P)` with
//! `P = now − lag`) and syncs nothing before it. Every later run pulls `[position, now − lag)`
//! in per-day chunks through `queryAll`. The position is the end of the contiguous committed
//! coverage (by chunks of any kind: what a backfill covered is not fetched again) that starts
//! at `P`: a window whose chunks are not all committed stops it at the
//! first missing chunk, so a half-committed window is redone — only its missing chunks, since
//! committed ones are never planned again — and no record version is written twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::commit::days::day_chunks;
use crate::context::{Budget, Context, SyncError};
use crate::plan::counts;
use crate::run::runner::execute;
use crate::run::runner::window_jobs;
use crate::run::{ObjectSummary, RunSummary};
use crate::sink::layout::{ChunkId, ChunkKind};
use crate::sink::manifest::{self, Manifest};
use crate::timefmt::rfc3339;

/// "Now", in milliseconds. `FORCELAKE_NOW` (RFC 3339) replaces the clock, for replaying a
/// schedule or testing.
pub fn now() -> DateTime<Utc> {
    let t = std::env::var("FORCELAKE_NOW")
        .ok()
        .and_then(|v| DateTime::parse_from_rfc3339(v.trim()).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(Utc::now);
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// The incremental start point `P` and the position, from an object's committed chunks.
pub fn incremental_state(chunks: &[ChunkId]) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let start = chunks
        .iter()
        .filter(|c| c.kind == ChunkKind::Incremental && c.is_marker())
        .map(|c| c.start)
        .min()?;
    // Chunks of every kind count: an incremental run never fetches again what a backfill or
    // a historical sync covers (superseded chunks lie inside their backfill's, so the union
    // is the same with or without them).
    let mut windows: Vec<(DateTime<Utc>, DateTime<Utc>)> = chunks
        .iter()
        .filter(|c| !c.is_marker() && c.end > start)
        .map(|c| (c.start, c.end))
        .collect();
    windows.sort();
    let mut pos = start;
    for (a, b) in windows {
        if a > pos {
            break;
        }
        if b > pos {
            pos = b;
        }
    }
    Some((start, pos))
}

fn marker_manifest(
    object: &crate::schema::ObjectSchema,
    at: DateTime<Utc>,
    endpoint: &str,
    org_id: Option<String>,
) -> Manifest {
    let id = ChunkId::new(ChunkKind::Incremental, at, at);
    let now = rfc3339(Utc::now());
    Manifest {
        format_version: manifest::FORMAT_VERSION,
        object: object.object.clone(),
        day: at.format("%Y-%m-%d").to_string(),
        chunk_id: id.to_string(),
        kind: ChunkKind::Incremental,
        cursor_field: object.cursor_field.clone(),
        window_start: rfc3339(at),
        window_end: rfc3339(at),
        files: vec![],
        rows: 0,
        schema_hash: object.hash.clone(),
        api_requests: 0,
        started_at: now.clone(),
        committed_at: now,
        tool_version: crate::VERSION.to_string(),
        supersedes: vec![],
        attempt: String::new(),
        endpoint: endpoint.to_string(),
        soql: String::new(),
        total_size: 0,
        org_id,
    }
}

/// The windows `[position, now − lag)` still to fetch, minus what committed chunks of any kind
/// already cover (a half-committed window is redone only where it is missing).
fn stretches(
    committed: &[ChunkId],
    pos: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let own: Vec<_> = committed
        .iter()
        .filter(|c| !c.is_marker())
        .map(|c| (c.start, c.end))
        .collect();
    if pos < end {
        crate::ranges::subtract(pos, end, &own)
    } else {
        vec![]
    }
}

/// The query windows the next incremental run would fetch for objects that have a start point
/// (objects without one are listed with none: their first run records it), with the records
/// counted in each.
pub async fn plan_incremental(
    ctx: &Context,
    objects: &[crate::run::prepare::PreparedObject],
) -> Result<Vec<(String, Vec<(ChunkId, u64)>)>, SyncError> {
    let now = now();
    let mut out = Vec::new();
    for o in objects {
        let end = crate::ranges::cut(now, ctx.config.sync.lag_s, o.schema.cursor_is_date);
        let committed = manifest::list_chunks(ctx.store.as_ref(), &o.schema.object).await?;
        let windows = match incremental_state(&committed) {
            Some((_, pos)) => {
                let budget = Budget::new(u32::MAX);
                counts::windows_for(ctx, &o.schema, &stretches(&committed, pos, end), &budget)
                    .await?
                    .unwrap_or_default()
                    .into_iter()
                    .map(|w| {
                        (
                            ChunkId::new(ChunkKind::Incremental, w.start, w.end),
                            w.records,
                        )
                    })
                    .collect()
            }
            None => vec![],
        };
        out.push((o.schema.object.clone(), windows));
    }
    Ok(out)
}

/// The deletes chunks the next incremental run would capture (getDeleted), per object with a
/// start point that is replicateable, when `sync.capture_deletes`.
pub async fn plan_deletes(
    ctx: &Context,
    objects: &[crate::run::prepare::PreparedObject],
) -> Result<Vec<(Arc<crate::schema::ObjectSchema>, Vec<ChunkId>)>, SyncError> {
    let mut out = Vec::new();
    if !ctx.config.sync.capture_deletes {
        return Ok(out);
    }
    let now = now();
    for o in objects.iter().filter(|o| o.replicateable) {
        // one listing for both lanes (a reconciliation's chunks are in neither)
        let (deletes, data): (Vec<ChunkId>, Vec<ChunkId>) =
            manifest::list_all_chunks(ctx.store.as_ref(), &o.schema.object)
                .await?
                .into_iter()
                .filter(|c| c.kind != ChunkKind::Reconcile)
                .partition(ChunkId::is_deletes);
        let Some((start, _)) = incremental_state(&data) else {
            continue;
        };
        let end = crate::ranges::cut(now, ctx.config.sync.lag_s, o.schema.cursor_is_date);
        out.push((
            o.schema.clone(),
            crate::fetch::deleted::planned(&deletes, start, end),
        ));
    }
    Ok(out)
}

/// Runs one incremental sync of every configured object.
pub async fn run_incremental(ctx: Arc<Context>) -> Result<RunSummary, SyncError> {
    let started = Instant::now();
    let (objects, failed) = crate::run::prepare::prepare_each(&ctx, true, true).await?;
    let now = now();
    let endpoint = if ctx.config.sync.include_deleted {
        "queryAll"
    } else {
        "query"
    };
    let mut budgets = HashMap::new();
    let mut jobs = Vec::new();
    // each object's start point and window end: its deletes are captured up to the same end
    let mut captures = HashMap::new();
    let mut summary = RunSummary {
        config_error: false,
        command: "sync".into(),
        mode: "incremental".into(),
        destination: ctx.config.destination.url.clone(),
        ..Default::default()
    };
    for o in &objects {
        // windows end at now − lag (for a date cursor: at the last midnight before it)
        let end = crate::ranges::cut(now, ctx.config.sync.lag_s, o.schema.cursor_is_date);
        let name = o.schema.object.clone();
        let committed = manifest::list_chunks(ctx.store.as_ref(), &name).await?;
        let mut s = ObjectSummary {
            object: name.clone(),
            warnings: o.warnings.clone(),
            null_cursor_records: o.null_cursor,
            window_end: Some(rfc3339(end)),
            ..Default::default()
        };
        match incremental_state(&committed) {
            None => {
                let m = marker_manifest(&o.schema, end, endpoint, ctx.client.org_id());
                manifest::commit(ctx.store.as_ref(), &m).await?;
                tracing::info!(object = %name, start_point = %rfc3339(end), "incremental start point recorded; nothing before it is synced incrementally");
                s.incremental_start = Some(rfc3339(end));
                s.position_before = Some(rfc3339(end));
                s.warnings.push(format!(
                    "incremental start point recorded at {}: records modified before it come from a historical sync with end_date = \"{}\"",
                    rfc3339(end),
                    rfc3339(end)
                ));
            }
            Some((start, pos)) => {
                let budget = Arc::new(Budget::new(ctx.config.sync.query_limit));
                let windows = counts::windows_for(
                    ctx.as_ref(),
                    &o.schema,
                    &stretches(&committed, pos, end),
                    &budget,
                )
                .await?;
                if windows.is_none() {
                    s.chunks_pending = 1; // the budget ran out while counting
                }
                let windows: Vec<(ChunkId, u64)> = windows
                    .unwrap_or_default()
                    .into_iter()
                    .map(|w| {
                        (
                            ChunkId::new(ChunkKind::Incremental, w.start, w.end),
                            w.records,
                        )
                    })
                    .collect();
                tracing::info!(object = %name, position = %rfc3339(pos), window_end = %rfc3339(end), windows = windows.len(), "planned incremental windows");
                s.incremental_start = Some(rfc3339(start));
                s.position_before = Some(rfc3339(pos));
                captures.insert(name.clone(), (start, end));
                s.chunks_planned = windows
                    .iter()
                    .map(|(w, _)| day_chunks(w).len() as u64)
                    .sum();
                s.windows_planned = windows.len() as u64;
                jobs.extend(window_jobs(&o.schema, windows, &ctx.config, false));
                budgets.insert(name.clone(), budget);
            }
        }
        summary.objects.push(s);
        budgets
            .entry(name)
            .or_insert_with(|| Arc::new(Budget::new(ctx.config.sync.query_limit)));
    }
    execute(ctx.clone(), jobs, &budgets, &mut summary).await;
    let reconcile = if ctx.config.sync.capture_deletes {
        capture_deletes(&ctx, &objects, &captures, &budgets, &mut summary).await
    } else {
        HashMap::new()
    };
    for s in summary.objects.iter_mut() {
        let committed = manifest::list_chunks(ctx.store.as_ref(), &s.object).await?;
        if let Some((_, pos)) = incremental_state(&committed) {
            s.position_after = Some(rfc3339(pos));
        }
    }
    crate::run::current::refresh_and_reconcile(&ctx, &objects, &reconcile, now, &mut summary).await;
    crate::run::prepare::add_failed(&mut summary, failed);
    Ok(summary.finish(&ctx, started))
}

/// Asks getDeleted which records each object lost between its start point (or the deletes
/// lane's position) and this run's window end, and commits them as tombstones. A failure is
/// the object's (a failed chunk); the other objects go on. Returns the objects getDeleted
/// could not answer for (not replicateable, or a range it could not answer), with why: the
/// run reconciles them.
async fn capture_deletes(
    ctx: &Context,
    objects: &[crate::run::prepare::PreparedObject],
    captures: &HashMap<String, (DateTime<Utc>, DateTime<Utc>)>,
    budgets: &HashMap<String, Arc<Budget>>,
    summary: &mut RunSummary,
) -> HashMap<String, String> {
    let mut reconcile = HashMap::new();
    let mut todo = Vec::new();
    for o in objects {
        let name = &o.schema.object;
        let (Some(&(start, end)), Some(budget), Some(s)) = (
            captures.get(name),
            budgets.get(name),
            summary.objects.iter_mut().find(|s| &s.object == name),
        ) else {
            continue;
        };
        if s.status == "paused" {
            continue; // the daily limit, the API budget or the off-peak window stopped the run
        }
        if !o.replicateable {
            s.warnings.push(format!(
                "{name} is not replicateable (describe): getDeleted cannot list its deletes, so each run reconciles it instead (lists its live Ids; soft deletes still arrive through queryAll)"
            ));
            reconcile.insert(name.clone(), "not replicateable".to_string());
            continue;
        }
        todo.push((name.clone(), o.schema.clone(), budget.clone(), start, end));
    }
    // the objects' captures at once (each is a request or a few, then its commits)
    use futures::StreamExt;
    let done: Vec<_> = futures::stream::iter(todo.into_iter().map(
        |(name, schema, budget, start, end)| async move {
            let r = crate::fetch::deleted::capture(ctx, &budget, &schema, start, end).await;
            (name, r)
        },
    ))
    .buffer_unordered(ctx.config.sync.concurrency.max(1))
    .collect()
    .await;
    for (name, result) in done {
        let Some(s) = summary.objects.iter_mut().find(|s| s.object == name) else {
            continue;
        };
        match result {
            Ok(c) => {
                s.requests += c.requests;
                for (a, b, why) in &c.unanswered {
                    s.warnings.push(format!(
                        "deletes between {} and {} could not be captured ({why}): this run reconciles the object instead",
                        rfc3339(*a),
                        rfc3339(*b)
                    ));
                    reconcile.insert(
                        name.clone(),
                        format!(
                            "getDeleted could not answer {}..{}",
                            rfc3339(*a),
                            rfc3339(*b)
                        ),
                    );
                }
                if let Some((a, b)) = c.range {
                    tracing::info!(object = %name, from = %rfc3339(a), to = %rfc3339(b), tombstones = c.tombstones, "deletes captured");
                    s.deletes = Some(crate::run::summary::DeletesSummary {
                        from: rfc3339(a),
                        to: rfc3339(b),
                        tombstones: c.tombstones,
                        chunks: c.chunks,
                        requests: c.requests,
                        unanswered: c.unanswered_lines(),
                    });
                }
            }
            Err(SyncError::Salesforce(crate::salesforce::SfError::DailyLimit { message })) => {
                // a clean stop, as for windows: the next run captures from the same position
                s.chunks_pending += 1;
                s.status = "paused".into();
                s.paused_reason = Some(crate::context::daily_limit_reason(&message));
                if summary.status != "failed" {
                    summary.status = "paused".into();
                }
            }
            Err(e) => {
                tracing::error!(object = %name, error = %e, "capturing deletes failed; the next run asks again");
                s.errors
                    .push(format!("capturing deletes (getDeleted): {e}"));
                s.chunks_failed += 1;
                s.status = "failed".into();
                summary.status = "failed".into();
            }
        }
    }
    reconcile
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::windows as plan;
    use crate::timefmt::DateOrTime;
    use chrono::Duration;
    use proptest::prelude::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateOrTime::parse(s).unwrap().as_start()
    }

    fn c(kind: ChunkKind, a: &str, b: &str) -> ChunkId {
        ChunkId::new(kind, t(a), t(b))
    }

    #[test]
    fn position_is_the_end_of_contiguous_coverage_from_the_start_point() {
        let marker = c(
            ChunkKind::Incremental,
            "2025-03-01T10:00:00Z",
            "2025-03-01T10:00:00Z",
        );
        assert_eq!(incremental_state(&[]), None);
        assert_eq!(
            incremental_state(&[marker.clone()]),
            Some((marker.start, marker.start))
        );
        let w1 = c(ChunkKind::Incremental, "2025-03-01T10:00:00Z", "2025-03-02");
        let w2 = c(ChunkKind::Incremental, "2025-03-02", "2025-03-02T08:00:00Z");
        let w3 = c(ChunkKind::Incremental, "2025-03-03", "2025-03-03T01:00:00Z"); // after a hole
        let hist = c(ChunkKind::Historical, "2025-02-01", "2025-02-02");
        let (_, pos) =
            incremental_state(&[marker.clone(), w1.clone(), w2.clone(), w3.clone(), hist]).unwrap();
        assert_eq!(pos, t("2025-03-02T08:00:00Z"));
        // what a backfill covers past the position is not fetched again
        let bf = c(ChunkKind::Backfill, "2025-03-02", "2025-03-03");
        let (_, pos) = incremental_state(&[marker.clone(), w1.clone(), bf.clone()]).unwrap();
        assert_eq!(pos, t("2025-03-03"));
        // a backfill after a hole does not move it
        let (_, pos) = incremental_state(&[marker.clone(), bf]).unwrap();
        assert_eq!(pos, marker.start);
        // a half-committed window: the first day's chunk missing stops the position at the start
        let (_, pos) = incremental_state(&[marker.clone(), w2.clone()]).unwrap();
        assert_eq!(pos, marker.start);
        // the rerun plans only the missing chunk, no overlap with committed ones
        let plan = plan::plan_range(
            ChunkKind::Incremental,
            pos,
            t("2025-03-02T09:00:00Z"),
            &[marker, w2.clone()],
        );
        assert_eq!(
            plan.iter().map(|c| (c.start, c.end)).collect::<Vec<_>>(),
            vec![
                (t("2025-03-01T10:00:00Z"), t("2025-03-02")),
                (t("2025-03-02T08:00:00Z"), t("2025-03-02T09:00:00Z"))
            ]
        );
    }

    proptest! {
        /// Whatever subset of a run's chunks got committed before a crash, the rerun's plan plus
        /// the committed chunks cover [start, end) exactly once.
        #[test]
        fn crash_at_any_chunk_then_rerun_covers_each_instant_once(mask in proptest::collection::vec(any::<bool>(), 1..12), hours in 1i64..300) {
            let start = t("2025-05-01T13:00:00Z");
            let end1 = start + Duration::hours(hours);
            let marker = ChunkId::new(ChunkKind::Incremental, start, start);
            let planned = plan::plan_range(ChunkKind::Incremental, start, end1, &[]);
            let mut committed = vec![marker];
            committed.extend(planned.iter().zip(mask.iter().cycle()).filter(|(_, k)| **k).map(|(c, _)| c.clone()));
            let (_, pos) = incremental_state(&committed).unwrap();
            let end2 = end1 + Duration::hours(3);
            let rerun = plan::plan_range(ChunkKind::Incremental, pos, end2, &committed);
            let mut all: Vec<_> = committed.iter().filter(|c| !c.is_marker()).chain(rerun.iter()).map(|c| (c.start, c.end)).collect();
            all.sort();
            for w in all.windows(2) {
                prop_assert!(w[0].1 <= w[1].0, "overlap {:?}", w);
            }
            prop_assert!(crate::ranges::subtract(start, end2, &all).is_empty());
            let mut after = committed.clone();
            after.extend(rerun);
            prop_assert_eq!(incremental_state(&after).unwrap().1, end2);
        }
    }
}
