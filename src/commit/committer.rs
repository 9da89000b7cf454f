//! Committing a window's finished days: files placed in the store, the day's commit gate
//! passed (create-only claim in the commit log), the manifest written, then the Delta commit
//! and the removal of what the chunk superseded. Files of a losing or crashed attempt are
//! removed.

use std::sync::Arc;

use chrono::Utc;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::commit::days::Done;
use crate::commit::gate::{self, BackfillRule, GateOutcome};
use crate::commit::job::{ChunkJob, Tally};
use crate::context::{Context, LogCache, Scratch, SyncError};
use crate::sink::delta::DeltaTables;
use crate::sink::layout::{self, ChunkId};
use crate::sink::manifest::{self, FileEntry, Manifest};
use crate::sink::store::delete_quietly;
use crate::sink::writer::{self, LocalPart};
use crate::timefmt::rfc3339;

/// Day chunks of one window committed at once: their store round trips overlap (a sparse
/// window of hundreds of days on an object store would otherwise wait for each in turn).
pub const COMMITS_IN_FLIGHT: usize = 8;

/// Commits a window's day chunks: files first, then the create-only manifest.
pub(crate) struct Committer<'a> {
    pub(crate) store: &'a Arc<dyn ObjectStore>,
    pub(crate) scratch: &'a Scratch,
    /// The object's Delta table, committed after each manifest (`table_format = "delta"`).
    pub(crate) delta: Option<&'a DeltaTables>,
    /// Commit log entries read so far (see [`gate`]).
    pub(crate) log: &'a LogCache,
    /// The org the run's token names, recorded in each manifest.
    pub(crate) org_id: Option<String>,
    pub(crate) job: &'a ChunkJob,
    pub(crate) days: &'a [ChunkId],
    pub(crate) skip: &'a [bool],
    pub(crate) attempt: &'a str,
    pub(crate) started_at: chrono::DateTime<Utc>,
    pub(crate) soql: &'a str,
    /// `query` / `queryAll` (REST) or `bulk:query` / `bulk:queryAll` (a Bulk API 2.0 job).
    pub(crate) endpoint: String,
    /// Query requests the window has sent so far, and those already written into manifests.
    pub(crate) requests: std::sync::atomic::AtomicU64,
    pub(crate) attributed: std::sync::atomic::AtomicU64,
}

impl<'a> Committer<'a> {
    /// A committer of `job`'s `days` (those `skip` marks are committed already) fetched by
    /// `soql` through `endpoint`; `requests` already sent for the window (a Bulk job's create).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn for_window(
        ctx: &'a Context,
        job: &'a ChunkJob,
        days: &'a [ChunkId],
        skip: &'a [bool],
        attempt: &'a str,
        soql: &'a str,
        endpoint: String,
        requests: u64,
    ) -> Self {
        Committer {
            store: &ctx.store,
            scratch: &ctx.scratch,
            delta: ctx.delta.as_deref(),
            log: &ctx.commit_log,
            org_id: ctx.client.org_id(),
            job,
            days,
            skip,
            attempt,
            started_at: Utc::now(),
            soql,
            endpoint,
            requests: std::sync::atomic::AtomicU64::new(requests),
            attributed: Default::default(),
        }
    }
}

