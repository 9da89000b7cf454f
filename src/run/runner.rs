//! The shared runner: chunk jobs with `sync.concurrency` in flight, the query budget, the API
//! budget guard, the off-peak gate, failure records, QUERY_TIMEOUT halving and retries — used
//! by historical, incremental and backfill runs alike.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use object_store::PutPayload;
use tokio::task::JoinSet;

use crate::commit::job::{ChunkJob, ChunkOutcome};
use crate::context::{Budget, Context, SyncError};
use crate::fetch::rest::run_chunk;
use crate::run::RunSummary;
use crate::salesforce::SfError;
use crate::sink::layout::{failure_path, ChunkId};

/// Restricts when new chunks may start.
#[derive(Debug, Clone)]
pub struct Gate {
    pub window: crate::run::offpeak::OffPeak,
    /// Sleep until the next window instead of stopping.
    pub wait: bool,
}

/// Writes a chunk's failure record (`status` counts it as failed until the chunk commits).
async fn record_failure(ctx: &Context, object: &str, chunk: &ChunkId, error: &str, key: &str) {
    let body = serde_json::json!({"object": object, "chunk_id": chunk.to_string(), "error": error,
        key: crate::timefmt::rfc3339(Utc::now())});
    let _ = object_store::ObjectStoreExt::put(
        ctx.store.as_ref(),
        &failure_path(object, chunk),
        PutPayload::from(crate::sink::json_line(&body).unwrap_or_default()),
    )
    .await;
}

/// A `run-chunk` records that it started (`status` counts the chunk as failed until it ends:
/// a worker killed mid-chunk shows), and removes the record when it ends without an error.
pub async fn mark_started(ctx: &Context, object: &str, chunk: &ChunkId) {
    let why = "run-chunk started and has not finished: the worker was killed or is still running; rerun the task";
    record_failure(ctx, object, chunk, why, "started_at").await;
}

/// See [`mark_started`].
pub async fn mark_ended(ctx: &Context, object: &str, chunk: &ChunkId) {
    let _ = object_store::ObjectStoreExt::delete(ctx.store.as_ref(), &failure_path(object, chunk))
        .await;
}

/// Runs chunk jobs with `sync.concurrency` in flight; fills in the summary.
pub async fn execute(
    ctx: Arc<Context>,
    jobs: Vec<ChunkJob>,
    budgets: &HashMap<String, Arc<Budget>>,
    summary: &mut RunSummary,
) {
    execute_gated(ctx, jobs, budgets, summary, None).await
}

/// [`execute`], starting new chunks only while `gate`'s window is open.
pub async fn execute_gated(
    ctx: Arc<Context>,
    jobs: Vec<ChunkJob>,
    budgets: &HashMap<String, Arc<Budget>>,
    summary: &mut RunSummary,
    gate: Option<&Gate>,
) {
    let concurrency = ctx.config.sync.concurrency;
    let progress = crate::run::progress::Progress::new(jobs.len() as u64);
    // (object, day chunks of the window, outcome)
    let mut set: JoinSet<(String, u64, Result<ChunkOutcome, SyncError>)> = JoinSet::new();
    let mut stop_reason: Option<String> = None;
    let mut pending: HashMap<String, u64> = HashMap::new();
    let mut reasons: HashMap<String, String> = HashMap::new();

    for job in jobs {
        let object = job.object.object.clone();
        let days = crate::commit::days::day_chunks(&job.chunk).len() as u64;
        let budget = budgets
            .get(&object)
            .cloned()
            .unwrap_or_else(|| Arc::new(Budget::new(u32::MAX)));
        if stop_reason.is_none() {
            stop_reason = ctx.api_budget_stop();
        }
        if let (None, Some(g)) = (&stop_reason, gate) {
            stop_reason = wait_for_window(g, summary).await;
        }
        if stop_reason.is_some() || budget.exhausted() {
            if budget.exhausted() {
                reasons
                    .entry(object.clone())
                    .or_insert_with(|| ctx.query_limit_reason());
            }
            *pending.entry(object).or_default() += days;
            continue;
        }
        while set.len() >= concurrency {
            if let Some(Ok((o, d, r))) = set.join_next().await {
                record(summary, &progress, &o, d, r, &mut stop_reason);
            }
        }
        let ctx2 = ctx.clone();
        set.spawn(async move {
            let r = run_splitting(&ctx2, &budget, &job).await;
            let (object, chunk) = (&job.object.object, &job.chunk);
            match &r {
                Ok(ChunkOutcome::Committed { .. }) | Ok(ChunkOutcome::AlreadyCommitted { .. }) => {
                    mark_ended(&ctx2, object, chunk).await;
                }
                Err(e)
                    if !matches!(
                        e,
                        SyncError::Salesforce(SfError::DailyLimit { .. })
                            | SyncError::BulkAllowance { .. }
                    ) =>
                {
                    record_failure(&ctx2, object, chunk, &e.to_string(), "failed_at").await;
                }
                _ => {}
            }
            (job.object.object.clone(), days, r)
        });
    }
    while let Some(res) = set.join_next().await {
        match res {
            Ok((o, d, r)) => record(summary, &progress, &o, d, r, &mut stop_reason),
            Err(e) => tracing::error!(error = %e, "chunk task panicked"),
        }
    }
    progress.finish();
    for s in summary.objects.iter() {
        clear_failures(&ctx, &s.object).await;
    }
    finish_statuses(&ctx, summary, budgets, &pending, &reasons, stop_reason);
}

