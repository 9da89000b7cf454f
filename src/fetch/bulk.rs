//! A query window fetched by one Bulk API 2.0 query job: create the job (no ORDER BY), poll its
//! state with a gentle exponential backoff, read its CSV result pages by `Sforce-Locator` as byte
//! streams into the CSV decoder, route the unordered rows to their UTC days — spilling them to
//! one local Arrow IPC file per window whenever the rows held pass the window's memory share,
//! so memory stays bounded however many days the job spans — and, once every page is read and
//! the rows equal both the job's `numberRecordsProcessed` and the sum of the pages'
//! `Sforce-NumberOfRecords`, write and commit the window's days in order with the same
//! committer as REST windows. A job given up on (an error, a timeout) is aborted.

use std::io::{BufWriter, Seek};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arrow::array::{RecordBatch, UInt32Array};
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use backon::BackoffBuilder;
use bytes::Bytes;
use futures::StreamExt;

use crate::commit::committer::Committer;
use crate::commit::days::Done;
use crate::commit::job::{ChunkJob, ChunkOutcome};
use crate::config::Api;
use crate::context::{Budget, Context, SyncError};
use crate::decode::CsvDecoder;
use crate::salesforce::{soql, SfError};
use crate::schema::ObjectSchema;
use crate::sink::layout::ChunkId;
use crate::sink::writer::ChunkFileWriter;

/// `maxRecords` of a results request: pages are streamed, so their size costs no memory; a
/// page is one request.
pub const RESULTS_PAGE: u64 = 100_000;

/// How much each wait between two polls of a job grows (from 1 s, up to 15 s).
const POLL_GROWTH: f32 = 1.25;

/// Rows per decoded batch of a Bulk window.
const BATCH_ROWS: usize = 8_192;

/// How long a job may take to complete before it is aborted and the window fails
/// (`FORCELAKE_BULK_JOB_DEADLINE_S` overrides it, for tests).
const JOB_DEADLINE: Duration = Duration::from_secs(3 * 3600);

fn job_deadline() -> Duration {
    std::env::var("FORCELAKE_BULK_JOB_DEADLINE_S")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(JOB_DEADLINE)
}

/// Errors with which Salesforce refuses to run a Bulk query on an object or its fields.
fn is_refusal(e: &SfError) -> bool {
    matches!(e, SfError::Api { code, message, .. }
        if code == "INVALIDENTITY"
            || code == "FUNCTIONALITY_NOT_ENABLED"
            || (code == "API_ERROR" && (message.contains("not supported") || message.contains("Implementation restriction"))))
}

fn is_job_limit(e: &SfError) -> bool {
    matches!(e, SfError::Api { code, message, .. }
        if code == "LIMIT_EXCEEDED" || message.contains("Max bulk v2 query jobs"))
}

/// Runs one attempt of a Bulk window; in `auto`, what Bulk cannot do (a refused object, a
/// failed job, the job allowance) is done over REST instead.
pub async fn run_window(
    ctx: &Context,
    budget: &Budget,
    job: &ChunkJob,
) -> Result<ChunkOutcome, SyncError> {
    let obj = &job.object;
    // `prepare` refuses these in `bulk`; in `auto` they are planned for REST
    if let Some(why) = obj.bulk_obstacle() {
        return instead(
            ctx,
            budget,
            job,
            SyncError::BulkRefused {
                object: obj.object.clone(),
                message: why,
            },
        )
        .await;
    }
    if ctx.config.sync.api == Api::Auto && ctx.bulk.is_refused(&obj.object) {
        return rest(ctx, budget, job).await;
    }
    match attempt(ctx, budget, job).await {
        Err(SyncError::Salesforce(e)) if is_refusal(&e) => {
            ctx.bulk.refuse(&obj.object);
            let e = SyncError::BulkRefused {
                object: obj.object.clone(),
                message: e.to_string(),
            };
            instead(ctx, budget, job, e).await
        }
        Err(SyncError::Salesforce(e)) if is_job_limit(&e) => {
            ctx.bulk.spent();
            instead(
                ctx,
                budget,
                job,
                SyncError::BulkAllowance {
                    message: e.to_string(),
                },
            )
            .await
        }
        Err(e @ (SyncError::BulkAllowance { .. } | SyncError::BulkJobFailed { .. })) => {
            instead(ctx, budget, job, e).await
        }
        other => other,
    }
}

