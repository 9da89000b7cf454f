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

/// Reconciles one object whose current table is level with its change log. `at` is now.
pub async fn reconcile(
    ctx: &Context,
    object: &Arc<ObjectSchema>,
    at: DateTime<Utc>,
    reason: &str,
) -> Result<Reconciled, SyncError> {
    let started = Instant::now();
    let name = &object.object;
    // whole seconds: the chunk's window is [at, at + 1 s)
    let at = at - Duration::nanoseconds(at.timestamp_subsec_nanos() as i64);
    let mut live: HashSet<Key> = HashSet::new();
    let requests = ctx
        .client
        .live_ids(name, |id| {
            live.insert(
                Key::new(id).map_err(|e| crate::salesforce::SfError::Protocol {
                    what: format!("{name} live Ids"),
                    message: e.to_string(),
                })?,
            );
            Ok(())
        })
        .await?;
    let mut gone: Vec<(String, DateTime<Utc>)> = Vec::new();
    let held = for_each_held_id(ctx, name, |id| {
        if !live.contains(&Key::new(id)?) {
            gone.push((id.to_string(), at));
        }
        Ok(())
    })
    .await?
    .ok_or_else(|| {
        SyncError::Internal(format!(
            "{name}: reconciling needs the current table (destination.table_format = \"delta\" and destination.current_table = true)"
        ))
    })?;
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
