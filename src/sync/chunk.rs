//! One chunk end to end: query pages → decode → Parquet temp files → upload → manifest.
//!
//! Fetching and decoding overlap: the async side reads each page's envelope to request the
//! next page while a blocking thread decodes and encodes the previous ones (bounded channel).
//! The manifest is written last with a create-only put; files of a losing or crashed attempt
//! are removed.

use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use rand::Rng;

use crate::decode::PageDecoder;
use crate::salesforce::soql;
use crate::schema::ObjectSchema;
use crate::sink::delta::DeltaTables;
use crate::sink::layout::{self, ChunkId};
use crate::sink::manifest::{self, FileEntry, Manifest};
use crate::sink::store::delete_quietly;
use crate::sink::writer::{self, ChunkFileWriter, LocalPart, ParquetSettings};
use crate::sync::gate::{self, BackfillRule, GateOutcome, LogCache};
use crate::sync::{Budget, Context, Scratch, SyncError};
use crate::timefmt::rfc3339;
use arrow::array::RecordBatch;
use tokio::sync::mpsc::UnboundedSender;

/// Day chunks of one window committed at once: their store round trips overlap (a sparse
/// window of hundreds of days on an object store would otherwise wait for each in turn).
pub const COMMITS_IN_FLIGHT: usize = 8;

/// Rows per Arrow batch handed to the Parquet writer: in practice one page (Salesforce pages
/// hold at most 2,000 records), so a chunk never holds more than a page's worth of Arrow data.
const BATCH_ROWS: usize = 1000;

/// Parquet settings of a run: each chunk in flight gets an equal share of
/// `sync.memory_limit_mb`; a quarter of it is for the row group being built, the rest for
/// its pages in flight, the decoded batch and the encoder's working buffers.
pub fn parquet_settings(config: &crate::config::Config) -> ParquetSettings {
    let share = (config.sync.memory_limit_mb << 20) / config.sync.concurrency.max(1);
    ParquetSettings::new(config.destination.compression, share / 4)
}

/// Pages a chunk fetches ahead of its decoder (see [`ChunkJob::pages_ahead`]).
pub fn pages_ahead(concurrency: usize) -> usize {
    if concurrency > 1 {
        1
    } else {
        2
    }
}

/// What one chunk needs to run.
#[derive(Clone)]
pub struct ChunkJob {
    pub object: Arc<ObjectSchema>,
    pub chunk: ChunkId,
    pub include_deleted: bool,
    pub settings: ParquetSettings,
    /// Pages fetched ahead of the decoder: 1 when other chunks run beside this one (they keep
    /// the cores busy while it waits for its next page), 2 when it runs alone.
    pub pages_ahead: usize,
    /// Backfill: the planned window this chunk (or its QUERY_TIMEOUT halves) replaces.
    pub replaces: Option<(chrono::DateTime<Utc>, chrono::DateTime<Utc>)>,
    /// Records the plan counted in the window (`Some(0)`: nothing to fetch, no query).
    pub expected: Option<u64>,
    /// Fetched by a Bulk API 2.0 job rather than a REST query.
    pub bulk: bool,
    /// This window's share of `sync.memory_limit_mb`, in bytes.
    pub memory_share: usize,
}

impl ChunkJob {
    /// A job for `chunk` of `object` with the run's settings.
    pub fn new(object: Arc<ObjectSchema>, chunk: ChunkId, config: &crate::config::Config) -> Self {
        Self {
            object,
            chunk,
            include_deleted: config.sync.include_deleted,
            settings: parquet_settings(config),
            pages_ahead: pages_ahead(config.sync.concurrency),
            replaces: None,
            expected: None,
            bulk: config.sync.api == crate::config::Api::Bulk,
            memory_share: (config.sync.memory_limit_mb << 20) / config.sync.concurrency.max(1),
        }
    }
}

/// How a window ended (errors are `Err`; day chunks committed before an error stay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// `chunks` day chunks committed (with `rows` records).
    Committed {
        rows: u64,
        requests: u64,
        chunks: u64,
    },
    /// Every day of the window was already committed (by an earlier run or another worker).
    AlreadyCommitted { requests: u64 },
    /// The object's query budget ran out mid-window: the days passed before are committed.
    BudgetSpent {
        requests: u64,
        rows: u64,
        chunks: u64,
    },
}