/// What Bulk could not do: over REST in `auto` (saying why), else the error — except a failed
/// job in `bulk`, whose error is returned so the window is retried with a new job.
async fn instead(
    ctx: &Context,
    budget: &Budget,
    job: &ChunkJob,
    why: SyncError,
) -> Result<ChunkOutcome, SyncError> {
    if ctx.config.sync.api != Api::Auto {
        return Err(why);
    }
    let what = match &why {
        SyncError::BulkRefused { .. } => {
            "Bulk API 2.0 refused the object; it is fetched over REST for the rest of this run"
        }
        SyncError::BulkAllowance { .. } => "no new Bulk job: the window is fetched over REST",
        _ => "the Bulk job failed; the window is fetched over REST",
    };
    tracing::warn!(object = %job.object.object, reason = %why, "{what}");
    rest(ctx, budget, job).await
}

async fn rest(ctx: &Context, budget: &Budget, job: &ChunkJob) -> Result<ChunkOutcome, SyncError> {
    crate::fetch::rest::run_chunk(ctx, budget, job).await
}

/// What the async side tells the decoder thread.
enum Msg {
    Page,
    Bytes(Bytes),
    /// The page ended; it said it held this many records.
    PageEnd(u64),
    /// Every page was read (each held what it announced): the job processed this many records.
    Finish {
        processed: u64,
    },
}

/// Aborts the job unless disarmed (a job given up on must not keep running).
struct AbortGuard<'a> {
    ctx: &'a Context,
    id: String,
    what: String,
    armed: bool,
}

impl AbortGuard<'_> {
    async fn abort(mut self) {
        self.armed = false;
        if let Err(e) = self.ctx.client.abort_job(&self.id, &self.what).await {
            tracing::warn!(job = %self.id, error = %e, "could not abort the Bulk job");
        } else {
            tracing::info!(job = %self.id, "Bulk job aborted");
        }
    }
}

impl Drop for AbortGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            // Cancelled mid-poll (the run is stopping): abort without waiting for the answer.
            let client = self.ctx.client.clone();
            let (id, what) = (self.id.clone(), self.what.clone());
            if let Ok(h) = tokio::runtime::Handle::try_current() {
                h.spawn(async move {
                    let _ = client.abort_job(&id, &what).await;
                });
            }
        }
    }
}

