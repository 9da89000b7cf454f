//! Historical mode: a date range, once — a thin planner over the shared runner.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::commit::days::day_chunks;
use crate::context::{Budget, Context, SyncError};
use crate::plan::counts;
use crate::plan::windows as plan;
use crate::run::prepare::{earliest_cursor, PreparedObject};
use crate::run::runner::execute;
use crate::run::runner::window_jobs;
use crate::run::{ObjectSummary, RunSummary};
use crate::sink::layout::{ChunkId, ChunkKind};
use crate::sink::manifest;
use crate::timefmt::day_start;

/// One object's part of a historical sync.
pub struct HistoricalPlan {
    pub object: PreparedObject,
    /// Query windows still to fetch, with the records counted in each.
    pub windows: Vec<(ChunkId, u64)>,
    /// The query budget ran out while counting: the object waits for the next run.
    pub budget_spent: bool,
    /// Where the fetched range ends (cut at now − sync.lag_s), when there is one.
    pub range_end: Option<DateTime<Utc>>,
    /// Said in the summary when the configured end lies past the cut.
    pub note: Option<String>,
    /// A start date that has not happened yet.
    pub warning: Option<String>,
}

/// The end of a historical range, and a note when it had to be cut at now − lag: no chunk
/// may cover time that has not happened yet (the next run with the same end pulls the rest).
pub fn cut_note(
    wanted: Option<DateTime<Utc>>,
    cut: DateTime<Utc>,
    lag_s: u64,
    date_cursor: bool,
) -> Option<String> {
    let wanted = wanted?;
    (wanted > cut).then(|| {
        format!(
            "the range ends at {} (in the future): cut at {} ({}); a later run with the same end pulls the rest",
            crate::timefmt::rfc3339(wanted),
            crate::timefmt::rfc3339(cut),
            if date_cursor {
                "a date cursor's days are fetched once they have passed".to_string()
            } else {
                format!("now − sync.lag_s = {lag_s} s")
            }
        )
    })
}

/// The warning for a `sync.start_date` that has not happened yet.
pub fn future_start_warning(start: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "sync.start_date {} is in the future: a historical sync has nothing to fetch until then",
        crate::timefmt::rfc3339(start)
    )
}

/// The chunks a historical sync of every configured object still needs (the objects are
/// counted at once, up to `sync.concurrency`: their round trips overlap).
pub async fn plan_historical(
    ctx: &Context,
    objects: &[PreparedObject],
    budgets: &HashMap<String, Arc<Budget>>,
) -> Result<Vec<HistoricalPlan>, SyncError> {
    use futures::{StreamExt, TryStreamExt};
    let now = crate::modes::incremental::now();
    futures::stream::iter(objects.iter().map(|o| plan_object(ctx, o, budgets, now)))
        .buffered(ctx.config.sync.concurrency.max(1))
        .try_collect()
        .await
}

/// One object's part of [`plan_historical`].
async fn plan_object(
    ctx: &Context,
    o: &PreparedObject,
    budgets: &HashMap<String, Arc<Budget>>,
    now: DateTime<Utc>,
) -> Result<HistoricalPlan, SyncError> {
    let date = o.schema.cursor_is_date;
    let cut = crate::ranges::cut(now, ctx.config.sync.lag_s, date);
    let end = ctx.config.sync.end.unwrap_or(now);
    let budget = budgets
        .get(&o.schema.object)
        .cloned()
        .unwrap_or_else(|| Arc::new(Budget::new(ctx.config.sync.query_limit)));
    let start = match ctx.config.sync.start {
        Some(s) => Some(s),
        None => earliest_cursor(ctx, &o.schema, &budget)
            .await?
            .map(|t| day_start(t.date_naive())),
    };
    let committed = manifest::list_chunks(ctx.store.as_ref(), &o.schema.object).await?;
    let range = start.and_then(|s| crate::ranges::fetch_range(s, end, cut, date));
    // what no committed chunk (of any kind) covers, counted, cut into query windows
    let covered: Vec<_> = committed.iter().map(|c| (c.start, c.end)).collect();
    let stretches = match range {
        Some((s, e)) => crate::ranges::subtract(s, e, &covered),
        None => vec![],
    };
    let windows = counts::windows_for(ctx, &o.schema, &stretches, &budget).await?;
    let budget_spent = windows.is_none();
    let windows: Vec<(ChunkId, u64)> = windows
        .unwrap_or_default()
        .into_iter()
        .map(|w| {
            (
                ChunkId::new(ChunkKind::Historical, w.start, w.end),
                w.records,
            )
        })
        .collect();
    tracing::info!(object = %o.schema.object, windows = windows.len(), records = windows.iter().map(|w| w.1).filter(|r| *r != plan::UNCOUNTED).sum::<u64>(), already_committed = committed.len(), "planned historical sync");
    Ok(HistoricalPlan {
        object: o.clone(),
        windows,
        budget_spent,
        range_end: range.map(|(_, e)| e),
        note: cut_note(ctx.config.sync.end, cut, ctx.config.sync.lag_s, date),
        warning: ctx
            .config
            .sync
            .start
            .filter(|s| *s >= cut)
            .map(future_start_warning),
    })
}

/// Runs a historical sync of every configured object.
pub async fn run_historical(ctx: Arc<Context>) -> Result<RunSummary, SyncError> {
    let started = Instant::now();
    let (objects, failed) = crate::run::prepare::prepare_each(&ctx, true, true).await?;
    let budgets: HashMap<String, Arc<Budget>> = objects
        .iter()
        .map(|o| {
            (
                o.schema.object.clone(),
                Arc::new(Budget::new(ctx.config.sync.query_limit)),
            )
        })
        .collect();
    let planned = plan_historical(&ctx, &objects, &budgets).await?;
    let mut jobs = Vec::new();
    let mut summary = RunSummary {
        config_error: false,
        command: "sync".into(),
        mode: "historical".into(),
        destination: ctx.config.destination.url.clone(),
        ..Default::default()
    };
    for HistoricalPlan {
        object: o,
        windows,
        budget_spent,
        range_end,
        note,
        warning,
    } in planned
    {
        if let Some(n) = &note {
            tracing::info!(object = %o.schema.object, "{n}");
        }
        let days: u64 = windows
            .iter()
            .map(|(w, _)| day_chunks(w).len() as u64)
            .sum();
        summary.objects.push(ObjectSummary {
            object: o.schema.object.clone(),
            chunks_planned: days,
            windows_planned: windows.len() as u64,
            chunks_pending: if budget_spent { 1 } else { 0 },
            warnings: o.warnings.iter().cloned().chain(warning).collect(),
            null_cursor_records: o.null_cursor,
            notes: note.into_iter().collect(),
            range_end: range_end.map(crate::timefmt::rfc3339),
            ..Default::default()
        });
        jobs.extend(window_jobs(&o.schema, windows, &ctx.config, false));
    }
    execute(ctx.clone(), jobs, &budgets, &mut summary).await;
    crate::run::current::refresh_all(&ctx, &objects, &mut summary).await;
    crate::run::prepare::add_failed(&mut summary, failed);
    Ok(summary.finish(&ctx, started))
}
