//! Preparing objects (describe → schema) and running historical syncs through the shared
//! chunk executor.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use tokio::task::JoinSet;

use crate::config::ObjectConfig;
use crate::salesforce::{ident, soql, SfError};
use crate::schema::ObjectSchema;
use crate::sink::layout::{self, ChunkId, ChunkKind};
use crate::sink::manifest;
use crate::sync::chunk::{run_chunk, ChunkJob, ChunkOutcome};
use crate::sync::{plan, Budget, Context, ObjectSummary, RunSummary, SyncError};
use crate::timefmt::day_start;

/// An object resolved against the org's describe.
#[derive(Debug, Clone)]
pub struct PreparedObject {
    pub config: ObjectConfig,
    pub schema: Arc<ObjectSchema>,
    /// Schema changes since the last recorded schema, and a nillable cursor.
    pub warnings: Vec<String>,
    /// Records whose cursor is null (counted only when describe marks the cursor nillable).
    pub null_cursor: Option<u64>,
}

/// Authenticates, describes every configured object, validates fields and cursor (against
/// describe and against the cursor the lake was written with), counts records with a null
/// cursor, and — only once every object is valid, and only when `write_schemas` — records
/// each schema under `_forcelake/schemas/`. Nothing is written before the whole
/// configuration has been checked.
pub async fn prepare_objects(
    ctx: &Context,
    write_schemas: bool,
) -> Result<Vec<PreparedObject>, SyncError> {
    ctx.client.authenticate().await?;
    let mut out = Vec::new();
    let mut global = None;
    for o in &ctx.config.objects {
        let describe = match ctx.client.describe(&o.name).await {
            Ok(d) => d,
            Err(SfError::Api { code, .. }) if code == "NOT_FOUND" || code == "INVALID_TYPE" => {
                if global.is_none() {
                    global = Some(ctx.client.describe_global().await?);
                }
                let names = global
                    .as_ref()
                    .map(|g| {
                        g.sobjects
                            .iter()
                            .filter(|s| s.queryable)
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                return Err(SyncError::UnknownObject {
                    name: o.name.clone(),
                    suggestions: ident::closest(&o.name, names, 3),
                });
            }
            Err(e) => return Err(e.into()),
        };
        if !describe.queryable {
            return Err(SyncError::NotQueryable {
                name: o.name.clone(),
            });
        }
        let schema = ObjectSchema::resolve(&describe, o.fields.as_deref(), &o.cursor_field)?;
        check_lake_cursor(ctx, &schema).await?;
        let mut warnings = Vec::new();
        let mut null_cursor = None;
        if schema.cursor_nillable {
            let n = ctx
                .client
                .count(
                    &soql::null_cursor_count_query(&schema.object, &schema.cursor_field),
                    ctx.config.sync.include_deleted,
                    &format!(
                        "count of {} records without {}",
                        schema.object, schema.cursor_field
                    ),
                )
                .await?;
            null_cursor = Some(n);
            let better = crate::schema::cursor_candidates(&describe, "LastModifiedDate");
            let w = format!(
                "the cursor {}.{} can be null: {n} records have no {} — they belong to no day and are never synced{}",
                schema.object,
                schema.cursor_field,
                schema.cursor_field,
                if better.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; to sync every record use {} (cursor_field = \"{}\" in the [[objects]] table of {})",
                        better.join(", "),
                        better[0],
                        schema.object
                    )
                }
            );
            tracing::warn!(object = %schema.object, records = n, "{w}");
            warnings.push(w);
        }
        out.push(PreparedObject {
            config: o.clone(),
            schema: Arc::new(schema),
            warnings,
            null_cursor,
        });
    }
    if write_schemas {
        for o in &mut out {
            let changes = schema_changes(ctx.store.as_ref(), &o.schema).await;
            for w in &changes {
                tracing::warn!(object = %o.schema.object, "{w}");
            }
            o.warnings.extend(changes);
            write_schema_record(ctx.store.as_ref(), &o.schema).await?;
        }
    }
    Ok(out)
}

/// The cursor of an object is fixed once its first manifest exists (its day partitions follow
/// that cursor): another configured cursor is refused, naming both.
async fn check_lake_cursor(ctx: &Context, schema: &ObjectSchema) -> Result<(), SyncError> {
    let committed = manifest::list_chunks(ctx.store.as_ref(), &schema.object).await?;
    let Some(first) = committed.first() else {
        return Ok(());
    };
    let m = manifest::load(
        ctx.store.as_ref(),
        &layout::manifest_path(&schema.object, first),
    )
    .await?;
    if m.cursor_field.eq_ignore_ascii_case(&schema.cursor_field) {
        return Ok(());
    }
    Err(SyncError::CursorChanged {
        object: schema.object.clone(),
        lake: m.cursor_field,
        configured: schema.cursor_field.clone(),
        destination: ctx.config.destination.url.clone(),
    })
}

/// Compares the schema with the newest one recorded for the object: new, dropped and retyped
/// columns. Files keep the schema they were written with; readers merge by name.
async fn schema_changes(store: &dyn ObjectStore, schema: &ObjectSchema) -> Vec<String> {
    use futures::TryStreamExt;
    let prefix = object_store::path::Path::from(format!("_forcelake/schemas/{}", schema.object));
    let Ok(metas) = store.list(Some(&prefix)).try_collect::<Vec<_>>().await else {
        return vec![];
    };
    let mut newest: Option<(String, serde_json::Value)> = None;
    for m in metas {
        if m.location.filename() == Some(&format!("{}.json", schema.hash)) {
            return vec![]; // this exact schema was used before
        }
        let Ok(r) = object_store::ObjectStoreExt::get(store, &m.location).await else {
            continue;
        };
        let Ok(bytes) = r.bytes().await else { continue };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        let at = v["created_at"].as_str().unwrap_or("").to_string();
        if newest.as_ref().map(|(t, _)| at > *t).unwrap_or(true) {
            newest = Some((at, v));
        }
    }
    let Some((_, old)) = newest else {
        return vec![];
    };
    let old_fields: Vec<(String, String)> = old["fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    (
                        f["name"].as_str().unwrap_or("").to_string(),
                        f["arrow_type"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut w = Vec::new();
    for f in schema.arrow.fields() {
        match old_fields.iter().find(|(n, _)| n == f.name()) {
            None => w.push(format!("{}.{} is a new column: files written from now on have it, older files do not (read with DuckDB union_by_name = true or Spark mergeSchema)", schema.object, f.name())),
            Some((_, t)) if *t != f.data_type().to_string() => w.push(format!(
                "{}.{} changed type from {} to {}: older files keep {}, new files use {}; a reader merging both must cast (DuckDB union_by_name = true)",
                schema.object, f.name(), t, f.data_type(), t, f.data_type()
            )),
            _ => {}
        }
    }
    for (n, _) in &old_fields {
        if schema.arrow.field_with_name(n).is_err() {
            w.push(format!(
                "{}.{} is no longer written (removed from describe or from the field list)",
                schema.object, n
            ));
        }
    }
    w
}

async fn write_schema_record(
    store: &dyn ObjectStore,
    schema: &ObjectSchema,
) -> Result<(), SyncError> {
    let path = layout::schema_path(&schema.object, &schema.hash);
    let mut record = schema.to_json();
    record["created_at"] = serde_json::Value::String(crate::timefmt::rfc3339(Utc::now()));
    let body =
        serde_json::to_vec_pretty(&record).map_err(|e| SyncError::Internal(e.to_string()))?;
    match store
        .put_opts(
            &path,
            PutPayload::from(body),
            PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            },
        )
        .await
    {
        Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(crate::sink::SinkError::store(format!("writing {path}"), e).into()),
    }
}

/// The earliest cursor value of an object (`None` when it has no records).
pub async fn earliest_cursor(
    ctx: &Context,
    obj: &ObjectSchema,
    budget: &Budget,
) -> Result<Option<DateTime<Utc>>, SyncError> {
    if !budget.try_take() {
        return Ok(None);
    }
    let q = soql::earliest_query(&obj.object, &obj.cursor_field);
    let body = ctx
        .client
        .query_first(
            &q,
            ctx.config.sync.include_deleted,
            &format!("earliest {} of {}", obj.cursor_field, obj.object),
        )
        .await?;
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        SyncError::Internal(format!("earliest-cursor query for {}: {e}", obj.object))
    })?;
    let Some(text) = v
        .pointer("/records/0")
        .and_then(|r| r.get(&obj.cursor_field))
        .and_then(|c| c.as_str())
    else {
        return Ok(None);
    };
    if let Some(ms) = crate::decode::parse_datetime_ms(text) {
        return Ok(DateTime::from_timestamp_millis(ms));
    }
    if let Some(days) = crate::decode::parse_date_days(text) {
        return Ok(DateTime::from_timestamp(days as i64 * 86_400, 0));
    }
    Err(SyncError::Internal(format!(
        "{}: cannot read the earliest {} value {text:?}",
        obj.object, obj.cursor_field
    )))
}