/// A random token that makes this attempt's file names unique.
pub fn attempt_token() -> String {
    format!("{:08x}", rand::rng().random::<u32>())
}

/// The day chunks of a window: one per UTC day it touches (the first and last may be parts).
pub fn day_chunks(window: &ChunkId) -> Vec<ChunkId> {
    crate::sync::plan::split_days(window.start, window.end)
        .into_iter()
        .map(|(a, b)| ChunkId {
            start: a,
            end: b,
            ..window.clone()
        })
        .collect()
}

/// A window's day chunks, which of them are committed already, and the first one still to
/// do; `None` when all are done. For a backfill: the days this backfill committed; for the
/// other kinds: the days chunks of any kind cover (what another run covered is not fetched
/// again).
pub(super) async fn pending_days(
    store: &Arc<dyn ObjectStore>,
    job: &ChunkJob,
) -> Result<Option<(Vec<ChunkId>, Vec<bool>, usize)>, SyncError> {
    let days = day_chunks(&job.chunk);
    let covered: Vec<_> = manifest::list_chunks(store.as_ref(), &job.object.object)
        .await?
        .into_iter()
        .filter(|c| c.covers_for(&job.chunk))
        .map(|c| (c.start, c.end))
        .collect();
    let skip: Vec<bool> = days
        .iter()
        .map(|d| crate::sync::plan::subtract(d.start, d.end, &covered).is_empty())
        .collect();
    Ok(skip
        .iter()
        .position(|s| !s)
        .map(|first| (days, skip, first)))
}

/// What the decoder thread hands the committer, in cursor order.
pub(super) enum Done {
    /// A day the stream has passed: its rows are complete.
    Day {
        idx: usize,
        parts: Vec<LocalPart>,
        rows: u64,
    },
    /// Days `from..to` without a record.
    Empty { from: usize, to: usize },
}

/// What the decoder thread returns at the end of the stream.
struct Tail {
    /// The day still open (complete only once the window's `totalSize` checks out).
    open: Option<(usize, Vec<LocalPart>, u64)>,
    /// The first day not yet handed over.
    next: usize,
    rows: u64,
}

