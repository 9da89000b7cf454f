//! After a run's chunks are committed: each object's current table takes them in (one merge
//! per object per run, all objects at once). A merge that fails is the object's failure — its
//! change log is committed and the next run merges it — and the other objects go on.

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
        let Some(s) = summary.objects.iter_mut().find(|s| s.object == object) else {
            continue;
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
}
