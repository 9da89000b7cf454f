//! The Delta Lake table of each object (SPEC §3 "The Delta table"): `<dest>/<Object>/` over the
//! same Parquet files, partitioned by `date`, with `_delta_log/` beside the day folders.
//!
//! The manifests stay the source of truth. After a chunk's manifest is committed, one Delta
//! commit adds the chunk's files and removes the files it supersedes (a backfill), with the
//! chunk id as a `txn` application id; [`DeltaTables::catch_up`] makes the commits a crash
//! prevented, comparing the table's files with the live manifests' files (so a file is never
//! added twice). Conflicts with other writers (log version already taken) are retried on a
//! fresh snapshot, a bounded number of times. The log is checkpointed every
//! [`CHECKPOINT_EVERY`] commits.
//!
//! Commits are grouped: the chunks of one object that wait while a commit to its table is
//! being made go into the next commit together (one log version, a `txn` per chunk), so a
//! sync of many sparse days makes fewer commits than days (about 280 for 730) and this
//! process's windows do not queue behind each other's single-day commits.
//!
//! `delta_kernel`'s API is synchronous: every call runs in `spawn_blocking`, with an engine
//! that runs its I/O on this process's Tokio runtime. The engine maps URL paths straight to
//! store paths, so its store is rooted at the bucket (or file system) root, not at the
//! destination prefix.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, Int64Array, RecordBatch, StringArray, StructArray};
use arrow::datatypes::{DataType as ArrowType, Field as ArrowField, Schema as ArrowSchema};
use chrono::NaiveDate;
use delta_kernel::committer::FileSystemCommitter;
use delta_kernel::engine::arrow_conversion::TryFromArrow;
use delta_kernel::engine::arrow_data::ArrowEngineData;
use delta_kernel::expressions::ColumnName;
use delta_kernel::expressions::{Expression, Predicate, Scalar};
use delta_kernel::schema::{DataType, PrimitiveType, StructField, StructType};
use delta_kernel::snapshot::{Snapshot, SnapshotRef};
use delta_kernel::transaction::create_table::create_table;
use delta_kernel::transaction::data_layout::DataLayout;
use delta_kernel::transaction::{
    CommitResult, CommittedTransaction, Transaction, UpdateTableOperation,
};
use delta_kernel::{EngineData, FileMeta, FilteredEngineData};
use delta_kernel_default_engine::executor::tokio::TokioMultiThreadExecutor;
use delta_kernel_default_engine::parquet::DataFileMetadata;
use delta_kernel_default_engine::{build_add_file_metadata, DefaultEngine, DefaultEngineBuilder};
use object_store::ObjectStore;
use url::Url;

pub use crate::schema::PARTITION_COLUMN;

mod current;
mod schema;
pub use self::current::{
    current_schema, CurrentAdd, CurrentChange, CurrentFile, CurrentRecord, CurrentView, CURRENT_DIR,
};
pub use self::schema::{decimal_differences, schema_diff, table_schema, NewColumn};

/// A checkpoint is written when this many commits have followed the last one, so that opening a
/// table reads one Parquet checkpoint and fewer than this many JSON commits.
pub const CHECKPOINT_EVERY: u64 = 100;

/// How many times a commit is rebuilt on a fresh snapshot after another writer took the log's
/// next version (eight racing workers need a few each).
const MAX_ATTEMPTS: u32 = 60;

/// What the Delta layer reports.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DeltaError {
    #[error("Delta table of {object}: {message}")]
    Kernel { object: String, message: String },
    /// A column's type changed: Delta cannot express that without rewriting the table.
    #[error(
        "Delta table of {object}: column {column} is {table_type} in the table but Salesforce's describe now makes it {new_type}; \
         a Delta table cannot change a column's type without rewriting it, so nothing was fetched or written. Fix: sync the object \
         to a new destination.url (a new table), or leave the field out of the object's `fields` list, or set \
         destination.table_format = \"none\" to keep syncing Parquet files and manifests only"
    )]
    TypeChanged {
        object: String,
        column: String,
        table_type: String,
        new_type: String,
    },
    #[error("Delta table of {object}: gave up after {attempts} attempts: other writers kept taking the log's next version")]
    TooManyConflicts { object: String, attempts: u32 },
}

