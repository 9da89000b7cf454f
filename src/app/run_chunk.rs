//! `run-chunk`: one planned window, as a scheduler's task.

use std::sync::Arc;

use crate::app::{ensure_destination, print_json, ExitCode, Out, EXIT_RETRY_LATER};
use crate::config::Config;
use crate::context::{Context, SyncError};

pub async fn run_chunk(cfg: Config, spec: &str, out: Out) -> Result<ExitCode, SyncError> {
    use crate::config::ConfigError;
    let bad = |rule: &str| -> SyncError {
        ConfigError::Invalid {
            key: "CHUNK".into(),
            value: format!("{spec:?}"),
            rule: rule.into(),
        }
        .into()
    };
    let (object, id) = spec.split_once('/').ok_or_else(|| {
        bad("expected <Object>/<chunk-id>, as `forcelake plan … --json` prints it")
    })?;
    let chunk = crate::sink::layout::ChunkId::parse(id)
        .ok_or_else(|| bad("the chunk id is not valid (e.g. Account/historical-20250301)"))?;
    if chunk.is_marker() {
        return Err(bad("a chunk covers a non-empty window"));
    }
    let cfg = crate::modes::backfill::context_for(&cfg, &[object.to_string()])?;
    let ctx = Arc::new(Context::new(cfg)?);
    ensure_destination(&ctx).await?;
    let objects = crate::run::prepare::prepare_objects(&ctx, true).await?;
    let o = objects
        .into_iter()
        .next()
        .ok_or_else(|| bad("unknown object"))?;
    if chunk.is_deletes() {
        return run_deletes_chunk(&ctx, &o, &chunk, spec, out).await;
    }
    let budget = crate::context::Budget::new(ctx.config.sync.query_limit);
    let cut = crate::ranges::cut(
        crate::modes::incremental::now(),
        ctx.config.sync.lag_s,
        o.schema.cursor_is_date,
    );
    // What of this chunk is still to do (an earlier run may have committed a part of it, cut
    // at now − lag), and what of that can be fetched now.
    let committed =
        crate::sink::manifest::list_chunks(ctx.store.as_ref(), &o.schema.object).await?;
    let parts = crate::modes::backfill::uncovered(&chunk, &committed);
    let mut later = parts.iter().any(|p| p.end > cut);
    let mut stop: Option<String> = ctx.api_budget_stop();
    let (mut rows, mut committed_parts) = (0u64, 0u64);
    crate::run::runner::mark_started(&ctx, &o.schema.object, &chunk).await;
    for part in &parts {
        if stop.is_some() {
            break;
        }
        let Some((a, b)) =
            crate::ranges::fetch_range(part.start, part.end, cut, o.schema.cursor_is_date)
        else {
            continue;
        };
        let job = part_job(&ctx, &budget, &o.schema, &chunk, part, (a, b)).await?;
        match crate::run::runner::run_splitting(&ctx, &budget, &job).await {
            Ok(crate::commit::job::ChunkOutcome::Committed {
                rows: r, chunks: c, ..
            }) => {
                rows += r;
                committed_parts += c;
            }
            Ok(crate::commit::job::ChunkOutcome::AlreadyCommitted { .. }) => {}
            Ok(crate::commit::job::ChunkOutcome::BudgetSpent {
                rows: r, chunks: c, ..
            }) => {
                // the days it passed are committed; the rest waits for the next try
                rows += r;
                committed_parts += c;
                stop = Some(ctx.query_limit_reason());
            }
            Err(SyncError::Salesforce(crate::salesforce::SfError::DailyLimit { message })) => {
                stop = Some(crate::context::daily_limit_reason(&message));
            }
            Err(e) => return Err(e),
        }
    }
    crate::run::runner::mark_ended(&ctx, &o.schema.object, &chunk).await;
    let current = crate::commit::current::refresh(&ctx, &o.schema).await?;
    if stop.is_some() {
        later = true;
    }
    let (outcome, code) = outcome_of(stop.is_some(), later, committed_parts);
    let reason =
        stop.or_else(|| later.then(|| waiting_reason(chunk.end, cut, ctx.config.sync.lag_s)));
    report(
        out,
        Report {
            spec,
            object: &o.schema.object,
            outcome,
            code,
            rows,
            noun: "rows",
            requests: budget.used(),
            reason,
            unanswered: None,
            current,
        },
    );
    Ok(code)
}

/// How a `run-chunk` ended, and its exit code: paused by a budget or waiting for its end to
/// pass (3, retry later), or done (0) — by this run or another before it.
fn outcome_of(stopped: bool, later: bool, committed: u64) -> (&'static str, ExitCode) {
    match (stopped, later, committed) {
        (true, _, _) => ("paused", EXIT_RETRY_LATER),
        (false, true, _) => ("waiting", EXIT_RETRY_LATER),
        (false, false, 0) => ("already_committed", 0),
        (false, false, _) => ("committed", 0),
    }
}

/// Why a chunk that ends after now − lag is not done yet, and when to retry.
fn waiting_reason(
    end: chrono::DateTime<chrono::Utc>,
    cut: chrono::DateTime<chrono::Utc>,
    lag_s: u64,
) -> String {
    format!(
        "the chunk ends at {}, after now − sync.lag_s ({}): what has happened is committed, retry after {} for the rest",
        crate::timefmt::rfc3339(end),
        crate::timefmt::rfc3339(cut),
        crate::timefmt::rfc3339(end + chrono::Duration::seconds(lag_s as i64))
    )
}