impl Committer<'_> {
    /// Commits the days handed over until the sender is dropped, up to [`COMMITS_IN_FLIGHT`]
    /// at once (each day is its own commit; a store's round trips overlap, and the Delta
    /// commits of days committed together are grouped); after an error the rest are dropped
    /// (their temp files go with them). What it committed, and the first error.
    pub(crate) async fn drain(
        &self,
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<Done>,
    ) -> (Tally, Option<SyncError>) {
        use futures::StreamExt;
        let mut tally = Tally::default();
        let mut failed: Option<SyncError> = None;
        let mut in_flight = futures::stream::FuturesUnordered::new();
        let mut open = true;
        let mut settle = |r: (Tally, Result<(), SyncError>), failed: &mut Option<SyncError>| {
            tally.add(&r.0);
            if let Err(e) = r.1 {
                failed.get_or_insert(e);
            }
        };
        while open || !in_flight.is_empty() {
            tokio::select! {
                d = rx.recv(), if open && in_flight.len() < COMMITS_IN_FLIGHT => match d {
                    None => open = false,
                    Some(_) if failed.is_some() => {}
                    Some(d) => in_flight.push(async move {
                        let mut t = Tally::default();
                        let r = match d {
                            Done::Day { idx, parts, rows } => self.day(idx, parts, rows, &mut t).await,
                            Done::Empty { from, to } => self.empty(from, to, &mut t).await,
                        };
                        (t, r)
                    }),
                },
                Some(r) = in_flight.next(), if !in_flight.is_empty() => settle(r, &mut failed),
            }
        }
        (tally, failed)
    }

    /// The planned window a backfill day replaces (its own bounds within the backfill's).
    fn replaces(&self, day: &ChunkId) -> (chrono::DateTime<Utc>, chrono::DateTime<Utc>) {
        let (a, b) = self.job.replaces.unwrap_or((day.start, day.end));
        let d0 = crate::timefmt::day_start(day.day());
        (a.max(d0), b.min(d0 + chrono::Duration::days(1)))
    }

    pub(crate) async fn day(
        &self,
        idx: usize,
        parts: Vec<LocalPart>,
        rows: u64,
        tally: &mut Tally,
    ) -> Result<(), SyncError> {
        if self.skip[idx] {
            tally.already += 1;
            return Ok(());
        }
        let chunk = &self.days[idx];
        let obj = &self.job.object;
        let store = self.store;
        let mut files = Vec::with_capacity(parts.len());
        for (n, part) in parts.into_iter().enumerate() {
            let dest = layout::data_path(&obj.object, chunk, self.attempt, n);
            let entry = FileEntry {
                path: dest.to_string(),
                rows: part.rows,
                bytes: part.bytes,
            };
            if let Err(e) = writer::place(store, self.scratch.local.as_deref(), part, &dest).await {
                delete_quietly(store, paths(&files)).await;
                return Err(e.into());
            }
            files.push(entry);
        }
        self.commit(chunk, files, rows, tally).await
    }

    /// Covers days `from..to` without records: one manifest for the run, or one per day for a
    /// backfill (each supersedes that day's older chunks).
    pub(crate) async fn empty(
        &self,
        from: usize,
        to: usize,
        tally: &mut Tally,
    ) -> Result<(), SyncError> {
        let per_day = self.job.chunk.kind == layout::ChunkKind::Backfill;
        let mut i = from;
        while i < to {
            if self.skip[i] {
                tally.already += 1;
                i += 1;
                continue;
            }
            // a run of days not yet committed
            let mut j = i + 1;
            while !per_day && j < to && !self.skip[j] {
                j += 1;
            }
            let chunk = ChunkId {
                start: self.days[i].start,
                end: self.days[j - 1].end,
                ..self.days[i].clone()
            };
            self.commit(&chunk, vec![], 0, tally).await?;
            i = j;
        }
        Ok(())
    }

    async fn commit(
        &self,
        chunk: &ChunkId,
        files: Vec<FileEntry>,
        rows: u64,
        tally: &mut Tally,
    ) -> Result<(), SyncError> {
        let obj = &self.job.object;
        let store = self.store;
        let rule = (chunk.kind == layout::ChunkKind::Backfill).then(|| BackfillRule {
            began: self.started_at,
            replaces: self.replaces(chunk),
        });
        let mut m = Manifest {
            format_version: manifest::FORMAT_VERSION,
            object: obj.object.clone(),
            day: chunk.day().format("%Y-%m-%d").to_string(),
            chunk_id: chunk.to_string(),
            kind: chunk.kind,
            cursor_field: obj.cursor_field.clone(),
            window_start: rfc3339(chunk.start),
            window_end: rfc3339(chunk.end),
            files: files.clone(),
            rows,
            schema_hash: obj.hash.clone(),
            // the requests sent since the previous day of this window was committed
            api_requests: {
                use std::sync::atomic::Ordering::Relaxed;
                let now = self.requests.load(Relaxed);
                now - self.attributed.swap(now, Relaxed).min(now)
            },
            started_at: rfc3339(self.started_at),
            committed_at: String::new(), // set by the gate
            tool_version: crate::VERSION.to_string(),
            supersedes: vec![], // set by the gate
            attempt: self.attempt.to_string(),
            endpoint: self.endpoint.clone(),
            soql: self.soql.to_string(),
            total_size: rows,
            org_id: self.org_id.clone(),
        };
        let (outcome, completed) = match gate::commit(store, self.log, &mut m, rule.as_ref()).await
        {
            Ok(o) => o,
            Err(e) => {
                delete_quietly(store, paths(&files)).await;
                return Err(e);
            }
        };
        // Claims of this day whose writer stopped before their manifest: the gate wrote the
        // manifests; their Delta commits and deletions follow here (the start-of-run catch-up
        // ran before they had manifests).
        for c in &completed {
            if let Err(e) = self.publish(&c.manifest, &c.superseded, None).await {
                tracing::warn!(object = %obj.object, chunk = %c.manifest.chunk_id, error = %e, "could not make the Delta commit of a completed chunk; the next run's catch-up makes it");
            }
        }
        match outcome {
            GateOutcome::Committed {
                superseded,
                whole_day,
            } => {
                tracing::debug!(object = %obj.object, chunk = %chunk, rows, superseded = superseded.len(), "chunk committed");
                tally.rows += rows;
                tally.committed += 1;
                // A backfill that now holds its whole day also takes out of the table, and then
                // the folder, the files no manifest names (a compaction's).
                let replace_day = (whole_day && self.delta.is_some()).then(|| chunk.day());
                self.publish(&m, &superseded, replace_day).await?;
                remove_orphans(
                    store,
                    &obj.object,
                    chunk,
                    self.attempt,
                    replace_day.is_some(),
                )
                .await;
                Ok(())
            }
            GateOutcome::Already => {
                delete_quietly(store, paths(&files)).await;
                tally.already += 1;
                Ok(())
            }
            GateOutcome::Yielded { by } => {
                tracing::info!(object = %obj.object, chunk = %chunk, covered_by = %by, "another run committed this time first: this chunk is dropped, that one stands");
                delete_quietly(store, paths(&files)).await;
                tally.already += 1;
                Ok(())
            }
        }
    }

    /// After a chunk's manifest: its Delta commit (its files in, those of the chunks it
    /// supersedes out — a crash before it is made good by the next run's catch-up, the manifest
    /// being the truth), then the superseded files are deleted: readers never see a day with
    /// rows missing, since old files go only after the table no longer lists them.
    async fn publish(
        &self,
        m: &Manifest,
        superseded: &[Manifest],
        replace_day: Option<chrono::NaiveDate>,
    ) -> Result<(), SyncError> {
        if let Some(delta) = self.delta {
            super::delta::commit(delta, &self.job.object.arrow, m, superseded, replace_day).await?;
        }
        for old in superseded {
            delete_quietly(self.store, paths(&old.files)).await;
        }
        Ok(())
    }
}