fn kernel(object: &str, e: impl std::fmt::Display) -> DeltaError {
    DeltaError::Kernel {
        object: object.to_string(),
        message: e.to_string(),
    }
}

/// One data file to add, as a manifest names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaFile {
    /// Relative to the destination root (`Account/date=2024-01-01/….parquet`).
    pub path: String,
    pub day: NaiveDate,
    pub rows: u64,
    pub bytes: u64,
}

/// One Delta commit for a chunk.
#[derive(Debug, Clone, Default)]
pub struct ChunkCommit {
    pub chunk_id: String,
    pub adds: Vec<DeltaFile>,
    /// Files (relative to the destination root) this chunk supersedes.
    pub removes: Vec<String>,
    /// The chunks this chunk supersedes: recorded as settled (a `txn` each) in the same commit,
    /// so no late catch-up adds their files back.
    pub settles: Vec<String>,
    /// A backfill that holds this whole day: every file of the day's partition that forcelake
    /// did not write (e.g. a compaction's output) goes too.
    pub replace_day: Option<NaiveDate>,
}

/// What a chunk's Delta commit found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaOutcome {
    /// Committed as this table version.
    Committed(u64),
    /// Another writer had already committed this chunk (its `txn` is in the log).
    AlreadyThere,
}

/// The table's state: its version and the files it holds (relative to the destination root).
#[derive(Debug, Clone, Default)]
pub struct TableState {
    pub version: Option<u64>,
    pub files: HashSet<String>,
    /// The table's schema (with the `date` partition column).
    pub schema: Option<Arc<StructType>>,
}

type Engine = DefaultEngine<TokioMultiThreadExecutor>;

/// The Delta tables of one destination.
pub struct DeltaTables {
    engine: Arc<Engine>,
    /// The destination as a directory URL (`file:///abs/lake/`, `s3://bucket/prefix/`).
    root: Url,
    /// Per object: the newest snapshot this process knows, behind a lock so this process's own
    /// commits to a table never race each other (they race only other processes), and the
    /// chunks waiting for the next commit.
    tables: Mutex<HashMap<String, Arc<Table>>>,
}

/// One object's table in this process.
#[derive(Default)]
struct Table {
    snapshot: tokio::sync::Mutex<Option<SnapshotRef>>,
    waiting: Mutex<Vec<Waiting>>,
}

/// A chunk waiting to be committed, and where its outcome goes.
struct Waiting {
    commit: ChunkCommit,
    done: tokio::sync::oneshot::Sender<Result<DeltaOutcome, DeltaError>>,
}

impl std::fmt::Debug for DeltaTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaTables")
            .field("root", &self.root.as_str())
            .finish()
    }
}