/// Runs one attempt of a query window: one query over `[start, end)` ordered by cursor and Id,
/// paged by `nextRecordsUrl`, its decoded stream cut at UTC midnights into day chunks. A day
/// is committed (files first, create-only manifest last) as soon as the stream passes it — its
/// rows are complete, since they arrive in cursor order — and the last day once the rows
/// received equal `totalSize`; days without records are covered by manifests without files
/// (one per run of days; one per day for a backfill, which supersedes each day's older
/// chunks). A crash or error loses only the days not committed; a rerun fetches just those.
/// A window planned empty (`expected == Some(0)`) costs no query.
pub async fn run_chunk(
    ctx: &Context,
    budget: &Budget,
    job: &ChunkJob,
) -> Result<ChunkOutcome, SyncError> {
    let (client, store, scratch) = (&ctx.client, &ctx.store, &ctx.scratch);
    let obj = &job.object;
    let Some((days, skip, first)) = pending_days(store, job).await? else {
        return Ok(ChunkOutcome::AlreadyCommitted { requests: 0 });
    };
    let attempt = attempt_token();
    let started_at = Utc::now();
    let window = ChunkId {
        start: days[first].start,
        ..job.chunk.clone()
    };
    let q = soql::chunk_query(
        &obj.object,
        &obj.select_list(),
        &obj.cursor_field,
        obj.cursor_is_date,
        window.start,
        window.end,
    );
    let commit = Committer {
        store,
        scratch,
        delta: ctx.delta.as_deref(),
        log: &ctx.commit_log,
        org_id: client.org_id(),
        job,
        days: &days,
        skip: &skip,
        attempt: &attempt,
        started_at,
        soql: &q,
        endpoint: if job.include_deleted {
            "queryAll"
        } else {
            "query"
        }
        .to_string(),
        requests: Default::default(),
        attributed: Default::default(),
    };
    if job.expected == Some(0) {
        // Counted empty when planned: nothing to fetch.
        let mut tally = Tally::default();
        commit.empty(first, days.len(), &mut tally).await?;
        return Ok(tally.outcome(0, false));
    }
    let what = format!("{} {}", obj.object, window);

    // Decoder + encoder on a blocking thread, fed through a bounded channel; finished days go
    // to the committer as the stream passes them.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Done>();
    // A page is requested only while fewer than `pages_ahead` pages wait or are being decoded.
    let ahead = Arc::new(tokio::sync::Semaphore::new(job.pages_ahead.max(1)));
    let decoded = ahead.clone();
    let enc_obj = obj.clone();
    let enc_settings = job.settings.clone();
    let enc_tmp = scratch.dir.clone();
    let enc_days = days.clone();
    let enc_skip = skip.clone();
    let encoder = tokio::task::spawn_blocking(move || -> Result<Tail, SyncError> {
        // However this ends (done, or a bad value), the fetcher stops waiting for room.
        struct CloseOnDrop(Arc<tokio::sync::Semaphore>);
        impl Drop for CloseOnDrop {
            fn drop(&mut self) {
                self.0.close();
            }
        }
        let decoded = CloseOnDrop(decoded);
        let mut split = DaySplitter::new(
            &enc_obj,
            &enc_days,
            &enc_skip,
            first,
            &enc_settings,
            &enc_tmp,
        );
        let mut dec = PageDecoder::new(&split.decode_schema);
        while let Some(page) = rx.blocking_recv() {
            dec.decode_page(&page)?;
            drop(page);
            decoded.0.add_permits(1);
            if dec.buffered_rows() >= BATCH_ROWS {
                split.push(&dec.finish_batch()?, &done_tx)?;
            }
        }
        if dec.buffered_rows() > 0 {
            split.push(&dec.finish_batch()?, &done_tx)?;
        }
        split.finish()
    });

    let groups = crate::sync::fetch::field_groups(
        client,
        obj,
        window.start,
        window.end,
        job.include_deleted,
        crate::sync::fetch::MAX_URI,
    );
    let mut fetcher = crate::sync::fetch::Fetcher {
        client,
        budget,
        what: &what,
        object: &obj.object,
        all: job.include_deleted,
        requests: &commit.requests,
        ahead: Some(ahead),
    };
    let fetch = async {
        let r = if groups.len() == 1 {
            fetcher.single(&q, &tx).await
        } else {
            tracing::debug!(object = %obj.object, groups = groups.len(), "field list too long for one request URI: split query joined by Id");
            let queries: Vec<(String, Vec<String>)> = groups
                .iter()
                .map(|g| {
                    (
                        soql::chunk_query(
                            &obj.object,
                            &g.select,
                            &obj.cursor_field,
                            obj.cursor_is_date,
                            window.start,
                            window.end,
                        ),
                        g.keys.clone(),
                    )
                })
                .collect();
            fetcher.split(&queries, &tx).await
        };
        drop(tx);
        r
    };
    // Days are committed while the next pages are fetched.
    let (fetched, (mut tally, failed)) = tokio::join!(fetch, commit.drain(&mut done_rx));
    let requests = commit.requests.load(std::sync::atomic::Ordering::Relaxed);
    let tail = encoder
        .await
        .map_err(|e| SyncError::Internal(format!("{what}: encoder task failed: {e}")))?;
    if let Some(e) = failed {
        return Err(e);
    }
    let total_size = match fetched? {
        crate::sync::fetch::FetchEnd::Done { total_size } => total_size,
        crate::sync::fetch::FetchEnd::BudgetSpent => {
            tail?; // the open day is not complete: it is dropped
            return Ok(tally.outcome(requests, true));
        }
    };
    let tail = tail?;
    if tail.rows != total_size {
        return Err(SyncError::CountMismatch {
            object: obj.object.clone(),
            chunk: window.to_string(),
            received: tail.rows,
            total: total_size,
        });
    }
    let mut next = tail.next;
    if let Some((idx, parts, rows)) = tail.open {
        commit.day(idx, parts, rows, &mut tally).await?;
        next = idx + 1;
    }
    if next < days.len() {
        commit.empty(next, days.len(), &mut tally).await?;
    }
    tracing::debug!(object = %obj.object, window = %window, rows = tail.rows, days = days.len(), "window committed");
    Ok(tally.outcome(requests, false))
}