async fn attempt(
    ctx: &Context,
    budget: &Budget,
    job: &ChunkJob,
) -> Result<ChunkOutcome, SyncError> {
    let obj = &job.object;
    if job.expected == Some(0) {
        return rest(ctx, budget, job).await; // nothing to fetch: no job
    }
    let Some((days, skip, first)) = crate::commit::days::pending_days(&ctx.store, job).await?
    else {
        return Ok(ChunkOutcome::AlreadyCommitted { requests: 0 });
    };
    let window = ChunkId {
        start: days[first].start,
        ..job.chunk.clone()
    };
    // A job's pages are read whole once it exists: start one only if the run's budget holds
    // it (or nothing was spent yet, so a small query_limit cannot stall the object forever).
    let pages = job.expected.unwrap_or(0).div_ceil(RESULTS_PAGE).max(1);
    if budget.used() > 0 && budget.remaining() < 1 + pages {
        return Ok(ChunkOutcome::BudgetSpent {
            requests: 0,
            rows: 0,
            chunks: 0,
        });
    }
    if !budget.try_take() {
        return Ok(ChunkOutcome::BudgetSpent {
            requests: 0,
            rows: 0,
            chunks: 0,
        });
    }
    ctx.bulk
        .take_job(&ctx.client, ctx.config.sync.api_budget_percent)
        .await?;
    let fields = obj.bulk_select_list();
    let q = soql::bulk_query(
        &obj.object,
        &fields,
        &obj.cursor_field,
        obj.cursor_is_date,
        window.start,
        window.end,
    );
    let what = format!("{} {window} (Bulk job)", obj.object);
    let attempt_id = crate::commit::job::attempt_token();
    let endpoint = if job.include_deleted {
        "bulk:queryAll"
    } else {
        "bulk:query"
    };
    // The manifests' api_requests: every request of the job so far goes to the first day.
    let commit = Committer::for_window(
        ctx,
        job,
        &days,
        &skip,
        &attempt_id,
        &q,
        endpoint.to_string(),
        1,
    );
    let requests = &commit.requests;
    let created = ctx
        .client
        .create_query_job(&q, job.include_deleted, &what)
        .await?;
    let guard = AbortGuard {
        ctx,
        id: created.id.clone(),
        what: what.clone(),
        armed: true,
    };
    tracing::debug!(object = %obj.object, window = %window, job = %created.id, "Bulk job created");

    let info = wait_for_job(guard, budget, requests, &obj.object, &window).await?;
    let processed = info.number_records_processed;

    // Decoder, router and writer on a blocking thread; committed days come back in order.
    let (tx, rx) = tokio::sync::mpsc::channel::<Msg>(8);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Done>();
    // `Ok(None)`: the stream ended before every page was read (the fetch says why).
    let decoder = spawn_decoder(job, &days, &skip, &ctx.scratch.dir, rx, done_tx);

    let fetch = stream_results(ctx, budget, requests, &created.id, &what, processed, tx);
    let (fetched, (tally, failed)) = tokio::join!(fetch, commit.drain(&mut done_rx));
    let decoded = decoder
        .await
        .map_err(|e| SyncError::Internal(format!("{what}: decoder task failed: {e}")))?;
    if let Some(e) = failed {
        return Err(e);
    }
    // A decoder error explains a fetch that stopped early; a stream that ended early is
    // explained by the fetch's error (a dropped connection: retried).
    let rows = match decoded? {
        Some(rows) => rows,
        None => {
            fetched?;
            return Err(SyncError::Internal(format!(
                "{what}: the results stream ended early"
            )));
        }
    };
    tracing::debug!(object = %obj.object, window = %window, rows, job = %created.id, "Bulk window committed");
    Ok(tally.outcome(requests.load(Ordering::Relaxed), false))
}

/// Streams a finished job's result pages to the decoder, each page's bytes between `Page` and
/// `PageEnd` (with its `Sforce-NumberOfRecords`), then `Finish`. Returns early, without error,
/// when the decoder has stopped (its error is reported).
async fn stream_results(
    ctx: &Context,
    budget: &Budget,
    requests: &AtomicU64,
    job_id: &str,
    what: &str,
    processed: u64,
    tx: tokio::sync::mpsc::Sender<Msg>,
) -> Result<(), SyncError> {
    let mut locator: Option<String> = None;
    loop {
        budget.force_take();
        requests.fetch_add(1, Ordering::Relaxed);
        let page = ctx
            .client
            .job_results(&job_id, locator.as_deref(), RESULTS_PAGE, what)
            .await?;
        let next = page.next.clone();
        let expected = page.records;
        if tx.send(Msg::Page).await.is_err() {
            return Ok(()); // the decoder stopped: its error is reported
        }
        let mut stream = page.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| crate::salesforce::transport(what, &e))?;
            if tx.send(Msg::Bytes(chunk)).await.is_err() {
                return Ok(());
            }
        }
        if tx.send(Msg::PageEnd(expected)).await.is_err() {
            return Ok(());
        }
        match next {
            Some(l) => locator = Some(l),
            None => break,
        }
    }
    let _ = tx.send(Msg::Finish { processed }).await;
    drop(tx);
    Ok(())
}