/// Adds a window's outcome to the summary; a daily limit, a spent Bulk allowance or a
/// configuration error sets the reason no new window starts (`stop`).
fn record(
    summary: &mut RunSummary,
    progress: &crate::run::progress::Progress,
    object: &str,
    days: u64,
    r: Result<ChunkOutcome, SyncError>,
    stop: &mut Option<String>,
) {
    let s = summary
        .objects
        .iter_mut()
        .find(|s| s.object == object)
        .expect("summary per object");
    match r {
        Ok(ChunkOutcome::Committed { rows, chunks, .. }) => {
            s.rows += rows;
            s.chunks_committed += chunks;
            s.chunks_already_committed += days.saturating_sub(chunks);
            progress.chunk_done(rows);
        }
        Ok(ChunkOutcome::AlreadyCommitted { .. }) => {
            s.chunks_already_committed += days;
            progress.chunk_done(0);
        }
        Ok(ChunkOutcome::BudgetSpent { rows, chunks, .. }) => {
            s.rows += rows;
            s.chunks_committed += chunks;
            s.chunks_pending += days.saturating_sub(chunks);
        }
        Err(SyncError::Salesforce(SfError::DailyLimit { message })) => {
            s.chunks_pending += days;
            *stop = Some(crate::context::daily_limit_reason(&message));
        }
        Err(e @ SyncError::BulkAllowance { .. }) => {
            s.chunks_pending += days;
            *stop = Some(e.to_string());
        }
        Err(e) => {
            tracing::error!(object, error = %e, "chunk failed");
            s.chunks_failed += 1;
            if s.errors.len() < 10 {
                s.errors.push(if e.is_retryable() {
                    format!("{e} (after its retries; the next run fetches the window again)")
                } else {
                    e.to_string()
                });
            }
            if e.exit_code() == 2 {
                summary.config_error = true;
            }
            if e.exit_code() == 2 && stop.is_none() {
                *stop = Some(format!(
                    "stopped after an authentication or configuration error: {e}"
                ));
            }
        }
    }
}