/// Day chunks a window attempt committed, or found committed by another writer.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) rows: u64,
    pub(super) committed: u64,
    pub(super) already: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.rows += other.rows;
        self.committed += other.committed;
        self.already += other.already;
    }

    pub(super) fn outcome(&self, requests: u64, budget_spent: bool) -> ChunkOutcome {
        match (budget_spent, self.committed) {
            (true, _) => ChunkOutcome::BudgetSpent {
                requests,
                rows: self.rows,
                chunks: self.committed,
            },
            (false, 0) => ChunkOutcome::AlreadyCommitted { requests },
            (false, n) => ChunkOutcome::Committed {
                rows: self.rows,
                requests,
                chunks: n,
            },
        }
    }
}

/// Cuts the decoded stream of a window into day chunks (on the decoder's thread).
struct DaySplitter<'a> {
    obj: &'a ObjectSchema,
    days: &'a [ChunkId],
    skip: &'a [bool],
    settings: &'a ParquetSettings,
    tmp: &'a std::path::Path,
    /// What the decoder reads: the written columns, plus the cursor when it is queried only.
    decode_schema: ObjectSchema,
    /// The cursor's column in decoded batches; the written columns come first.
    cursor_col: usize,
    open: Option<(usize, ChunkFileWriter, u64)>,
    next: usize,
    rows: u64,
}

impl<'a> DaySplitter<'a> {
    fn new(
        obj: &'a ObjectSchema,
        days: &'a [ChunkId],
        skip: &'a [bool],
        first: usize,
        settings: &'a ParquetSettings,
        tmp: &'a std::path::Path,
    ) -> Self {
        let (decode_schema, cursor_col) = decode_schema(obj);
        Self {
            obj,
            days,
            skip,
            settings,
            tmp,
            decode_schema,
            cursor_col,
            open: None,
            next: first,
            rows: 0,
        }
    }

    fn row_days(&self, batch: &RecordBatch) -> Result<Vec<usize>, SyncError> {
        row_days(self.obj, self.days, self.cursor_col, batch)
    }

    fn out_of_order(&self) -> SyncError {
        SyncError::Internal(format!(
            "{}: records came back out of {} order; the window is redone",
            self.obj.object, self.obj.cursor_field
        ))
    }