/// The decoder, day router and writer of a Bulk job's results on a blocking thread: CSV pages
/// from `rx` (each checked against its `Sforce-NumberOfRecords`), routed to their days, and
/// written day by day into `done_tx` once the whole result is in. `Ok(None)`: the stream ended
/// before every page was read.
fn spawn_decoder(
    job: &ChunkJob,
    days: &[ChunkId],
    skip: &[bool],
    tmp: &std::path::Path,
    mut rx: tokio::sync::mpsc::Receiver<Msg>,
    done_tx: tokio::sync::mpsc::UnboundedSender<Done>,
) -> tokio::task::JoinHandle<Result<Option<u64>, SyncError>> {
    let dec_obj = job.object.clone();
    let dec_days = days.to_vec();
    let dec_skip = skip.to_vec();
    let settings = job.settings.clone();
    let tmp = tmp.to_path_buf();
    let cap = job.memory_share / 2;
    tokio::task::spawn_blocking(move || -> Result<Option<u64>, SyncError> {
        let mut router = DayRouter::new(&dec_obj, &dec_days, &dec_skip, cap, &tmp);
        let (schema, _) = crate::commit::days::decode_schema(&dec_obj);
        let mut dec = CsvDecoder::new(&schema);
        let mut rows = 0u64;
        while let Some(m) = rx.blocking_recv() {
            match m {
                Msg::Page => dec.start_page(),
                Msg::Bytes(b) => {
                    let mut rest = &b[..];
                    while !rest.is_empty() {
                        rest = &rest[dec.feed_until(rest, BATCH_ROWS)?..];
                        if dec.buffered_rows() >= BATCH_ROWS {
                            router.push(dec.finish_batch()?)?;
                        }
                    }
                }
                Msg::PageEnd(announced) => {
                    let n = dec.end_page()?;
                    if n != announced {
                        return Err(crate::decode::DecodeError::Malformed {
                            object: dec_obj.object.clone(),
                            message: format!("a results page held {n} rows but Sforce-NumberOfRecords said {announced} (cut short)"),
                            truncated: true,
                        }
                        .into());
                    }
                    rows += n;
                }
                Msg::Finish { processed } => {
                    if dec.buffered_rows() > 0 {
                        router.push(dec.finish_batch()?)?;
                    }
                    // every page held what its Sforce-NumberOfRecords said, so their sum is `rows`
                    if rows != processed {
                        return Err(SyncError::CountMismatch {
                            object: dec_obj.object.clone(),
                            chunk: format!("{} (Bulk job)", dec_days[0]),
                            received: rows,
                            total: processed,
                        });
                    }
                    router.write_days(&settings, &done_tx)?;
                    return Ok(Some(rows));
                }
            }
        }
        Ok(None)
    })
}