/// Whether a new window may start under the off-peak gate: `None` when the window is open
/// (after sleeping until it opens with `--wait`), or the reason it may not.
async fn wait_for_window(g: &Gate, summary: &mut RunSummary) -> Option<String> {
    loop {
        match g.window.state(Utc::now()) {
            crate::run::offpeak::WindowState::Open { closes_at } => {
                summary.window = Some(
                    serde_json::json!({"open": true, "closes_at": crate::timefmt::rfc3339(closes_at)}),
                );
                return None;
            }
            crate::run::offpeak::WindowState::Closed { opens_at } => {
                if !g.wait {
                    summary.window = Some(
                        serde_json::json!({"open": false, "next_opens_at": crate::timefmt::rfc3339(opens_at)}),
                    );
                    return Some(format!(
                        "the off-peak window is closed; it opens next at {}",
                        crate::timefmt::rfc3339(opens_at)
                    ));
                }
                let wait = (opens_at - Utc::now())
                    .to_std()
                    .unwrap_or_default()
                    .max(Duration::from_millis(200));
                tracing::info!(opens_at = %crate::timefmt::rfc3339(opens_at), "off-peak window closed; in-flight chunks finish, new ones wait for the next window");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Each object's status (and why it paused), then the run's.
fn finish_statuses(
    ctx: &Context,
    summary: &mut RunSummary,
    budgets: &HashMap<String, Arc<Budget>>,
    pending: &HashMap<String, u64>,
    reasons: &HashMap<String, String>,
    stop_reason: Option<String>,
) {
    for s in summary.objects.iter_mut() {
        s.chunks_pending += pending.get(&s.object).copied().unwrap_or(0);
        s.requests += budgets.get(&s.object).map(|b| b.used()).unwrap_or(0);
        if s.chunks_failed > 0 {
            s.status = "failed".into();
        } else if s.chunks_pending > 0 {
            s.status = "paused".into();
            s.paused_reason = reasons
                .get(&s.object)
                .cloned()
                .or_else(|| stop_reason.clone())
                .or_else(|| Some(ctx.query_limit_reason()));
        } else {
            s.status = "complete".into();
        }
    }
    summary.status = if summary.objects.iter().any(|o| o.status == "failed") {
        "failed"
    } else if summary.objects.iter().any(|o| o.status == "paused") {
        "paused"
    } else {
        "complete"
    }
    .into();
}

/// Jobs for planned windows (with their counted records); a backfill's windows replace the
/// planned days they cover.
pub fn window_jobs(
    object: &Arc<crate::schema::ObjectSchema>,
    windows: Vec<(ChunkId, u64)>,
    config: &crate::config::Config,
    backfill: bool,
) -> Vec<ChunkJob> {
    windows
        .into_iter()
        .map(|(w, records)| {
            let expected = crate::plan::windows::counted(records);
            ChunkJob {
                replaces: backfill.then_some((w.start, w.end)),
                expected,
                bulk: crate::plan::api::use_bulk(config.sync.api, expected, object),
                ..ChunkJob::new(object.clone(), w, config)
            }
        })
        .collect()
}

/// Removes the failure records of windows whose days are all committed now (a rerun's windows
/// need not match the failed one's).
async fn clear_failures(ctx: &Context, object: &str) {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let prefix = crate::sink::layout::failures_prefix(object);
    let Ok(listed) = ctx.store.list(Some(&prefix)).try_collect::<Vec<_>>().await else {
        return;
    };
    if listed.is_empty() {
        return;
    }
    let Ok(committed) = crate::sink::manifest::list_chunks(ctx.store.as_ref(), object).await else {
        return;
    };
    let covered: Vec<_> = committed.iter().map(|c| (c.start, c.end)).collect();
    for m in listed {
        let id = m
            .location
            .filename()
            .and_then(|f| f.strip_suffix(".json"))
            .and_then(ChunkId::parse);
        if let Some(id) = id {
            if crate::ranges::subtract(id.start, id.end, &covered).is_empty() {
                let _ = ctx.store.delete(&m.location).await;
            }
        }
    }
}

/// True for Salesforce's `QUERY_TIMEOUT`.
pub fn is_query_timeout(e: &SyncError) -> bool {
    matches!(e, SyncError::Salesforce(SfError::Api { code, .. }) if code == "QUERY_TIMEOUT")
}

/// Where a window that hit `QUERY_TIMEOUT` is halved: at the midnight nearest its middle when
/// it spans days (so its day chunks keep their ids), else at its middle while longer than an
/// hour — never within a day on a date cursor (a date cannot be cut).
pub fn halving_point(
    start: chrono::DateTime<Utc>,
    end: chrono::DateTime<Utc>,
    date_cursor: bool,
) -> Option<chrono::DateTime<Utc>> {
    if let Some(m) = crate::plan::counts::split_point(start, end) {
        return Some(m);
    }
    (!date_cursor && end - start > chrono::Duration::hours(1))
        .then(|| start + chrono::Duration::seconds((end - start).num_seconds() / 2))
}

/// A window whose query hits `QUERY_TIMEOUT` is split in halves (see [`halving_point`]) and
/// each half is run — and committed — as a window of its own.
pub fn run_splitting<'a>(
    ctx: &'a Context,
    budget: &'a Budget,
    job: &'a ChunkJob,
) -> futures::future::BoxFuture<'a, Result<ChunkOutcome, SyncError>> {
    Box::pin(async move {
        let r = run_with_retries(ctx, budget, job).await;
        let mid = match &r {
            Err(e) if is_query_timeout(e) => {
                halving_point(job.chunk.start, job.chunk.end, job.object.cursor_is_date)
            }
            _ => None,
        };
        let Some(mid) = mid else { return r };
        tracing::warn!(object = %job.object.object, window = %job.chunk, "QUERY_TIMEOUT: splitting the window in halves");
        let (mut rows, mut requests, mut chunks) = (0, 0, 0);
        for (a, b) in [(job.chunk.start, mid), (mid, job.chunk.end)] {
            let mut part = job.clone();
            part.expected = None;
            part.chunk = ChunkId {
                start: a,
                end: b,
                ..job.chunk.clone()
            };
            match run_splitting(ctx, budget, &part).await? {
                ChunkOutcome::Committed {
                    rows: r,
                    requests: q,
                    chunks: c,
                } => {
                    rows += r;
                    requests += q;
                    chunks += c;
                }
                ChunkOutcome::AlreadyCommitted { requests: q } => requests += q,
                ChunkOutcome::BudgetSpent {
                    requests: q,
                    rows: r,
                    chunks: c,
                } => {
                    return Ok(ChunkOutcome::BudgetSpent {
                        requests: requests + q,
                        rows: rows + r,
                        chunks: chunks + c,
                    })
                }
            }
        }
        Ok(if chunks > 0 {
            ChunkOutcome::Committed {
                rows,
                requests,
                chunks,
            }
        } else {
            ChunkOutcome::AlreadyCommitted { requests }
        })
    })
}

/// A backfill window that ends inside a day (a range cut at `now − lag`) is widened, before
/// its query, to the end of every committed chunk of that day it reaches into (never past the
/// day), so it can supersede them whole rather than leave versions twice.
async fn widen_backfill(
    store: &Arc<dyn object_store::ObjectStore>,
    job: &ChunkJob,
) -> Result<Option<ChunkJob>, SyncError> {
    use crate::sink::layout::{self, ChunkKind};
    let c = &job.chunk;
    let Some(replaces) = job.replaces else {
        return Ok(None);
    };
    let day = c.end.date_naive();
    let d0 = crate::timefmt::day_start(day);
    if c.kind != ChunkKind::Backfill
        || job.object.cursor_is_date
        || c.end == d0
        || replaces.1 != c.end
    {
        return Ok(None);
    }
    let named = crate::sink::store::list_paths(
        store.as_ref(),
        &layout::day_manifests_dir(&job.object.object, day),
    )
    .await?;
    let end = named
        .iter()
        .filter_map(|p| layout::parse_manifest_path(p).map(|(_, k)| k))
        .filter(|k| !k.is_marker() && k.start < c.end && k.end > c.end)
        .map(|k| k.end)
        .max()
        .map(|e| e.min(d0 + chrono::Duration::days(1)));
    Ok(end.map(|end| {
        tracing::info!(object = %job.object.object, window = %c, to = %crate::timefmt::rfc3339(end), "backfill window widened to cover a chunk committed past its end");
        let mut j = job.clone();
        j.chunk.end = end;
        j.replaces = Some((replaces.0, end));
        j
    }))
}

/// A chunk with up to 3 attempts on retryable errors, each from the chunk's start.
pub async fn run_with_retries(
    ctx: &Context,
    budget: &Budget,
    job: &ChunkJob,
) -> Result<ChunkOutcome, SyncError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        // a backfill cut inside a day first covers what committed past its cut
        let job = match widen_backfill(&ctx.store, job).await? {
            Some(wider) => std::borrow::Cow::Owned(wider),
            None => std::borrow::Cow::Borrowed(job),
        };
        let r = if job.bulk {
            crate::fetch::bulk::run_window(ctx, budget, &job).await
        } else {
            run_chunk(ctx, budget, &job).await
        };
        match r {
            Err(e) if e.is_retryable() && attempt < 3 && !budget.exhausted() => {
                tracing::warn!(object = %job.object.object, chunk = %job.chunk, attempt, error = %e, "chunk attempt failed; redoing the chunk from its start");
                tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
            }
            other => return other,
        }
    }
}
