//! After a run's chunks are committed: each object's current table takes them in (one merge
//! per object per run, all objects at once), and the objects getDeleted could not answer for
//! are reconciled. A merge or reconciliation that fails is the object's failure — its change
//! log is committed and the next run merges it — and the other objects go on.

use std::collections::HashMap;

use futures::StreamExt;

use crate::context::Context;
use crate::run::prepare::PreparedObject;
use crate::run::RunSummary;

/// Refreshes the current table of every prepared object and records what each did.
pub async fn refresh_all(ctx: &Context, objects: &[PreparedObject], summary: &mut RunSummary) {
    let concurrency = ctx.config.sync.concurrency.max(1);
    let results: Vec<_> = futures::stream::iter(objects.iter().map(|o| async move {
        let r = crate::commit::current::refresh(ctx, &o.schema).await;
        (o.schema.object.clone(), r)
    }))
    .buffer_unordered(concurrency)
    .collect()
    .await;
    for (object, r) in results {
        record(summary, &object, r);
    }
}

fn record(
    summary: &mut RunSummary,
    object: &str,
    r: Result<Option<crate::commit::current::Refreshed>, crate::context::SyncError>,
) {
    let Some(s) = summary.objects.iter_mut().find(|s| s.object == object) else {
        return;
    };
    match r {
        Ok(Some(done)) => s.current = Some(done),
        Ok(None) => {}
        Err(e) => {
            tracing::error!(object = %object, error = %e, "the current table could not take this run's chunks in");
            s.errors.push(format!(
                "current table: {e} (the change log is committed; the next run merges it)"
            ));
            s.current_failed = true;
            s.status = "failed".into();
            summary.status = "failed".into();
        }
    }
}

/// [`refresh_all`], then a reconciliation of each object in `reasons` (object → why
/// getDeleted could not answer for it) whose current table is level, and a merge of what it
/// found. `now` is the run's now.
pub async fn refresh_and_reconcile(
    ctx: &Context,
    objects: &[PreparedObject],
    reasons: &HashMap<String, String>,
    now: chrono::DateTime<chrono::Utc>,
    summary: &mut RunSummary,
) {
    refresh_all(ctx, objects, summary).await;
    if ctx.delta.is_none() || !ctx.config.destination.current_table {
        return;
    }
    for o in objects {
        let name = &o.schema.object;
        let Some(reason) = reasons.get(name) else {
            continue;
        };
        let level = summary
            .objects
            .iter()
            .find(|s| &s.object == name)
            .is_some_and(|s| s.current.is_some() && s.status != "failed");
        if !level {
            continue;
        }
        match crate::fetch::reconcile::reconcile(ctx, &o.schema, now, reason).await {
            Ok(r) => {
                let merged = if r.tombstones > 0 {
                    Some(crate::commit::current::refresh(ctx, &o.schema).await)
                } else {
                    None
                };
                if let Some(s) = summary.objects.iter_mut().find(|s| &s.object == name) {
                    s.requests += r.requests;
                    s.reconciled = Some(r);
                }
                if let Some(m) = merged {
                    record(summary, name, m);
                }
            }
            Err(e) => {
                if let Some(s) = summary.objects.iter_mut().find(|s| &s.object == name) {
                    s.errors.push(format!(
                        "reconciling ({reason}): {e}; run `forcelake reconcile --object {name}`"
                    ));
                    s.current_failed = true;
                    s.status = "failed".into();
                }
                summary.status = "failed".into();
            }
        }
    }
}