    /// Routes a batch's rows to their days; hands over every day the stream has passed.
    fn push(&mut self, batch: &RecordBatch, out: &UnboundedSender<Done>) -> Result<(), SyncError> {
        let n = batch.num_rows();
        self.rows += n as u64;
        let written: Vec<usize> = (0..self.obj.written).collect();
        let row_days = self.row_days(batch)?;
        let mut i = 0;
        while i < n {
            let idx = row_days[i];
            let mut j = i + 1;
            while j < n && row_days[j] == idx {
                j += 1;
            }
            match &self.open {
                Some((o, _, _)) if *o == idx => {}
                Some((o, _, _)) if idx < *o => return Err(self.out_of_order()),
                _ => {
                    if let Some((o, w, rows)) = self.open.take() {
                        let _ = out.send(Done::Day {
                            idx: o,
                            parts: w.finish()?,
                            rows,
                        });
                        self.next = o + 1;
                    }
                    if idx < self.next {
                        return Err(self.out_of_order());
                    }
                    if idx > self.next {
                        let _ = out.send(Done::Empty {
                            from: self.next,
                            to: idx,
                        });
                    }
                    let id = self.days[idx].to_string();
                    self.open = Some((
                        idx,
                        ChunkFileWriter::new(
                            self.obj.arrow.clone(),
                            self.settings,
                            &self.obj.object,
                            &id,
                            self.tmp,
                        ),
                        0,
                    ));
                }
            }
            if let Some((o, w, rows)) = &mut self.open {
                if !self.skip[*o] {
                    let part = batch
                        .slice(i, j - i)
                        .project(&written)
                        .map_err(|e| SyncError::Internal(e.to_string()))?;
                    w.write(&part)?;
                }
                *rows += (j - i) as u64;
            }
            i = j;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Tail, SyncError> {
        let open = match self.open.take() {
            Some((o, w, rows)) => Some((o, w.finish()?, rows)),
            None => None,
        };
        Ok(Tail {
            open,
            next: self.next,
            rows: self.rows,
        })
    }
}

/// The day index of every row (UTC days since the window's first day), in one pass over
/// the cursor column.
pub(super) fn row_days(
    obj: &ObjectSchema,
    days: &[ChunkId],
    cursor_col: usize,
    batch: &RecordBatch,
) -> Result<Vec<usize>, SyncError> {
    use arrow::array::{Array, AsArray};
    let first_day = days[0].start.timestamp().div_euclid(86_400);
    let col = batch.column(cursor_col);
    let outside = || {
        SyncError::Internal(format!(
            "{}: a record outside the window {}..{} (or without {}) came back; the window is redone",
            obj.object,
            crate::timefmt::rfc3339(days[0].start),
            crate::timefmt::rfc3339(days[days.len() - 1].end),
            obj.cursor_field
        ))
    };
    if col.null_count() > 0 {
        return Err(outside());
    }
    let stamps: Vec<i64> =
        if let Some(ts) = col.as_primitive_opt::<arrow::datatypes::TimestampMillisecondType>() {
            ts.values()
                .iter()
                .map(|v| v.div_euclid(86_400_000))
                .collect()
        } else if let Some(d) = col.as_primitive_opt::<arrow::datatypes::Date32Type>() {
            d.values().iter().map(|v| *v as i64).collect()
        } else {
            return Err(outside());
        };
    let n = days.len() as i64;
    stamps
        .into_iter()
        .map(|d| {
            let i = d - first_day;
            if (0..n).contains(&i) {
                Ok(i as usize)
            } else {
                Err(outside())
            }
        })
        .collect()
}

/// What a window's decoder reads: the written columns, plus the cursor when it is queried
/// only; and the cursor's column in decoded batches.
pub(super) fn decode_schema(obj: &ObjectSchema) -> (ObjectSchema, usize) {
    let mut decode_schema = obj.clone();
    decode_schema.written = obj.columns.len();
    decode_schema.arrow = Arc::new(arrow::datatypes::Schema::new(
        obj.columns
            .iter()
            .map(crate::schema::arrow_field)
            .collect::<Vec<_>>(),
    ));
    let cursor_col = obj
        .columns
        .iter()
        .position(|c| c.name == obj.cursor_field)
        .unwrap_or(obj.columns.len() - 1);
    (decode_schema, cursor_col)
}

/// Commits a window's day chunks: files first, then the create-only manifest.
pub(super) struct Committer<'a> {
    pub(super) store: &'a Arc<dyn ObjectStore>,
    pub(super) scratch: &'a Scratch,
    /// The object's Delta table, committed after each manifest (`table_format = "delta"`).
    pub(super) delta: Option<&'a DeltaTables>,
    /// Commit log entries read so far (see [`gate`]).
    pub(super) log: &'a LogCache,
    /// The org the run's token names, recorded in each manifest.
    pub(super) org_id: Option<String>,
    pub(super) job: &'a ChunkJob,
    pub(super) days: &'a [ChunkId],
    pub(super) skip: &'a [bool],
    pub(super) attempt: &'a str,
    pub(super) started_at: chrono::DateTime<Utc>,
    pub(super) soql: &'a str,
    /// `query` / `queryAll` (REST) or `bulk:query` / `bulk:queryAll` (a Bulk API 2.0 job).
    pub(super) endpoint: String,
    /// Query requests the window has sent so far, and those already written into manifests.
    pub(super) requests: std::sync::atomic::AtomicU64,
    pub(super) attributed: std::sync::atomic::AtomicU64,
}

impl Committer<'_> {
    /// Commits the days handed over until the sender is dropped, up to [`COMMITS_IN_FLIGHT`]
    /// at once (each day is its own commit; a store's round trips overlap, and the Delta
    /// commits of days committed together are grouped); after an error the rest are dropped
    /// (their temp files go with them). What it committed, and the first error.
    pub(super) async fn drain(
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

    pub(super) async fn day(
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
    pub(super) async fn empty(
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