/// What `run-chunk` prints.
struct Report<'a> {
    spec: &'a str,
    object: &'a str,
    outcome: &'static str,
    code: ExitCode,
    rows: u64,
    /// What `rows` counts in the text line (`rows`, `tombstones`).
    noun: &'static str,
    requests: u64,
    reason: Option<String>,
    /// A deletes chunk: the ranges getDeleted could not answer.
    unanswered: Option<Vec<String>>,
    /// What the object's current table took in afterwards.
    current: Option<crate::commit::current::Refreshed>,
}

/// One JSON line (`--json`), or a line of text and a warning per unanswered range.
fn report(out: Out, r: Report<'_>) {
    if out.json {
        let mut v = serde_json::json!({"chunk": r.spec, "object": r.object, "outcome": r.outcome, "rows": r.rows, "requests": r.requests, "exit_code": r.code, "reason": r.reason});
        if let Some(u) = &r.unanswered {
            v["unanswered"] = serde_json::json!(u);
        }
        if let Some(c) = &r.current {
            v["current"] = serde_json::json!(c);
        }
        print_json(&v);
        return;
    }
    println!(
        "{}: {}{}",
        r.spec,
        match r.outcome {
            "committed" => format!("committed ({} {})", r.rows, r.noun),
            other => other.replace('_', " "),
        },
        r.reason.map(|x| format!(" — {x}")).unwrap_or_default()
    );
    for u in r.unanswered.iter().flatten() {
        println!("    warning: deletes not captured for {u}");
    }
    if let Some(c) = &r.current {
        println!(
            "    current table: version {}, {} live records ({} chunks merged)",
            c.version, c.rows, c.chunks_applied
        );
    }
}

/// A planned deletes chunk: getDeleted over what of its range no deletes chunk covers, up to
/// now − lag (the rest: exit 3, retry later).
async fn run_deletes_chunk(
    ctx: &Context,
    o: &crate::run::prepare::PreparedObject,
    chunk: &crate::sink::layout::ChunkId,
    spec: &str,
    out: Out,
) -> Result<ExitCode, SyncError> {
    let object = &o.schema.object;
    if !o.replicateable {
        return Err(crate::config::ConfigError::Invalid {
            key: "CHUNK".into(),
            value: format!("{spec:?}"),
            rule: format!(
                "{object} is not replicateable (describe): getDeleted cannot list its deletes"
            ),
        }
        .into());
    }
    let budget = crate::context::Budget::new(ctx.config.sync.query_limit);
    let cut = crate::ranges::cut(
        crate::modes::incremental::now(),
        ctx.config.sync.lag_s,
        false,
    );
    let committed = crate::sink::manifest::list_delete_chunks(ctx.store.as_ref(), object).await?;
    let end = chunk.end.min(cut);
    let c =
        crate::fetch::deleted::capture_range(ctx, &budget, &o.schema, &committed, chunk.start, end)
            .await?;
    let current = crate::commit::current::refresh(ctx, &o.schema).await?;
    let later = chunk.end > cut;
    let (outcome, code) = outcome_of(false, later, c.chunks);
    report(
        out,
        Report {
            spec,
            object,
            outcome,
            code,
            rows: c.tombstones,
            noun: "tombstones",
            requests: c.requests,
            reason: later.then(|| waiting_reason(chunk.end, cut, ctx.config.sync.lag_s)),
            unanswered: Some(c.unanswered_lines()),
            current,
        },
    );
    Ok(code)
}

/// The job of one part of a `run-chunk` chunk, fetched from `a` to `b`: in `auto`, a part of
/// more than a day is counted first (one request) so that [`crate::plan::api::use_bulk`]
/// chooses REST or Bulk as `sync` does from its plan.
async fn part_job(
    ctx: &Context,
    budget: &crate::context::Budget,
    schema: &std::sync::Arc<crate::schema::ObjectSchema>,
    chunk: &crate::sink::layout::ChunkId,
    part: &crate::sink::layout::ChunkId,
    (a, b): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
) -> Result<crate::commit::job::ChunkJob, SyncError> {
    // In `auto`, a window of more than a day is counted first (one request) to choose
    // between REST and a Bulk job, as `sync` does from its plan; an empty one needs no query.
    let api = ctx.config.sync.api;
    let expected = if api == crate::config::Api::Auto
        && schema.bulk_obstacle().is_none()
        && b - a > chrono::Duration::days(1)
        && budget.try_take()
    {
        Some(
            ctx.client
                .count(
                    &crate::salesforce::soql::count_query(
                        &schema.object,
                        &schema.cursor_field,
                        schema.cursor_is_date,
                        Some((a, b)),
                    ),
                    ctx.config.sync.include_deleted,
                    &format!("count of {}", schema.object),
                )
                .await?,
        )
    } else {
        None
    };
    // one window alone in the process: it may use the whole memory limit and read ahead
    Ok(crate::commit::job::ChunkJob {
        pages_ahead: crate::commit::job::pages_ahead(1),
        // a day cut at now − lag is replaced up to the cut (then widened over what
        // committed past it, as a backfill run does)
        replaces: (chunk.kind == crate::sink::layout::ChunkKind::Backfill)
            .then_some((chunk.start, chunk.end.min(b))),
        expected,
        bulk: crate::plan::api::use_bulk(api, expected, schema),
        memory_share: crate::commit::job::memory_share(&ctx.config, 1),
        ..crate::commit::job::ChunkJob::new(
            schema.clone(),
            crate::sink::layout::ChunkId {
                start: a,
                end: b,
                ..part.clone()
            },
            &ctx.config,
        )
    })
}