/// One object's part of a historical sync.
pub struct HistoricalPlan {
    pub object: PreparedObject,
    pub chunks: Vec<ChunkId>,
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

/// The chunks a historical sync of every configured object still needs.
pub async fn plan_historical(
    ctx: &Context,
    objects: &[PreparedObject],
    budgets: &HashMap<String, Arc<Budget>>,
) -> Result<Vec<HistoricalPlan>, SyncError> {
    let now = crate::sync::incremental::now();
    let mut out = Vec::new();
    for o in objects {
        let date = o.schema.cursor_is_date;
        let cut = plan::cut(now, ctx.config.sync.lag_s, date);
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
        let range = start.and_then(|s| plan::fetch_range(s, end, cut, date));
        let chunks = match range {
            Some((s, e)) => plan::plan_range(ChunkKind::Historical, s, e, &committed),
            None => vec![],
        };
        tracing::info!(object = %o.schema.object, chunks = chunks.len(), already_committed = committed.len(), "planned historical sync");
        out.push(HistoricalPlan {
            object: o.clone(),
            chunks,
            range_end: range.map(|(_, e)| e),
            note: cut_note(ctx.config.sync.end, cut, ctx.config.sync.lag_s, date),
            warning: ctx
                .config
                .sync
                .start
                .filter(|s| *s >= cut)
                .map(future_start_warning),
        });
    }
    Ok(out)
}

/// Runs a historical sync of every configured object.
pub async fn run_historical(ctx: Arc<Context>) -> Result<RunSummary, SyncError> {
    let started = Instant::now();
    let objects = prepare_objects(&ctx, true).await?;
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
        command: "sync".into(),
        mode: "historical".into(),
        destination: ctx.config.destination.url.clone(),
        ..Default::default()
    };
    for HistoricalPlan {
        object: o,
        chunks,
        range_end,
        note,
        warning,
    } in planned
    {
        if let Some(n) = &note {
            tracing::info!(object = %o.schema.object, "{n}");
        }
        summary.objects.push(ObjectSummary {
            object: o.schema.object.clone(),
            chunks_planned: chunks.len() as u64,
            warnings: o.warnings.iter().cloned().chain(warning).collect(),
            null_cursor_records: o.null_cursor,
            notes: note.into_iter().collect(),
            range_end: range_end.map(crate::timefmt::rfc3339),
            ..Default::default()
        });
        for c in chunks {
            jobs.push(ChunkJob::new(o.schema.clone(), c, &ctx.config));
        }
    }
    execute(ctx.clone(), jobs, &budgets, &mut summary).await;
    Ok(summary.finish(&ctx, started))
}