/// The paths of a chunk's files.
fn paths(files: &[FileEntry]) -> impl Iterator<Item = String> + '_ {
    files.iter().map(|f| f.path.clone())
}

/// Deletes files in the chunk's day partition that no manifest will ever name: other attempts
/// of this chunk, and uncommitted chunks whose window lies inside this one (e.g. a crashed
/// attempt of a partial day that this chunk has now covered); with `foreign` (a backfill
/// whose Delta commit replaced the whole day), also the files another tool wrote there (a
/// compaction's output, which that commit took out of the table), so the plain Parquet glob
/// holds the day once too.
async fn remove_orphans(
    store: &Arc<dyn ObjectStore>,
    object: &str,
    chunk: &ChunkId,
    keep_attempt: &str,
    foreign: bool,
) {
    let dir = layout::day_dir(object, chunk.day());
    let chunk_id = chunk.to_string();
    let listed: Result<Vec<_>, _> = store.list(Some(&dir)).try_collect().await;
    let Ok(listed) = listed else { return };
    let mut orphans = Vec::new();
    for m in listed {
        let Some(name) = m.location.filename().map(str::to_string) else {
            continue;
        };
        if foreign && name.ends_with(".parquet") && !layout::is_forcelake_file(&name) {
            orphans.push(m.location.to_string());
            continue;
        }
        let Some(owner) = layout::data_file_chunk(&name) else {
            continue;
        };
        if owner == chunk_id {
            if !name.starts_with(&format!("{chunk_id}-{keep_attempt}-")) {
                orphans.push(m.location.to_string());
            }
            continue;
        }
        // An uncommitted chunk of the same kind inside this window, left long enough ago that
        // no live writer can still own it (a live writer of another kind, e.g. an incremental
        // run beside a backfill, must never lose its files before it commits).
        let Some(other) = ChunkId::parse(owner) else {
            continue;
        };
        // Same start too: an earlier attempt of this very window whose end moved on (a partial
        // "today" chunk of a crashed run) — no live writer of the same kind starts there.
        let stale = Utc::now() - m.last_modified > chrono::Duration::minutes(15)
            || other.start == chunk.start;
        if stale
            && other.kind == chunk.kind
            && other.tag == chunk.tag
            && other.start >= chunk.start
            && other.end <= chunk.end
            && store
                .head(&layout::manifest_path(object, &other))
                .await
                .is_err()
        {
            orphans.push(m.location.to_string());
        }
    }
    if !orphans.is_empty() {
        tracing::info!(object, chunk = %chunk_id, files = orphans.len(), "removing files of earlier, uncommitted attempts (and, for a replaced day, files another tool wrote there)");
    }
    delete_quietly(store, orphans.into_iter()).await;
}
