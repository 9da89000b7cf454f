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
    if stop.is_some() {
        later = true;
    }
    let (outcome, code) = match (&stop, later, committed_parts) {
        (Some(_), _, _) => ("paused", EXIT_RETRY_LATER),
        (None, true, _) => ("waiting", EXIT_RETRY_LATER),
        (None, false, 0) => ("already_committed", 0),
        (None, false, _) => ("committed", 0),
    };
    let reason = stop.clone().or_else(|| {
        later.then(|| {
            format!(
                "the chunk ends at {}, after now − sync.lag_s ({}): what has happened is committed, retry after {} for the rest",
                crate::timefmt::rfc3339(chunk.end),
                crate::timefmt::rfc3339(cut),
                crate::timefmt::rfc3339(
                    chunk.end + chrono::Duration::seconds(ctx.config.sync.lag_s as i64)
                )
            )
        })
    });
    let v = serde_json::json!({"chunk": spec, "object": o.schema.object, "outcome": outcome, "rows": rows, "requests": budget.used(), "exit_code": code, "reason": reason});
    if out.json {
        print_json(&v);
    } else {
        println!(
            "{spec}: {}{}",
            match outcome {
                "committed" => format!("committed ({rows} rows)"),
                other => other.replace('_', " "),
            },
            reason.map(|r| format!(" — {r}")).unwrap_or_default()
        );
    }
    Ok(code)
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
    let later = chunk.end > cut;
    let (outcome, code) = match (later, c.chunks) {
        (true, _) => ("waiting", EXIT_RETRY_LATER),
        (false, 0) => ("already_committed", 0),
        (false, _) => ("committed", 0),
    };
    let reason = later.then(|| {
        format!(
            "the chunk ends at {}, after now − sync.lag_s ({}): retry later for the rest",
            crate::timefmt::rfc3339(chunk.end),
            crate::timefmt::rfc3339(cut)
        )
    });
    let unanswered: Vec<String> = c
        .unanswered
        .iter()
        .map(|(a, b, why)| {
            format!(
                "{}..{}: {why}",
                crate::timefmt::rfc3339(*a),
                crate::timefmt::rfc3339(*b)
            )
        })
        .collect();
    let v = serde_json::json!({"chunk": spec, "object": object, "outcome": outcome, "rows": c.tombstones, "requests": c.requests, "exit_code": code, "reason": reason, "unanswered": unanswered});
    if out.json {
        print_json(&v);
    } else {
        println!(
            "{spec}: {}{}",
            match outcome {
                "committed" => format!("committed ({} tombstones)", c.tombstones),
                other => other.replace('_', " "),
            },
            reason.map(|r| format!(" — {r}")).unwrap_or_default()
        );
        for u in &unanswered {
            println!("    warning: deletes not captured for {u}");
        }
    }
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