/// Polls a created job (its `guard` aborts it if this is cancelled) with a gentle exponential
/// backoff until it ends; a job that fails, or is not done within the deadline (then aborted),
/// is an error.
async fn wait_for_job(
    mut guard: AbortGuard<'_>,
    budget: &Budget,
    requests: &std::sync::atomic::AtomicU64,
    object: &str,
    window: &ChunkId,
) -> Result<crate::salesforce::bulk::JobInfo, SyncError> {
    // Poll with a gentle exponential backoff until the job ends: a job's end is seen at most
    // a quarter of its run time late (doubling would wait up to its whole run time again),
    // for a few more polls on long jobs. The waits are counted from the job's creation, not
    // from each poll's answer, so round trips do not stretch the schedule.
    let started = std::time::Instant::now();
    let mut next_poll = started;
    let deadline = job_deadline();
    let mut delays = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_factor(POLL_GROWTH)
        .with_max_delay(Duration::from_secs(15))
        .without_max_times()
        .build();
    let info = loop {
        let d = delays.next().unwrap_or(Duration::from_secs(15));
        // (after a slow answer, the next poll still waits a little)
        next_poll = (next_poll + d).max(std::time::Instant::now() + d / 4);
        if next_poll - started > deadline {
            let e = SyncError::BulkJobFailed {
                object: object.to_string(),
                window: window.to_string(),
                job: guard.id.clone(),
                state: "unfinished".into(),
                message: Some(format!(
                    "not complete after {} s; aborted",
                    deadline.as_secs()
                )),
            };
            guard.abort().await;
            return Err(e);
        }
        tokio::time::sleep_until(next_poll.into()).await;
        budget.force_take();
        requests.fetch_add(1, Ordering::Relaxed);
        let info = match guard.ctx.client.job_info(&guard.id, &guard.what).await {
            Ok(i) => i,
            Err(e) => {
                guard.abort().await;
                return Err(e.into());
            }
        };
        if info.is_terminal() {
            break info;
        }
    };
    guard.armed = false; // a terminal job needs no abort
    if info.state != "JobComplete" {
        return Err(SyncError::BulkJobFailed {
            object: object.to_string(),
            window: window.to_string(),
            job: info.id,
            state: info.state,
            message: info.error_message,
        });
    }
    Ok(info)
}

/// Routes a window's unordered rows to their days, holding at most `cap` bytes of them in
/// memory and spilling the rest to one local Arrow IPC file.
struct DayRouter<'a> {
    obj: &'a ObjectSchema,
    days: &'a [ChunkId],
    skip: &'a [bool],
    cursor_col: usize,
    written: Vec<usize>,
    cap: usize,
    tmp: &'a std::path::Path,
    held: Vec<Vec<RecordBatch>>,
    held_bytes: usize,
    spill: Option<FileWriter<BufWriter<std::fs::File>>>,
    /// Spilled batch indexes per day.
    spilled: Vec<Vec<usize>>,
    batches: usize,
    rows: Vec<u64>,
}

impl<'a> DayRouter<'a> {
    fn new(
        obj: &'a ObjectSchema,
        days: &'a [ChunkId],
        skip: &'a [bool],
        cap: usize,
        tmp: &'a std::path::Path,
    ) -> Self {
        let (_, cursor_col) = crate::commit::days::decode_schema(obj);
        Self {
            obj,
            days,
            skip,
            cursor_col,
            written: (0..obj.written).collect(),
            cap: cap.max(4 << 20),
            tmp,
            held: vec![Vec::new(); days.len()],
            held_bytes: 0,
            spill: None,
            spilled: vec![Vec::new(); days.len()],
            batches: 0,
            rows: vec![0; days.len()],
        }
    }

    fn arrow_err(&self, e: arrow::error::ArrowError) -> SyncError {
        SyncError::Internal(format!(
            "{}: routing Bulk rows by day: {e}",
            self.obj.object
        ))
    }

