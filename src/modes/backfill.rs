//! Date-range backfills: re-pull a range in per-day chunks beside the incremental sync. Each
//! committed backfill chunk supersedes (and then deletes) the chunks of its day committed
//! before it began. A backfill writes an immutable plan record when it starts, so `status`
//! can count its pending chunks and a rerun resumes it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::commit::job::ChunkJob;
use crate::config::ConfigError;
use crate::context::{Budget, Context, SyncError};
use crate::plan::windows as plan;
use crate::run::runner::{execute_gated, Gate};
use crate::run::{ObjectSummary, RunSummary};
use crate::sink::layout::{ChunkId, ChunkKind};
use crate::sink::manifest;
use crate::sink::SinkError;
use crate::timefmt::{compact, rfc3339};

/// `_forcelake/backfills/<id>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackfillPlan {
    pub format_version: u32,
    pub id: String,
    pub objects: Vec<String>,
    pub start: String,
    pub end: String,
    pub created_at: String,
    pub tool_version: String,
    pub chunks: Vec<PlannedChunk>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedChunk {
    pub object: String,
    pub chunk_id: String,
    pub day: String,
}

pub fn plan_path(id: &str) -> Path {
    crate::sink::layout::backfill_plan_path(id)
}

/// Every backfill plan in the lake, oldest first.
pub async fn list_plans(store: &dyn ObjectStore) -> Result<Vec<BackfillPlan>, SinkError> {
    let prefix = crate::sink::layout::backfills_prefix();
    let metas: Vec<_> = match store.list(Some(&prefix)).try_collect().await {
        Ok(m) => m,
        Err(object_store::Error::NotFound { .. }) => vec![],
        Err(e) => return Err(SinkError::store("listing backfill plans", e)),
    };
    let mut out = Vec::new();
    for m in metas {
        let bytes = store
            .get(&m.location)
            .await
            .map_err(|e| SinkError::store(format!("reading {}", m.location), e))?
            .bytes()
            .await
            .map_err(|e| SinkError::store(format!("reading {}", m.location), e))?;
        let p: BackfillPlan = serde_json::from_slice(&bytes).map_err(|e| SinkError::Manifest {
            path: m.location.to_string(),
            message: e.to_string(),
        })?;
        out.push(p);
    }
    out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// The chunks of a backfill: one per object × UTC day of `[start, end)`.
pub fn backfill_chunks(
    id: &str,
    objects: &[String],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<PlannedChunk> {
    let mut out = Vec::new();
    for o in objects {
        for (a, b) in crate::ranges::split_days(start, end) {
            let c = ChunkId::new(ChunkKind::Backfill, a, b).with_tag(id);
            out.push(PlannedChunk {
                object: o.clone(),
                day: c.day().format("%Y-%m-%d").to_string(),
                chunk_id: c.to_string(),
            });
        }
    }
    out
}

/// The parts of a planned chunk still to fetch: for a backfill chunk, what no committed chunk
/// of the same backfill covers (a chunk split on QUERY_TIMEOUT is committed as several smaller
/// ones); for the other kinds, what no committed chunk covers ([`ChunkId::covers_for`]).
pub fn uncovered(planned: &ChunkId, committed: &[ChunkId]) -> Vec<ChunkId> {
    let same: Vec<_> = committed
        .iter()
        .filter(|c| c.covers_for(planned))
        .map(|c| (c.start, c.end))
        .collect();
    crate::ranges::subtract(planned.start, planned.end, &same)
        .into_iter()
        .map(|(a, b)| ChunkId {
            start: a,
            end: b,
            ..planned.clone()
        })
        .collect()
}

/// Resumes the unfinished backfill of the same objects and range, or records a new plan
/// (always new with `force`). Returns the plan and whether it was resumed.
pub async fn plan_backfill(
    store: &dyn ObjectStore,
    objects: &[String],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    force: bool,
) -> Result<(BackfillPlan, bool), SyncError> {
    let mut sorted = objects.to_vec();
    sorted.sort();
    let (s, e) = (rfc3339(start), rfc3339(end));
    if !force {
        for p in list_plans(store).await?.into_iter().rev() {
            let mut po = p.objects.clone();
            po.sort();
            if po == sorted && p.start == s && p.end == e {
                return Ok((p, true));
            }
        }
    }
    let now = Utc::now();
    let id = format!(
        "{}{:04x}",
        compact(now).replace('.', ""),
        rand::rng().random::<u16>()
    );
    let plan = BackfillPlan {
        format_version: 1,
        chunks: backfill_chunks(&id, &sorted, start, end),
        id,
        objects: sorted,
        start: s,
        end: e,
        created_at: rfc3339(now),
        tool_version: crate::VERSION.to_string(),
    };
    let body = crate::sink::json_line(&plan).map_err(|e| SyncError::Internal(e.to_string()))?;
    store
        .put_opts(
            &plan_path(&plan.id),
            PutPayload::from(body),
            PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| SinkError::store(format!("writing the backfill plan {}", plan.id), e))?;
    Ok((plan, false))
}

/// A context restricted to some configured objects (error naming the configured ones otherwise).
pub fn context_for(
    ctx_config: &crate::config::Config,
    objects: &[String],
) -> Result<crate::config::Config, SyncError> {
    let mut cfg = ctx_config.clone();
    let mut selected = Vec::new();
    for o in objects {
        match cfg.objects.iter().find(|c| c.name.eq_ignore_ascii_case(o)) {
            Some(c) => selected.push(c.clone()),
            None => {
                return Err(ConfigError::Invalid {
                    key: "--object".into(),
                    value: format!("{o:?}"),
                    rule: format!(
                        "must be one of the configured objects: {}",
                        cfg.objects
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
                .into())
            }
        }
    }
    if selected.is_empty() {
        return Err(ConfigError::Missing {
            key: "--object".into(),
            hint: "name at least one object to backfill".into(),
        }
        .into());
    }
    cfg.objects = selected;
    Ok(cfg)
}

/// Runs (or resumes) a backfill.
pub async fn run_backfill(
    ctx: Arc<Context>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    force: bool,
    gate: Option<Gate>,
) -> Result<RunSummary, SyncError> {
    let started = Instant::now();
    if end <= start {
        return Err(ConfigError::Invalid {
            key: "--end".into(),
            value: rfc3339(end),
            rule: format!("must be after --start ({})", rfc3339(start)),
        }
        .into());
    }
    let (objects, failed) = crate::run::prepare::prepare_each(&ctx, true, true).await?;
    let names: Vec<String> = objects.iter().map(|o| o.schema.object.clone()).collect();
    let (plan, resumed) = plan_backfill(ctx.store.as_ref(), &names, start, end, force).await?;
    tracing::info!(backfill = %plan.id, resumed, chunks = plan.chunks.len(), "backfill plan");
    let mut summary = RunSummary {
        config_error: false,
        command: "backfill".into(),
        mode: "backfill".into(),
        destination: ctx.config.destination.url.clone(),
        backfill_id: Some(plan.id.clone()),
        ..Default::default()
    };
    let mut jobs = Vec::new();
    let mut budgets = HashMap::new();
    let now = crate::modes::incremental::now();
    let mut waiting: HashMap<String, (u64, DateTime<Utc>)> = HashMap::new();
    for o in &objects {
        let committed = manifest::list_chunks(ctx.store.as_ref(), &o.schema.object).await?;
        let cut = crate::ranges::cut(now, ctx.config.sync.lag_s, o.schema.cursor_is_date);
        let (todo, later) = runnable_parts(
            &plan,
            &o.schema.object,
            &committed,
            cut,
            o.schema.cursor_is_date,
        );
        if later > 0 {
            waiting.insert(o.schema.object.clone(), (later, cut));
        }
        let budget = Arc::new(Budget::new(ctx.config.sync.query_limit));
        let (windows, spent) = backfill_windows(&ctx, &o.schema, &plan.id, &todo, &budget).await?;
        summary.objects.push(ObjectSummary {
            object: o.schema.object.clone(),
            chunks_planned: todo.len() as u64,
            windows_planned: windows.len() as u64,
            chunks_pending: if spent { todo.len() as u64 } else { 0 },
            warnings: o.warnings.clone(),
            null_cursor_records: o.null_cursor,
            ..Default::default()
        });
        jobs.extend(windows.into_iter().map(|(w, records, replaces)| {
            let expected = plan::counted(records);
            ChunkJob {
                replaces: Some(replaces),
                expected,
                bulk: crate::plan::api::use_bulk(ctx.config.sync.api, expected, &o.schema),
                ..ChunkJob::new(o.schema.clone(), w, &ctx.config)
            }
        }));
        budgets.insert(o.schema.object.clone(), budget);
    }
    execute_gated(ctx.clone(), jobs, &budgets, &mut summary, gate.as_ref()).await;
    for s in summary.objects.iter_mut() {
        let Some((later, cut)) = waiting.get(&s.object) else {
            continue;
        };
        s.chunks_pending += later;
        s.range_end = Some(rfc3339(*cut));
        let why = format!(
            "the range ends in the future: {later} chunks lie (partly) after {} (now − sync.lag_s) and wait for a later run with the same range",
            rfc3339(*cut)
        );
        s.notes.push(why.clone());
        if s.status == "complete" {
            s.status = "paused".into();
            s.paused_reason = Some(why);
        }
    }
    if summary.status == "complete" && summary.objects.iter().any(|o| o.status == "paused") {
        summary.status = "paused".into();
    }
    crate::run::current::refresh_all(&ctx, &objects, &mut summary).await;
    crate::run::prepare::add_failed(&mut summary, failed);
    Ok(summary.finish(&ctx, started))
}

/// Query windows over a backfill's runnable parts (see [`runnable_parts`]): contiguous parts
/// form stretches, counted and cut into windows; each window carries the planned days it
/// replaces (a day is superseded once the backfill's chunks cover the planned day whole).
/// The flag says the budget ran out while counting.
pub async fn backfill_windows(
    ctx: &Context,
    obj: &crate::schema::ObjectSchema,
    tag: &str,
    parts: &[(ChunkId, ChunkId)],
    budget: &Budget,
) -> Result<(Vec<(ChunkId, u64, (DateTime<Utc>, DateTime<Utc>))>, bool), SyncError> {
    let mut stretches: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for (p, _) in parts {
        match stretches.last_mut() {
            Some(s) if s.1 == p.start => s.1 = p.end,
            _ => stretches.push((p.start, p.end)),
        }
    }
    let Some(windows) = crate::plan::counts::windows_for(ctx, obj, &stretches, budget).await?
    else {
        return Ok((vec![], true));
    };
    let out = windows
        .into_iter()
        .map(|w| {
            let touching: Vec<_> = parts
                .iter()
                .filter(|(p, _)| p.start < w.end && p.end > w.start)
                .collect();
            let replaces = touching
                .iter()
                .map(|(_, planned)| (planned.start, planned.end))
                .fold((w.start, w.end), |(a, b), (x, y)| (a.min(x), b.max(y)));
            // what can be fetched now: a planned day cut at now − lag is replaced up to the cut
            // (the rest of the day waits for a later run of the backfill)
            let runnable = touching.iter().map(|(p, _)| p.end).max().unwrap_or(w.end);
            let replaces = (replaces.0, replaces.1.min(runnable.max(w.end)));
            let id = ChunkId::new(ChunkKind::Backfill, w.start, w.end).with_tag(tag);
            (id, w.records, replaces)
        })
        .collect();
    Ok((out, false))
}

/// The parts of an object's planned backfill chunks that still need fetching and can be
/// fetched now (cut at `cut`; whole days for a date cursor), each with the planned chunk it
/// belongs to, and how many planned chunks keep time after the cut (they wait for a later run).
pub fn runnable_parts(
    plan: &BackfillPlan,
    object: &str,
    committed: &[ChunkId],
    cut: DateTime<Utc>,
    date_cursor: bool,
) -> (Vec<(ChunkId, ChunkId)>, u64) {
    let mut todo = Vec::new();
    let mut later = 0;
    for planned in plan
        .chunks
        .iter()
        .filter(|c| c.object == object)
        .filter_map(|c| ChunkId::parse(&c.chunk_id))
    {
        let parts = uncovered(&planned, committed);
        if parts.iter().any(|p| p.end > cut) {
            later += 1;
        }
        for part in parts {
            if let Some((a, b)) = crate::ranges::fetch_range(part.start, part.end, cut, date_cursor)
            {
                todo.push((
                    ChunkId {
                        start: a,
                        end: b,
                        ..part
                    },
                    planned.clone(),
                ));
            }
        }
    }
    (todo, later)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::DateOrTime;

    #[test]
    fn one_chunk_per_object_and_day() {
        let s = DateOrTime::parse("2025-03-01").unwrap().as_start();
        let e = DateOrTime::parse("2025-03-03").unwrap().as_end();
        let c = backfill_chunks("X1", &["Account".into(), "Case".into()], s, e);
        assert_eq!(c.len(), 6);
        assert_eq!(c[0].chunk_id, "backfill.X1-20250301");
        assert_eq!(c[5].object, "Case");
        assert_eq!(c[5].day, "2025-03-03");
    }
}