impl DeltaTables {
    /// `store` is rooted at the bucket (file system) root and `root` is the destination's URL.
    pub fn new(store: Arc<dyn ObjectStore>, root: Url) -> Self {
        let executor = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                TokioMultiThreadExecutor::new(h)
            }
            // a current-thread runtime (some tests): the engine gets a small runtime of its own
            _ => TokioMultiThreadExecutor::new_owned_runtime(Some(2), None)
                .expect("a 2-thread Tokio runtime can be created"),
        };
        let engine = DefaultEngineBuilder::new(store)
            .with_task_executor(Arc::new(executor))
            .build();
        let mut root = root;
        if !root.path().ends_with('/') {
            let p = format!("{}/", root.path());
            root.set_path(&p);
        }
        Self {
            engine: Arc::new(engine),
            root,
            tables: Mutex::new(HashMap::new()),
        }
    }

    /// The table's schema (`None`: no table yet), from the newest snapshot without listing its
    /// files; the snapshot is kept for the next [`DeltaTables::state`].
    pub async fn schema(&self, object: &str) -> Result<Option<Arc<StructType>>, DeltaError> {
        let slot = self.slot(object);
        let mut cached = slot.snapshot.lock().await;
        let (engine, url, object_s, start) = (
            self.engine.clone(),
            self.table_url(object)?,
            object.to_string(),
            cached.clone(),
        );
        let snap = tokio::task::spawn_blocking(move || latest(&engine, &url, &object_s, start))
            .await
            .map_err(|e| kernel(object, e))??;
        let schema = snap.as_ref().map(|s| s.schema());
        *cached = snap;
        Ok(schema)
    }

    /// Of `chunk_ids`, those whose `txn` the table's log holds (their commit was made, even if
    /// a compaction has since replaced their files).
    pub async fn committed(
        &self,
        object: &str,
        chunk_ids: Vec<String>,
    ) -> Result<HashSet<String>, DeltaError> {
        if chunk_ids.is_empty() {
            return Ok(HashSet::new());
        }
        let slot = self.slot(object);
        let Some(snap) = slot.snapshot.lock().await.clone() else {
            return Ok(HashSet::new());
        };
        let engine = self.engine.clone();
        let object_s = object.to_string();
        tokio::task::spawn_blocking(move || {
            let mut out = HashSet::new();
            for id in chunk_ids {
                if snap
                    .get_app_id_version(&id, engine.as_ref())
                    .map_err(|e| kernel(&object_s, e))?
                    .is_some()
                {
                    out.insert(id);
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| kernel(object, e))?
    }

    /// The table's URL (`<root>/<Object>/`).
    pub fn table_url(&self, object: &str) -> Result<Url, DeltaError> {
        self.root
            .join(&format!("{object}/"))
            .map_err(|e| kernel(object, e))
    }

    fn slot(&self, object: &str) -> Arc<Table> {
        lock(&self.tables)
            .entry(object.to_string())
            .or_default()
            .clone()
    }

    /// Commits one chunk: adds its files, removes those it supersedes, records its id. Creates
    /// the table (from `schema`) when there is none; adds the schema's new columns. The chunk
    /// joins the other chunks of the object waiting for the table, and whichever caller gets
    /// the table first commits them all in one log version.
    pub async fn commit_chunk(
        &self,
        object: &str,
        schema: &ArrowSchema,
        commit: ChunkCommit,
    ) -> Result<DeltaOutcome, DeltaError> {
        let table = self.slot(object);
        let schema = table_schema(object, schema)?;
        let url = self.table_url(object)?;
        let (done, outcome) = tokio::sync::oneshot::channel();
        lock(&table.waiting).push(Waiting { commit, done });
        {
            let mut cached = table.snapshot.lock().await;
            // empty when an earlier holder of the lock already committed this chunk
            let batch = std::mem::take(&mut *lock(&table.waiting));
            if !batch.is_empty() {
                let (commits, senders): (Vec<ChunkCommit>, Vec<_>) =
                    batch.into_iter().map(|w| (w.commit, w.done)).unzip();
                let engine = self.engine.clone();
                let object_s = object.to_string();
                let start = cached.clone();
                let r = tokio::task::spawn_blocking(move || {
                    commit_blocking(&engine, &url, &object_s, &schema, &commits, start)
                })
                .await
                .map_err(|e| kernel(object, e))
                .and_then(|r| r);
                match r {
                    Ok((outcomes, snapshot)) => {
                        *cached = snapshot;
                        for (s, o) in senders.into_iter().zip(outcomes) {
                            let _ = s.send(Ok(o));
                        }
                    }
                    Err(e) => {
                        for s in senders {
                            let _ = s.send(Err(e.clone()));
                        }
                    }
                }
            }
        }
        outcome
            .await
            .map_err(|_| kernel(object, "the commit that held this chunk was cancelled"))?
    }

    /// The table's version and files (`version: None` when there is no table yet).
    pub async fn state(&self, object: &str) -> Result<TableState, DeltaError> {
        let slot = self.slot(object);
        let mut cached = slot.snapshot.lock().await;
        let engine = self.engine.clone();
        let url = self.table_url(object)?;
        let object_s = object.to_string();
        let start = cached.clone();
        let (state, snapshot) = tokio::task::spawn_blocking(move || {
            let Some(snap) = latest(&engine, &url, &object_s, start)? else {
                return Ok((TableState::default(), None));
            };
            let files = table_files(&engine, &snap, &object_s, None)?;
            Ok::<_, DeltaError>((
                TableState {
                    version: Some(snap.version()),
                    files,
                    schema: Some(snap.schema()),
                },
                Some(snap),
            ))
        })
        .await
        .map_err(|e| kernel(object, e))??;
        *cached = snapshot;
        Ok(state)
    }
}

/// Loads the newest snapshot (incrementally from `start` when there is one); `None` when the
/// table does not exist yet.
fn latest(
    engine: &Engine,
    url: &Url,
    object: &str,
    start: Option<SnapshotRef>,
) -> Result<Option<SnapshotRef>, DeltaError> {
    let built = match start {
        Some(s) => Snapshot::builder_from(s).build(engine),
        None => Snapshot::builder_for(url.as_str()).build(engine),
    };
    match built {
        Ok(s) => Ok(Some(s)),
        // no commit yet (or the first is being written: creating then conflicts and retries)
        Err(delta_kernel::KernelError::EmptyLog) => Ok(None),
        // the object's folder does not exist yet (a local destination before its first file)
        Err(delta_kernel::KernelError::InvalidTableLocation(m)) if m.contains("does not exist") => {
            Ok(None)
        }
        Err(e) => {
            // no commit at all yet: not an error, there is no table
            if log_is_empty(engine, url)? {
                Ok(None)
            } else {
                Err(kernel(object, e))
            }
        }
    }
}

fn log_is_empty(engine: &Engine, url: &Url) -> Result<bool, DeltaError> {
    use delta_kernel::Engine as _;
    let log = url
        .join("_delta_log/")
        .map_err(|e| kernel(url.as_str(), e))?;
    match engine.storage_handler().list_from(&log) {
        Ok(mut it) => Ok(!it.any(|f| {
            f.map(|m| m.location.path().ends_with(".json"))
                .unwrap_or(false)
        })),
        Err(delta_kernel::KernelError::FileNotFound(_)) => Ok(true),
        Err(e) => Err(kernel(url.as_str(), e)),
    }
}

/// Paths (relative to the destination root) of the files the snapshot holds, of one day or
/// all of them.
fn table_files(
    engine: &Engine,
    snap: &SnapshotRef,
    object: &str,
    day: Option<NaiveDate>,
) -> Result<HashSet<String>, DeltaError> {
    let mut out = HashSet::new();
    for_each_scan_file(engine, snap, object, day, |path, selected| {
        if selected {
            out.insert(format!("{object}/{path}"));
        }
        false
    })?;
    Ok(out)
}

/// Calls `f(path relative to the table, selected)` for every file row of the snapshot's scan
/// metadata (of one day when given) and returns the rows with the selection `f` chose.
fn for_each_scan_file(
    engine: &Engine,
    snap: &SnapshotRef,
    object: &str,
    day: Option<NaiveDate>,
    mut f: impl FnMut(&str, bool) -> bool,
) -> Result<Vec<FilteredEngineData>, DeltaError> {
    let mut builder = snap.clone().scan_builder();
    if let Some(d) = day {
        builder = builder.with_predicate(Arc::new(Predicate::eq(
            Expression::column([PARTITION_COLUMN]),
            Scalar::Date(days_since_epoch(d)),
        )));
    }
    let scan = builder.build().map_err(|e| kernel(object, e))?;
    let mut chosen = Vec::new();
    for meta in scan.scan_metadata(engine).map_err(|e| kernel(object, e))? {
        let meta = meta.map_err(|e| kernel(object, e))?;
        let (data, selection) = meta.scan_files.into_parts();
        let data = ArrowEngineData::try_from_engine_data(data).map_err(|e| kernel(object, e))?;
        let batch: &RecordBatch = data.record_batch();
        let paths = batch
            .column_by_name("path")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| kernel(object, "scan metadata without a path column"))?;
        let mut pick = vec![false; batch.num_rows()];
        let mut any = false;
        for (i, p) in pick.iter_mut().enumerate() {
            let selected = selection.get(i).copied().unwrap_or(true) && paths.is_valid(i);
            if selected {
                *p = f(paths.value(i), true);
                any |= *p;
            }
        }
        if any {
            let data: Box<dyn EngineData> = data;
            chosen.push(FilteredEngineData::try_new(data, pick).map_err(|e| kernel(object, e))?);
        }
    }
    Ok(chosen)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn days_since_epoch(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch is a date")).num_days() as i32
}

/// Which chunks of a batch still need committing against `snap`: not those whose `txn` is in
/// the log already (another writer's catch-up made it, or a backfill settled it), nor those
/// another chunk of the batch settles (a backfill removing them). The snapshot may hold commits
/// the callers did not know of when they chose what to commit. (Post-commit snapshots answer
/// from memory.)
fn still_to_commit(
    engine: &Engine,
    snap: &SnapshotRef,
    object: &str,
    commits: &[ChunkCommit],
) -> Result<Vec<bool>, DeltaError> {
    let settled: HashSet<&str> = commits
        .iter()
        .flat_map(|c| c.settles.iter().map(String::as_str))
        .collect();
    commits
        .iter()
        .map(|c| {
            if settled.contains(c.chunk_id.as_str()) {
                return Ok(false);
            }
            Ok(snap
                .get_app_id_version(&c.chunk_id, engine)
                .map_err(|e| kernel(object, e))?
                .is_none())
        })
        .collect()
}

fn commit_blocking(
    engine: &Engine,
    url: &Url,
    object: &str,
    schema: &Arc<StructType>,
    commits: &[ChunkCommit],
    start: Option<SnapshotRef>,
) -> Result<(Vec<DeltaOutcome>, Option<SnapshotRef>), DeltaError> {
    let engine_info = format!("forcelake/{}", crate::VERSION);
    // The first attempt trusts the snapshot this process last saw (its own last commit): if
    // another writer committed since, the commit conflicts and the retry reads the log.
    let mut fresh = start.is_some();
    let mut snap = start;
    for attempt in 1..=MAX_ATTEMPTS {
        if !fresh || snap.is_none() {
            snap = latest(engine, url, object, snap)?;
        }
        fresh = false;
        let Some(s) = snap.clone() else {
            // no table yet: create it (a racing creator wins; then append to its table — also
            // when it created the table between our read of the log and this create's check)
            snap = create_or_join(engine, url, object, schema, &engine_info)?;
            fresh = snap.is_some();
            continue;
        };
        let live = still_to_commit(engine, &s, object, commits)?;
        if !live.contains(&true) {
            return Ok((vec![DeltaOutcome::AlreadyThere; commits.len()], Some(s)));
        }
        let chosen: Vec<&ChunkCommit> = commits
            .iter()
            .zip(&live)
            .filter_map(|(c, l)| l.then_some(c))
            .collect();
        let new_columns = schema_diff(object, &s.schema(), schema)?;
        let mut builder = s
            .clone()
            .update_table(UpdateTableOperation::Write, &engine_info, true);
        // a txn per chunk and per chunk it settles (each once: the log refuses duplicates)
        let mut ids = HashSet::new();
        for c in &chosen {
            for id in std::iter::once(&c.chunk_id).chain(&c.settles) {
                if ids.insert(id.as_str()) {
                    builder = builder.with_transaction_id(id.clone(), 1);
                }
            }
        }
        builder = with_columns(builder, &new_columns);
        let mut txn = builder
            .build(engine, Box::new(FileSystemCommitter::new()))
            .map_err(|e| kernel(object, e))?;
        add_files(&mut txn, url, object, &chosen)?;
        remove_files(engine, &mut txn, &s, object, &chosen)?;
        match txn.commit(engine).map_err(|e| kernel(object, e))? {
            CommitResult::Committed(c) => {
                let version = c.commit_version();
                let after = checkpoint_if_due(engine, object, &c);
                let outcomes = live
                    .iter()
                    .map(|l| {
                        if *l {
                            DeltaOutcome::Committed(version)
                        } else {
                            DeltaOutcome::AlreadyThere
                        }
                    })
                    .collect();
                return Ok((outcomes, after));
            }
            CommitResult::Conflicted(c) => {
                tracing::debug!(object, version = c.conflict_version(), attempt, "another writer took the Delta log's next version; retrying on a fresh snapshot");
                std::thread::sleep(std::time::Duration::from_millis(
                    (5 * attempt as u64).min(200) + rand::random::<u64>() % 20,
                ));
            }
            CommitResult::Retryable(_) => {
                std::thread::sleep(std::time::Duration::from_millis(
                    100 * attempt.min(10) as u64,
                ));
            }
        }
    }
    Err(DeltaError::TooManyConflicts {
        object: object.to_string(),
        attempts: MAX_ATTEMPTS,
    })
}

/// Adds the new columns to a commit being built.
fn with_columns(
    mut builder: delta_kernel::transaction::builder::update_table::UpdateTableTransactionBuilder,
    columns: &[NewColumn],
) -> delta_kernel::transaction::builder::update_table::UpdateTableTransactionBuilder {
    for c in columns {
        builder = if c.parent.is_empty() {
            builder.add_column(c.field.clone())
        } else {
            builder.add_column_at(ColumnName::new(c.parent.iter()), c.field.clone())
        };
    }
    builder
}

/// Creates the table (partitioned by day) when there is none: the post-commit snapshot, or
/// `None` when another writer created it first (a racing creator wins; the caller then reads
/// its table and appends — also when it was created between our read of the log and this
/// create's check).
fn create_or_join(
    engine: &Engine,
    url: &Url,
    object: &str,
    schema: &Arc<StructType>,
    engine_info: &str,
) -> Result<Option<SnapshotRef>, DeltaError> {
    let txn = match create_table(url.as_str(), schema.clone(), engine_info, false)
        .with_data_layout(DataLayout::partitioned([PARTITION_COLUMN]))
        .build(engine, Box::new(FileSystemCommitter::new()))
    {
        Ok(t) => t,
        Err(delta_kernel::KernelError::TableAlreadyExistsAtPath(_)) => return Ok(None),
        Err(e) => return Err(kernel(object, e)),
    };
    match txn.commit(engine).map_err(|e| kernel(object, e))? {
        CommitResult::Committed(c) => {
            tracing::info!(
                object,
                version = c.commit_version(),
                "created the Delta table"
            );
            Ok(c.post_commit_snapshot().cloned())
        }
        CommitResult::Conflicted(_) | CommitResult::Retryable(_) => Ok(None),
    }
}

/// Adds the chunks' files, grouped by day (one write context per partition value).
fn add_files(
    txn: &mut Transaction,
    url: &Url,
    object: &str,
    chosen: &[&ChunkCommit],
) -> Result<(), DeltaError> {
    let mut by_day: BTreeMap<NaiveDate, Vec<&DeltaFile>> = BTreeMap::new();
    for f in chosen.iter().flat_map(|c| &c.adds) {
        by_day.entry(f.day).or_default().push(f);
    }
    let table_url = url.clone();
    let write_state = txn.write_state().map_err(|e| kernel(object, e))?;
    for (day, files) in &by_day {
        let ctx = write_state
            .write_context_builder()
            .with_partition_values(HashMap::from([(
                PARTITION_COLUMN.to_string(),
                Scalar::Date(days_since_epoch(*day)),
            )]))
            .build()
            .map_err(|e| kernel(object, e))?;
        for f in files {
            let rel = f
                .path
                .strip_prefix(&format!("{object}/"))
                .ok_or_else(|| kernel(object, format!("{} is outside the table", f.path)))?;
            let location = table_url.join(rel).map_err(|e| kernel(object, e))?;
            add_file(txn, &ctx, object, location, f.rows, f.bytes)?;
        }
    }
    Ok(())
}

/// Adds one file (its size and `numRecords`) to a commit, in the write context's partition.
fn add_file<C>(
    txn: &mut Transaction,
    ctx: &C,
    object: &str,
    location: Url,
    rows: u64,
    bytes: u64,
) -> Result<(), DeltaError>
where
    C: std::borrow::Borrow<delta_kernel::transaction::BoundWriteContext>,
{
    let meta = DataFileMetadata::new(
        FileMeta {
            location,
            last_modified: chrono::Utc::now().timestamp_millis(),
            size: bytes,
        },
        num_records(rows),
    );
    txn.add_files(build_add_file_metadata(meta, ctx.borrow()).map_err(|e| kernel(object, e))?);
    Ok(())
}

/// Removes the files the chunks name (and, in a replaced day, every file forcelake did not
/// write), found in the scan metadata of their days.
fn remove_files(
    engine: &Engine,
    txn: &mut Transaction,
    s: &SnapshotRef,
    object: &str,
    chosen: &[&ChunkCommit],
) -> Result<(), DeltaError> {
    let prefix = format!("{object}/");
    let removes: HashSet<&str> = chosen
        .iter()
        .flat_map(|c| &c.removes)
        .filter_map(|p| p.strip_prefix(&prefix))
        .collect();
    let replaced: HashSet<NaiveDate> = chosen.iter().filter_map(|c| c.replace_day).collect();
    let mut remove_days: Vec<Option<NaiveDate>> = chosen
        .iter()
        .flat_map(|c| &c.removes)
        .map(|p| crate::sink::layout::parse_data_path(p).map(|(_, d)| d))
        .chain(replaced.iter().map(|d| Some(*d)))
        .collect();
    remove_days.sort();
    remove_days.dedup();
    if remove_days.contains(&None) {
        remove_days = vec![None]; // a path without a day: scan the whole table once
    }
    for day in remove_days {
        let foreign = |p: &str| {
            let in_replaced = day.is_some_and(|d| replaced.contains(&d));
            in_replaced
                && !crate::sink::layout::is_forcelake_file(p.rsplit('/').next().unwrap_or(p))
        };
        for rows in for_each_scan_file(engine, s, object, day, |p, _| {
            removes.contains(p) || foreign(p)
        })? {
            txn.remove_files(rows);
        }
    }
    Ok(())
}

/// The snapshot after a commit, checkpointed once `CHECKPOINT_EVERY` commits have gathered
/// since the last checkpoint (a failed checkpoint is retried by the next commit).
fn checkpoint_if_due(
    engine: &Engine,
    object: &str,
    c: &CommittedTransaction,
) -> Option<SnapshotRef> {
    let version = c.commit_version();
    let stats = c.post_commit_stats().commits_since_checkpoint;
    let after = c.post_commit_snapshot().cloned();
    match after {
        Some(a) if stats >= CHECKPOINT_EVERY => match a.checkpoint(engine, None) {
            Ok((_, s)) => {
                tracing::info!(object, version, "checkpointed the Delta log");
                Some(s)
            }
            Err(e) => {
                tracing::warn!(object, version, error = %e, "could not checkpoint the Delta log; the next commit tries again");
                Some(a)
            }
        },
        other => other,
    }
}

/// The `stats` of an add action: `numRecords` only (Delta readers need no more; column
/// statistics would have to be gathered while the file is written).
fn num_records(rows: u64) -> StructArray {
    let field = Arc::new(ArrowField::new("numRecords", ArrowType::Int64, true));
    StructArray::from(vec![(
        field,
        Arc::new(Int64Array::from(vec![rows as i64])) as Arc<dyn Array>,
    )])
}

#[cfg(test)]
mod tests;