    /// Sorts a batch's rows by day (one `take`) and holds each day's run of them.
    fn push(&mut self, batch: RecordBatch) -> Result<(), SyncError> {
        let day_of = crate::commit::days::row_days(self.obj, self.days, self.cursor_col, &batch)?;
        let mut order: Vec<u32> = (0..batch.num_rows() as u32)
            .filter(|&i| !self.skip[day_of[i as usize]])
            .collect();
        order.sort_by_key(|&i| day_of[i as usize]);
        if order.is_empty() {
            return Ok(());
        }
        let projected = batch
            .project(&self.written)
            .map_err(|e| self.arrow_err(e))?;
        let indices = UInt32Array::from(order.clone());
        let sorted = arrow::compute::take_record_batch(&projected, &indices)
            .map_err(|e| self.arrow_err(e))?;
        self.held_bytes += sorted.get_array_memory_size();
        let mut i = 0;
        while i < order.len() {
            let d = day_of[order[i] as usize];
            let mut j = i + 1;
            while j < order.len() && day_of[order[j] as usize] == d {
                j += 1;
            }
            self.held[d].push(sorted.slice(i, j - i));
            self.rows[d] += (j - i) as u64;
            i = j;
        }
        if self.held_bytes > self.cap {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes every day's held rows to the spill file.
    fn flush(&mut self) -> Result<(), SyncError> {
        if self.spill.is_none() {
            let f = tempfile::tempfile_in(self.tmp).map_err(|e| {
                SyncError::Internal(format!(
                    "{}: cannot create a spill file in {}: {e}",
                    self.obj.object,
                    self.tmp.display()
                ))
            })?;
            self.spill = Some(
                FileWriter::try_new(BufWriter::with_capacity(1 << 20, f), &self.obj.arrow)
                    .map_err(|e| self.arrow_err(e))?,
            );
        }
        let w = self.spill.as_mut().expect("created above");
        for d in 0..self.held.len() {
            // the held slices are written as they are: joining them first would hold a
            // second copy of every held row while the spill is written
            for batch in std::mem::take(&mut self.held[d]) {
                w.write(&batch).map_err(|e| {
                    SyncError::Internal(format!("{}: writing the spill file: {e}", self.obj.object))
                })?;
                self.spilled[d].push(self.batches);
                self.batches += 1;
            }
        }
        self.held_bytes = 0;
        Ok(())
    }

    /// Writes each day's rows (spilled, then held) into its Parquet files, in day order, and
    /// hands finished days — and runs of empty days — to the committer.
    fn write_days(
        mut self,
        settings: &crate::sink::writer::ParquetSettings,
        out: &tokio::sync::mpsc::UnboundedSender<Done>,
    ) -> Result<(), SyncError> {
        let mut reader = match self.spill.take() {
            None => None,
            Some(mut w) => {
                tracing::info!(object = %self.obj.object, batches = self.batches, held_mib = self.cap >> 20, "Bulk rows spilled to local disk while the job's results were read (the rows held in memory are capped)");
                w.finish().map_err(|e| {
                    SyncError::Internal(format!(
                        "{}: finishing the spill file: {e}",
                        self.obj.object
                    ))
                })?;
                let mut f = w
                    .into_inner()
                    .map_err(|e| SyncError::Internal(e.to_string()))?
                    .into_inner()
                    .map_err(|e| SyncError::Internal(e.to_string()))?;
                f.rewind().map_err(|e| SyncError::Internal(e.to_string()))?;
                Some(FileReader::try_new(f, None).map_err(|e| self.arrow_err(e))?)
            }
        };
        let mut empty_from: Option<usize> = None;
        for d in 0..self.days.len() {
            if self.rows[d] == 0 {
                empty_from.get_or_insert(d);
                continue;
            }
            if let Some(from) = empty_from.take() {
                let _ = out.send(Done::Empty { from, to: d });
            }
            let id = self.days[d].to_string();
            let mut w = ChunkFileWriter::new(
                self.obj.arrow.clone(),
                settings,
                &self.obj.object,
                &id,
                self.tmp,
            );
            if let Some(r) = reader.as_mut() {
                for &b in &self.spilled[d] {
                    r.set_index(b).map_err(|e| self.arrow_err(e))?;
                    match r.next() {
                        Some(batch) => w.write(&batch.map_err(|e| self.arrow_err(e))?)?,
                        None => {
                            return Err(SyncError::Internal(format!(
                                "{}: spill batch {b} is missing",
                                self.obj.object
                            )))
                        }
                    }
                }
            }
            for b in std::mem::take(&mut self.held[d]) {
                w.write(&b)?;
            }
            let _ = out.send(Done::Day {
                idx: d,
                parts: w.finish()?,
                rows: self.rows[d],
            });
        }
        if let Some(from) = empty_from {
            let _ = out.send(Done::Empty {
                from,
                to: self.days.len(),
            });
        }
        Ok(())
    }
}
