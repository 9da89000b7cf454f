//! Reconciliation (SPEC §2 `reconcile`, §4 deletes): where getDeleted cannot answer — an
//! object that is not replicateable, a gap longer than its window, a purged delete log, a lake
//! whose history predates the capture — the lake may hold records Salesforce deleted for good.
//! A reconciliation lists the object's live Ids (`query`, not `queryAll`), and writes a
//! tombstone for every Id the current table holds that the listing lacks, as a `reconcile`
//! chunk (a lane of its own) dated when the listing began: a deletion happened before then, so
//! the tombstone never outranks a version the lake got later.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::commit::current::{for_each_held_id, Key};
use crate::context::{Context, SyncError};
use crate::fetch::deleted::{commit_range, CaptureOutcome, Tombstones};
use crate::schema::ObjectSchema;
use crate::sink::layout::ChunkKind;

/// What a reconciliation of one object found and cost.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Reconciled {
    /// When the listing of live Ids began (the tombstones' instant).
    pub at: String,
    /// Live records Salesforce listed.
    pub live: u64,
    /// Records the current table held.
    pub held: u64,
    /// Records the lake held that Salesforce no longer has: tombstones written.
    pub tombstones: u64,
    /// Requests made (query pages).
    pub requests: u64,
    pub seconds: f64,
    /// Why it ran (the command, or what getDeleted could not answer).
    pub reason: String,
}

/// Lists the Ids through one Bulk job rather than REST pages: `sync.api = "bulk"`, or `auto`
/// when the current table holds at least [`crate::plan::windows::BULK_MIN_RECORDS`] records —
/// unless the object is one Bulk refuses.
fn use_bulk(ctx: &Context, object: &ObjectSchema, held: u64) -> bool {
    object.bulk_obstacle().is_none()
        && match ctx.config.sync.api {
            crate::config::Api::Rest => false,
            crate::config::Api::Bulk => true,
            crate::config::Api::Auto => held >= crate::plan::windows::BULK_MIN_RECORDS,
        }
}

/// Reconciles one object whose current table is level with its change log. `at` is now.
pub async fn reconcile(
    ctx: &Context,
    object: &Arc<ObjectSchema>,
    at: DateTime<Utc>,
    reason: &str,
) -> Result<Reconciled, SyncError> {
    let started = Instant::now();
    let name = &object.object;
    // whole seconds: the chunk's window is [at, at + 1 s), after the last reconciliation's
    // (one in the same second waits for the next: a reconcile chunk of the same time would be
    // the same chunk)
    let mut at = at - Duration::nanoseconds(at.timestamp_subsec_nanos() as i64);
    let last = crate::sink::manifest::list_all_chunks(ctx.store.as_ref(), name)
        .await?
        .into_iter()
        .filter(|c| c.kind == ChunkKind::Reconcile)
        .map(|c| c.end)
        .max();
    if let Some(end) = last.filter(|e| *e > at) {
        if let Ok(wait) = (end - at).to_std() {
            tokio::time::sleep(wait.min(std::time::Duration::from_secs(2))).await;
        }
        at = end;
    }
    // the current table as it was before the listing began
    let view = match ctx.delta.as_deref() {
        Some(d) => d.current_view(name).await.map_err(crate::sink::SinkError::from)?,
        None => None,
    }
    .ok_or_else(|| {
        SyncError::Internal(format!(
            "{name}: reconciling needs the current table (destination.table_format = \"delta\" and destination.current_table = true)"
        ))
    })?;
    let mut live: HashSet<Key> = HashSet::new();
    let add = |id: &str| -> Result<(), crate::salesforce::SfError> {
        live.insert(
            Key::new(id).map_err(|e| crate::salesforce::SfError::Protocol {
                what: format!("{name} live Ids"),
                message: e.to_string(),
            })?,
        );
        Ok(())
    };
    let requests = if use_bulk(ctx, object, view.rows()) {
        ctx.client.live_ids_bulk(name, add).await?
    } else {
        ctx.client.live_ids(name, add).await?
    };
    let mut gone: Vec<(String, DateTime<Utc>)> = Vec::new();
    let held = for_each_held_id(ctx, name, &view, |id| {
        if !live.contains(&Key::new(id)?) {
            gone.push((id.to_string(), at));
        }
        Ok(())
    })
    .await?;
    let mut out = CaptureOutcome {
        requests,
        ..Default::default()
    };
    if !gone.is_empty() {
        let lane = Tombstones {
            kind: ChunkKind::Reconcile,
            request: format!("SELECT Id FROM {name}"),
            endpoint: format!("query: reconcile ({reason})"),
        };
        commit_range(
            ctx,
            object,
            &lane,
            at,
            at + Duration::seconds(1),
            &gone,
            &mut out,
        )
        .await?;
    }
    tracing::info!(object = %name, live = live.len(), held, tombstones = out.tombstones, requests, "reconciled");
    Ok(Reconciled {
        at: crate::timefmt::rfc3339(at),
        live: live.len() as u64,
        held,
        tombstones: out.tombstones,
        requests,
        seconds: started.elapsed().as_secs_f64(),
        reason: reason.to_string(),
    })
}