/// Restricts when new chunks may start.
#[derive(Debug, Clone)]
pub struct Gate {
    pub window: crate::sync::window::OffPeak,
    /// Sleep until the next window instead of stopping.
    pub wait: bool,
}

fn failure_path(object: &str, chunk: &crate::sink::layout::ChunkId) -> object_store::path::Path {
    object_store::path::Path::from(format!("_forcelake/failures/{object}/{chunk}.json"))
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
    let progress = crate::sync::status::Progress::new(jobs.len() as u64);
    let mut set: JoinSet<(String, Result<ChunkOutcome, SyncError>)> = JoinSet::new();
    let mut stop_reason: Option<String> = None;
    let mut pending: HashMap<String, u64> = HashMap::new();
    let mut reasons: HashMap<String, String> = HashMap::new();

    let record = |summary: &mut RunSummary,
                  object: &str,
                  r: Result<ChunkOutcome, SyncError>,
                  stop: &mut Option<String>| {
        let s = summary
            .objects
            .iter_mut()
            .find(|s| s.object == object)
            .expect("summary per object");
        match r {
            Ok(ChunkOutcome::Committed { rows, .. }) => {
                s.rows += rows;
                s.chunks_committed += 1;
                progress.chunk_done(rows);
            }
            Ok(ChunkOutcome::AlreadyCommitted { .. }) => {
                s.chunks_already_committed += 1;
                progress.chunk_done(0);
            }
            Ok(ChunkOutcome::BudgetSpent { .. }) => {
                s.chunks_pending += 1;
            }
            Err(SyncError::Salesforce(SfError::DailyLimit { message })) => {
                s.chunks_pending += 1;
                *stop = Some(format!("the org's daily API limit is reached ({message})"));
            }
            Err(e) => {
                tracing::error!(object, error = %e, "chunk failed");
                s.chunks_failed += 1;
                if s.errors.len() < 10 {
                    s.errors.push(e.to_string());
                }
                if e.exit_code() == 2 && stop.is_none() {
                    *stop = Some(format!(
                        "stopped after an authentication or configuration error: {e}"
                    ));
                }
            }
        }
    };

    for job in jobs {
        let object = job.object.object.clone();
        let budget = budgets
            .get(&object)
            .cloned()
            .unwrap_or_else(|| Arc::new(Budget::new(u32::MAX)));
        if stop_reason.is_none() {
            if let Some(u) = ctx.client.api_usage() {
                if u.max > 0 && u.used * 100 >= u.max * ctx.config.sync.api_budget_percent as u64 {
                    stop_reason = Some(format!(
                        "the org's API usage {}/{} passed sync.api_budget_percent = {}%",
                        u.used, u.max, ctx.config.sync.api_budget_percent
                    ));
                }
            }
        }
        if let (None, Some(g)) = (&stop_reason, gate) {
            loop {
                match g.window.state(Utc::now()) {
                    crate::sync::window::WindowState::Open { closes_at } => {
                        summary.window = Some(
                            serde_json::json!({"open": true, "closes_at": crate::timefmt::rfc3339(closes_at)}),
                        );
                        break;
                    }
                    crate::sync::window::WindowState::Closed { opens_at } => {
                        if g.wait {
                            let wait = (opens_at - Utc::now())
                                .to_std()
                                .unwrap_or_default()
                                .max(Duration::from_millis(200));
                            tracing::info!(opens_at = %crate::timefmt::rfc3339(opens_at), "off-peak window closed; in-flight chunks finish, new ones wait for the next window");
                            tokio::time::sleep(wait).await;
                        } else {
                            summary.window = Some(
                                serde_json::json!({"open": false, "next_opens_at": crate::timefmt::rfc3339(opens_at)}),
                            );
                            stop_reason = Some(format!(
                                "the off-peak window is closed; it opens next at {}",
                                crate::timefmt::rfc3339(opens_at)
                            ));
                            break;
                        }
                    }
                }
            }
        }
        if stop_reason.is_some() || budget.exhausted() {
            if budget.exhausted() {
                reasons.entry(object.clone()).or_insert_with(|| {
                    format!(
                        "sync.query_limit = {} requests reached for this run",
                        ctx.config.sync.query_limit
                    )
                });
            }
            *pending.entry(object).or_default() += 1;
            continue;
        }
        while set.len() >= concurrency {
            if let Some(Ok((o, r))) = set.join_next().await {
                record(summary, &o, r, &mut stop_reason);
            }
        }
        let ctx2 = ctx.clone();
        set.spawn(async move {
            let r = run_splitting(&ctx2, &budget, &job).await;
            let marker = failure_path(&job.object.object, &job.chunk);
            match &r {
                Ok(ChunkOutcome::Committed { .. }) | Ok(ChunkOutcome::AlreadyCommitted { .. }) => {
                    let _ = object_store::ObjectStoreExt::delete(ctx2.store.as_ref(), &marker).await;
                }
                Err(e) if !matches!(e, SyncError::Salesforce(SfError::DailyLimit { .. })) => {
                    let body = serde_json::json!({"object": job.object.object, "chunk_id": job.chunk.to_string(), "error": e.to_string(), "failed_at": crate::timefmt::rfc3339(Utc::now())});
                    let _ = object_store::ObjectStoreExt::put(ctx2.store.as_ref(), &marker, PutPayload::from(body.to_string())).await;
                }
                _ => {}
            }
            (job.object.object.clone(), r)
        });
    }
    while let Some(res) = set.join_next().await {
        match res {
            Ok((o, r)) => record(summary, &o, r, &mut stop_reason),
            Err(e) => tracing::error!(error = %e, "chunk task panicked"),
        }
    }
    progress.finish();
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
                .or_else(|| {
                    Some(format!(
                        "sync.query_limit = {} requests reached for this run",
                        ctx.config.sync.query_limit
                    ))
                });
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

/// True for Salesforce's `QUERY_TIMEOUT`.
pub fn is_query_timeout(e: &SyncError) -> bool {
    matches!(e, SyncError::Salesforce(SfError::Api { code, .. }) if code == "QUERY_TIMEOUT")
}

/// A chunk whose query hits `QUERY_TIMEOUT` is split in halves (while longer than an hour, and
/// only on a datetime cursor: a date cannot be cut within its day) and each half is run — and
/// committed — as a chunk of its own.
pub fn run_splitting<'a>(
    ctx: &'a Context,
    budget: &'a Budget,
    job: &'a ChunkJob,
) -> futures::future::BoxFuture<'a, Result<ChunkOutcome, SyncError>> {
    Box::pin(async move {
        match run_with_retries(ctx, budget, job).await {
            Err(e)
                if is_query_timeout(&e)
                    && !job.object.cursor_is_date // a date-cursor window is one day: no halves
                    && job.chunk.end - job.chunk.start > chrono::Duration::hours(1) =>
            {
                let half = (job.chunk.end - job.chunk.start).num_seconds() / 2;
                let mid = job.chunk.start + chrono::Duration::seconds(half);
                tracing::warn!(object = %job.object.object, chunk = %job.chunk, "QUERY_TIMEOUT: splitting the window in halves");
                let (mut rows, mut requests, mut committed) = (0, 0, false);
                for (a, b) in [(job.chunk.start, mid), (mid, job.chunk.end)] {
                    let mut part = job.clone();
                    part.chunk = ChunkId {
                        start: a,
                        end: b,
                        ..job.chunk.clone()
                    };
                    match run_splitting(ctx, budget, &part).await? {
                        ChunkOutcome::Committed {
                            rows: r,
                            requests: q,
                        } => {
                            rows += r;
                            requests += q;
                            committed = true;
                        }
                        ChunkOutcome::AlreadyCommitted { requests: q } => requests += q,
                        ChunkOutcome::BudgetSpent { requests: q } => {
                            return Ok(ChunkOutcome::BudgetSpent {
                                requests: requests + q,
                            })
                        }
                    }
                }
                Ok(if committed {
                    ChunkOutcome::Committed { rows, requests }
                } else {
                    ChunkOutcome::AlreadyCommitted { requests }
                })
            }
            other => other,
        }
    })
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
        match run_chunk(&ctx.client, &ctx.store, budget, &ctx.scratch, job).await {
            Err(e) if e.is_retryable() && attempt < 3 && !budget.exhausted() => {
                tracing::warn!(object = %job.object.object, chunk = %job.chunk, attempt, error = %e, "chunk attempt failed; redoing the chunk from its start");
                tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
            }
            other => return other,
        }
    }
}
