//! One REST query window end to end: query pages → decode → day split → committer.
//!
//! Fetching and decoding overlap: the async side reads each page's envelope to request the
//! next page while a blocking thread decodes and encodes the previous ones (bounded channel).

use std::sync::Arc;

use bytes::Bytes;

use crate::commit::committer::Committer;
use crate::commit::days::{decode_schema, pending_days, row_days, Done};
use crate::commit::job::{attempt_token, ChunkJob, ChunkOutcome, Tally};
use crate::context::{Budget, Context, SyncError};
use crate::decode::PageDecoder;
use crate::salesforce::soql;
use crate::schema::ObjectSchema;
use crate::sink::layout::ChunkId;
use crate::sink::writer::{ChunkFileWriter, LocalPart, ParquetSettings};
use arrow::array::RecordBatch;
use tokio::sync::mpsc::UnboundedSender;

/// Rows per Arrow batch handed to the Parquet writer: in practice one page (Salesforce pages
/// hold at most 2,000 records), so a chunk never holds more than a page's worth of Arrow data.
const BATCH_ROWS: usize = 1000;

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
    let endpoint = if job.include_deleted {
        "queryAll"
    } else {
        "query"
    };
    let commit = Committer::for_window(
        ctx,
        job,
        &days,
        &skip,
        &attempt,
        &q,
        endpoint.to_string(),
        0,
    );
    if job.expected == Some(0) {
        // Counted empty when planned: nothing to fetch.
        let mut tally = Tally::default();
        commit.empty(first, days.len(), &mut tally).await?;
        return Ok(tally.outcome(0, false));
    }
    let what = format!("{} {}", obj.object, window);

    // Decoder + encoder on a blocking thread, fed through a bounded channel; finished days go
    // to the committer as the stream passes them.
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Done>();
    // A page is requested only while fewer than `pages_ahead` pages wait or are being decoded.
    let ahead = Arc::new(tokio::sync::Semaphore::new(job.pages_ahead.max(1)));
    let decoded = ahead.clone();
    let encoder = spawn_encoder(job, &days, &skip, first, &scratch.dir, rx, done_tx, decoded);

    let fetcher = crate::fetch::query::Fetcher {
        client,
        budget,
        what: &what,
        object: &obj.object,
        all: job.include_deleted,
        requests: &commit.requests,
        ahead: Some(ahead),
    };
    let fetch = fetch_pages(fetcher, job, &window, &q, tx);
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
        crate::fetch::query::FetchEnd::Done { total_size } => total_size,
        crate::fetch::query::FetchEnd::BudgetSpent => {
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

/// The decoder and encoder of a window on a blocking thread: pages from `rx` are decoded,
/// cut at UTC midnights and written; each day the stream passes goes to `done` (a permit of
/// `decoded` is given back per page, so the fetcher stays `pages_ahead` pages ahead).
#[allow(clippy::too_many_arguments)]
fn spawn_encoder(
    job: &ChunkJob,
    days: &[ChunkId],
    skip: &[bool],
    first: usize,
    tmp: &std::path::Path,
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
    done_tx: UnboundedSender<Done>,
    decoded: Arc<tokio::sync::Semaphore>,
) -> tokio::task::JoinHandle<Result<Tail, SyncError>> {
    let enc_obj = job.object.clone();
    let enc_settings = job.settings.clone();
    let enc_tmp = tmp.to_path_buf();
    let enc_days = days.to_vec();
    let enc_skip = skip.to_vec();
    tokio::task::spawn_blocking(move || -> Result<Tail, SyncError> {
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
    })
}

/// Fetches a window's pages into `tx`: one query, or, when the field list is too long for
/// one request URI, several joined by Id.
async fn fetch_pages(
    mut fetcher: crate::fetch::query::Fetcher<'_>,
    job: &ChunkJob,
    window: &ChunkId,
    q: &str,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) -> Result<crate::fetch::query::FetchEnd, SyncError> {
    let obj = &job.object;
    let groups = crate::fetch::query::field_groups(
        fetcher.client,
        obj,
        window.start,
        window.end,
        job.include_deleted,
        crate::fetch::query::MAX_URI,
    );
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
