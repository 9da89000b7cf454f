//! `plan`: the windows a sync or backfill would fetch, for a scheduler to fan out to `run-chunk`.

use crate::app::{parse_range, print_json, ExitCode, Out, RangeArgs};
use crate::config::{Config, Mode};
use crate::context::{Context, SyncError};
use clap::Subcommand;

#[derive(serde::Serialize)]
struct PlannedOut {
    /// `<Object>/<window id>`: what `run-chunk` takes.
    chunk: String,
    object: String,
    /// The UTC days the window covers (its day chunks).
    days: Vec<String>,
    kind: String,
    /// Records counted in the window when it was planned (null: a day or less, not counted).
    records: Option<u64>,
    /// `bulk` (a Bulk API 2.0 job) or `rest`: how `sync` and `run-chunk` fetch it.
    api: &'static str,
}

impl PlannedOut {
    fn new(
        object: &crate::schema::ObjectSchema,
        window: &crate::sink::layout::ChunkId,
        records: u64,
        api: crate::config::Api,
    ) -> Self {
        let counted = crate::plan::windows::counted(records);
        Self {
            api: if crate::plan::api::use_bulk(api, counted, object) {
                "bulk"
            } else {
                "rest"
            },
            records: counted,
            ..Self::deletes(object, window)
        }
    }
}

impl PlannedOut {
    /// A deletes chunk: one getDeleted request (or a few: its range is halved on
    /// `EXCEEDED_ID_LIMIT`), committed day by day. (Also the common fields of a window.)
    fn deletes(
        object: &crate::schema::ObjectSchema,
        window: &crate::sink::layout::ChunkId,
    ) -> Self {
        Self {
            api: "rest",
            chunk: format!("{}/{window}", object.object),
            object: object.object.clone(),
            days: crate::commit::days::day_chunks(window)
                .iter()
                .map(|d| d.day().format("%Y-%m-%d").to_string())
                .collect(),
            kind: window.kind.as_str().into(),
            records: None,
        }
    }
}

pub async fn plan(cfg: Config, what: &PlanWhat, out: Out) -> Result<ExitCode, SyncError> {
    let mut chunks: Vec<PlannedOut> = Vec::new();
    let mut extra = serde_json::Map::new();
    match what {
        PlanWhat::Sync => plan_sync(cfg, &mut chunks, &mut extra).await?,
        PlanWhat::Backfill(r) => plan_backfill(&cfg, r, &mut chunks, &mut extra).await?,
    }
    if out.json {
        let mut v = serde_json::Map::new();
        v.insert(
            "chunks".into(),
            serde_json::to_value(&chunks).unwrap_or_default(),
        );
        v.extend(extra);
        print_json(&v);
    } else {
        for c in &chunks {
            println!("{}", c.chunk);
        }
        out.note(&format!("{} chunks", chunks.len()));
    }
    Ok(0)
}

/// The next `sync`'s chunks (its mode's planner), with each object's request estimate.
async fn plan_sync(
    cfg: Config,
    chunks: &mut Vec<PlannedOut>,
    extra: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<(), SyncError> {
    let ctx = Context::new(cfg)?;
    // `plan` reads and writes nothing: no schema record, no start point.
    let objects = crate::run::prepare::prepare_objects(&ctx, false).await?;
    let planned: Vec<(String, Vec<(crate::sink::layout::ChunkId, u64)>)> =
        match ctx.config.sync.mode {
            Mode::Historical => {
                let budgets = Default::default();
                let mut notes = Vec::new();
                let p = crate::modes::historical::plan_historical(&ctx, &objects, &budgets).await?;
                let v =
                    p.into_iter()
                        .map(|h| {
                            if let Some(n) = h.note {
                                notes
                            .push(serde_json::json!({"object": h.object.schema.object, "note": n}));
                            }
                            (h.object.schema.object.clone(), h.windows)
                        })
                        .collect();
                if !notes.is_empty() {
                    extra.insert("notes".into(), notes.into());
                }
                v
            }
            // Objects without a start point plan nothing: their first `sync` records it.
            Mode::Incremental => {
                for (schema, ws) in crate::modes::incremental::plan_deletes(&ctx, &objects).await? {
                    chunks.extend(ws.iter().map(|w| PlannedOut::deletes(&schema, w)));
                }
                crate::modes::incremental::plan_incremental(&ctx, &objects).await?
            }
        };
    let mut estimates = Vec::new();
    let api = ctx.config.sync.api;
    for (o, ws) in planned {
        let Some(schema) = objects.iter().find(|x| x.schema.object == o) else {
            continue;
        };
        let schema = &schema.schema;
        if !ws.is_empty() {
            let e = crate::plan::estimate::for_object(&ws, &ctx.config.sync, schema);
            if e.runs > 1 {
                tracing::warn!(object = %o, requests = e.requests, query_limit = ctx.config.sync.query_limit, runs = e.runs, "sync.query_limit splits this sync over several runs");
            }
            let mut v = serde_json::to_value(&e).unwrap_or_default();
            v["object"] = o.clone().into();
            estimates.push(v);
        }
        for (w, records) in ws {
            chunks.push(PlannedOut::new(schema, &w, records, api));
        }
    }
    extra.insert("estimates".into(), estimates.into());
    Ok(())
}

/// A backfill's chunks: its plan record (made or resumed) and the windows of the parts not
/// yet committed.
async fn plan_backfill(
    cfg: &Config,
    r: &RangeArgs,
    chunks: &mut Vec<PlannedOut>,
    extra: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<(), SyncError> {
    let (start, end) = parse_range(r)?;
    let cfg = crate::modes::backfill::context_for(cfg, &r.objects)?;
    let ctx = Context::new(cfg)?;
    let objects = crate::run::prepare::prepare_objects(&ctx, false).await?;
    let names: Vec<String> = objects.iter().map(|o| o.schema.object.clone()).collect();
    // The backfill's plan record is what `status` counts pending chunks from, and
    // what `run-chunk` workers and a later `backfill` of the same range resume.
    let (plan, resumed) =
        crate::modes::backfill::plan_backfill(ctx.store.as_ref(), &names, start, end, r.force)
            .await?;
    extra.insert("backfill_id".into(), plan.id.clone().into());
    extra.insert("resumed".into(), resumed.into());
    let now = crate::modes::incremental::now();
    let mut waiting = 0;
    for o in &objects {
        let name = &o.schema.object;
        let committed = crate::sink::manifest::list_chunks(ctx.store.as_ref(), name).await?;
        let cut = crate::ranges::cut(now, ctx.config.sync.lag_s, o.schema.cursor_is_date);
        let (todo, later) = crate::modes::backfill::runnable_parts(
            &plan,
            name,
            &committed,
            cut,
            o.schema.cursor_is_date,
        );
        waiting += later;
        let budget = crate::context::Budget::new(u32::MAX);
        let (windows, _) =
            crate::modes::backfill::backfill_windows(&ctx, &o.schema, &plan.id, &todo, &budget)
                .await?;
        for (w, records, _) in windows {
            chunks.push(PlannedOut::new(&o.schema, &w, records, ctx.config.sync.api));
        }
    }
    if waiting > 0 {
        extra.insert("waiting".into(), waiting.into());
        extra.insert(
            "note".into(),
            format!("{waiting} chunks lie (partly) after now − sync.lag_s: the range ends in the future; plan again later for them").into(),
        );
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum PlanWhat {
    /// The chunks the configured sync mode would run now.
    Sync,
    /// Record a backfill plan (or find the unfinished one) and print its remaining chunks.
    Backfill(RangeArgs),
}
