//! The current table of each object (SPEC §3 "The current table"): one row per live record at
//! the newest version the lake holds, kept from the committed chunks of the change log.
//!
//! A merge applies the chunks the table has not applied yet (its `forcelake.current` record
//! lists those it has), a batch of them at a time (per run, not per day):
//!
//! 1. the batch's rows give each `Id` its newest **rank** — `(SystemModstamp, cursor, deleted)`,
//!    so a tombstone wins a tie — and where it came from;
//! 2. the **deletion memory** (`_forcelake/current/<Object>/deleted/*.parquet`: the `Id` and
//!    rank of every deletion merged so far) beats ranks it is newer than, so a version that
//!    arrives after its record's deletion (a late worker, a catch-up) does not bring the record
//!    back, and an undelete (a later `SystemModstamp`) does;
//! 3. the table's `Id`, `SystemModstamp` and cursor columns are read (not its other columns):
//!    a row older than its `Id`'s rank goes into its file's deletion vector, a row as new or
//!    newer beats the batch's;
//! 4. the winning live versions are copied from the change-log files into one new file, the
//!    winning deletions are added to the deletion memory, and one Delta commit adds the file,
//!    the deletion vectors and the new record of applied chunks.
//!
//! Every step takes the newest of what it sees, so a chunk merged twice, late or by two
//! workers at once changes nothing more: the commit is made on the snapshot the merge read
//! (create-only, like the change log), and a merge that loses the race decides again on the
//! winner's table. The deletion memory is written before the commit, and it only ever says
//! what was deleted — a merge that dies between the two leaves a true fact.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray,
};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Serialize;

use crate::context::{Context, SyncError};
use crate::schema::ObjectSchema;
use crate::sink::delta::{
    CurrentAdd, CurrentChange, CurrentFile, CurrentRecord, CurrentView, DeltaTables,
};
use crate::sink::layout::{ChunkId, ChunkKind};
use crate::sink::manifest::{self, Manifest};
use crate::sink::read::{for_each_batch, is_not_found};
use crate::sink::writer::ChunkFileWriter;
use crate::sink::SinkError;

mod memory;
mod write;

use self::memory::{fold_memory, remember, remembered};
use self::write::write_versions;

/// The column that orders versions first (then the cursor).
pub const STAMP: &str = "SystemModstamp";

/// How often a merge that lost the race to another writer decides again.
const MAX_ATTEMPTS: u32 = 40;

/// A table with more files than this folds its smaller half into the next merge's new file.
const MAX_FILES: usize = 16;

/// Bytes of memory one candidate `Id` takes in a merge (key, rank, source, map overhead); a
/// merge's candidates take at most a quarter of `sync.memory_limit_mb`.
const CANDIDATE_BYTES: usize = 72;

/// A record `Id` held inline (Salesforce Ids are 18 characters): no allocation per candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key([u8; 24]);

impl Key {
    pub fn new(id: &str) -> Result<Self, SinkError> {
        let b = id.as_bytes();
        if b.len() > 23 {
            return Err(SinkError::Unusable(format!(
                "record Id {id:?} is longer than 23 characters: not a Salesforce Id, so the current table cannot key on it"
            )));
        }
        let mut k = [0u8; 24];
        k[0] = b.len() as u8;
        k[1..=b.len()].copy_from_slice(b);
        Ok(Key(k))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0[1..=self.0[0] as usize]).unwrap_or_default()
    }
}

/// Calls `f` with the `Id` of every record `view` holds (its live rows); returns how many.
pub async fn for_each_held_id(
    ctx: &Context,
    object: &str,
    view: &CurrentView,
    mut f: impl FnMut(&str) -> Result<(), SinkError>,
) -> Result<u64, SinkError> {
    let mut held = 0u64;
    for_each_live_row(ctx, object, view, &["Id"], |_, b, path, rows| {
        let ids = b
            .column_by_name("Id")
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| SinkError::Parquet {
                what: path.to_string(),
                message: "no Id column of strings".into(),
            })?;
        for &(i, _) in rows {
            if ids.is_valid(i) {
                held += 1;
                f(ids.value(i))?;
            }
        }
        Ok(())
    })
    .await?;
    Ok(held)
}

/// Reads `columns` of every file of `view` a batch at a time and calls `f(file, batch, path,
/// live)` with the batch's rows its deletion vector leaves (`(index in the batch, row in the
/// file)`): the one place that says which rows of the table are live.
async fn for_each_live_row(
    ctx: &Context,
    object: &str,
    view: &CurrentView,
    columns: &[&str],
    mut f: impl FnMut(&CurrentFile, &RecordBatch, &str, &[(usize, u64)]) -> Result<(), SinkError>,
) -> Result<(), SinkError> {
    let mut rows = Vec::new();
    for file in &view.files {
        let path = table_path(object, &file.path).to_string();
        let mut offset = 0u64;
        let mut dead = file.deleted.iter().peekable();
        for_each_batch(&ctx.store, &path, Some(file.bytes), Some(columns), |b| {
            rows.clear();
            for i in 0..b.num_rows() {
                let row = offset + i as u64;
                while dead.next_if(|d| **d < row).is_some() {}
                if dead.next_if(|d| **d == row).is_none() {
                    rows.push((i, row));
                }
            }
            offset += b.num_rows() as u64;
            f(file, &b, &path, &rows)
        })
        .await?;
    }
    Ok(())
}

/// What a refresh of one object's current table did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Refreshed {
    /// The table's version and live rows afterwards.
    pub version: u64,
    pub rows: u64,
    /// Merge commits made, and the chunks they applied.
    pub merges: u32,
    pub chunks_applied: u64,
    /// Records written as a new version (inserted or updated), and records the table no longer
    /// holds because they were deleted.
    pub upserted: u64,
    pub removed: u64,
    /// Bytes written: the new files, the deletion memory and the deletion vectors.
    pub bytes_written: u64,
    /// Files of the table rewritten whole (folded into a merge's new file).
    pub files_rewritten: u64,
    pub seconds: f64,
}

/// One version's place in time: the newest rank of an `Id` is its current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    stamp: i64,
    cursor: i64,
    deleted: bool,
}

/// Where a candidate's row is: row `row` of the batch's source file `file`, or (`file ==
/// u32::MAX`) nowhere — a tombstone, or the deletion memory: nothing to copy.
#[derive(Debug, Clone, Copy)]
struct Source {
    file: u32,
    row: u32,
}

impl Source {
    const DELETION: Source = Source {
        file: u32::MAX,
        row: 0,
    };
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    rank: Rank,
    source: Source,
    /// The deletion memory already holds this rank.
    remembered: bool,
    /// The table holds this `Id` at this rank or newer: nothing to do.
    beaten: bool,
    /// The table holds this `Id` at an older rank (its row goes).
    found: bool,
}

/// Brings an object's current table level with its committed chunks. `None` when the
/// destination keeps no current tables.
pub async fn refresh(ctx: &Context, schema: &ObjectSchema) -> Result<Option<Refreshed>, SyncError> {
    let Some(delta) = ctx.delta.as_deref() else {
        return Ok(None);
    };
    if !ctx.config.destination.current_table {
        return Ok(None);
    }
    let started = Instant::now();
    let object = &schema.object;
    let budget = (ctx.config.sync.memory_limit_mb << 20) / 4 / CANDIDATE_BYTES;
    let mut out = Refreshed::default();
    let mut cache: HashMap<String, Manifest> = HashMap::new();
    let (mut conflicts, mut gone) = (0u32, 0u32);
    loop {
        let view = delta
            .current_open(object, &schema.arrow)
            .await
            .map_err(SinkError::from)?;
        let live = live_chunks(&ctx.store, object, &view.record.applied, &mut cache).await?;
        let todo: Vec<&Manifest> = live
            .iter()
            .filter(|id| !view.record.applied.contains(*id))
            .filter_map(|id| cache.get(id))
            .collect();
        if todo.is_empty() {
            out.version = view.version;
            out.rows = view.rows();
            out.seconds = started.elapsed().as_secs_f64();
            return Ok(Some(out));
        }
        let batch = first_batch(&todo, budget.max(1_000) as u64);
        match merge_once(ctx, delta, schema, &view, &batch, &live).await {
            Ok(Some(m)) => {
                out.merges += 1;
                out.chunks_applied += batch.len() as u64;
                out.upserted += m.upserted;
                out.removed += m.removed;
                out.bytes_written += m.bytes_written;
                out.files_rewritten += m.files_rewritten;
            }
            Ok(None) => {
                conflicts += 1;
                if conflicts >= MAX_ATTEMPTS {
                    return Err(SinkError::from(
                        crate::sink::delta::DeltaError::TooManyConflicts {
                            object: format!("{object} (current table)"),
                            attempts: MAX_ATTEMPTS,
                        },
                    )
                    .into());
                }
                tracing::debug!(
                    object,
                    conflicts,
                    "another writer merged into the current table first; deciding again"
                );
                let pause = (10 * conflicts as u64).min(300) + rand::random::<u64>() % 50;
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            // a backfill's clean-up or a compaction of the deletion memory took a file away
            // between the listing and the read: list again
            Err(e) if is_not_found(&e) && gone < 5 => {
                gone += 1;
                tracing::debug!(object, error = %e, "a file went away during the merge; listing again");
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The current table as `status` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CurrentState {
    /// Where readers open it (`delta_scan(url)`, `DeltaTable(url)`, `read_delta(url)`).
    pub url: String,
    /// `None`: no current table yet (the next writing run builds it).
    pub version: Option<u64>,
    /// Live records (the files' rows less their deletion vectors).
    pub rows: u64,
    pub files: u64,
    /// When the last merge was committed.
    pub last_merge_at: Option<String>,
    /// Committed chunks the table has not taken in yet (the next writing run merges them).
    pub behind_chunks: u64,
}

/// The object's current table and how far it is behind the change log.
pub async fn state(
    store: &Arc<dyn ObjectStore>,
    delta: &DeltaTables,
    object: &str,
) -> Result<CurrentState, SyncError> {
    let url = delta
        .current_url(object)
        .map_err(SinkError::from)?
        .to_string();
    let view = delta.current_view(object).await.map_err(SinkError::from)?;
    let mut cache = HashMap::new();
    let applied = view
        .as_ref()
        .map(|v| v.record.applied.clone())
        .unwrap_or_default();
    let live = live_chunks(store, object, &applied, &mut cache).await?;
    Ok(match view {
        None => CurrentState {
            url,
            version: None,
            rows: 0,
            files: 0,
            last_merge_at: None,
            behind_chunks: live.len() as u64,
        },
        Some(v) => CurrentState {
            url,
            version: Some(v.version),
            rows: v.rows(),
            files: v.files.len() as u64,
            last_merge_at: v.record.merged_at.clone(),
            behind_chunks: live
                .iter()
                .filter(|c| !v.record.applied.contains(*c))
                .count() as u64,
        },
    })
}

/// Ids of the chunks whose rows are in the change log now: every committed chunk but those a
/// committed backfill superseded (and markers). The manifests of the backfills and of the
/// chunks not in `applied` go into `cache` (the others are not read: a run reads what is new).
async fn live_chunks(
    store: &Arc<dyn ObjectStore>,
    object: &str,
    applied: &BTreeSet<String>,
    cache: &mut HashMap<String, Manifest>,
) -> Result<BTreeSet<String>, SyncError> {
    let ids: Vec<ChunkId> = manifest::list_all_chunks(store.as_ref(), object)
        .await?
        .into_iter()
        .filter(|c| !c.is_marker())
        .collect();
    let missing: Vec<ChunkId> = ids
        .iter()
        .filter(|c| {
            let id = c.to_string();
            (c.kind == ChunkKind::Backfill || !applied.contains(&id)) && !cache.contains_key(&id)
        })
        .cloned()
        .collect();
    for m in manifest::load_some(store.clone(), object, missing).await? {
        cache.insert(m.chunk_id.clone(), m);
    }
    let superseded: BTreeSet<&str> = ids
        .iter()
        .filter(|c| c.kind == ChunkKind::Backfill)
        .filter_map(|c| cache.get(&c.to_string()))
        .flat_map(|m| m.supersedes.iter().map(String::as_str))
        .collect();
    Ok(ids
        .iter()
        .map(|c| c.to_string())
        .filter(|c| !superseded.contains(c.as_str()))
        .collect())
}

/// The first chunks of `todo` (in chunk order) whose rows fit `budget` (at least one chunk).
fn first_batch<'a>(todo: &[&'a Manifest], budget: u64) -> Vec<&'a Manifest> {
    let mut rows = 0;
    let mut out = Vec::new();
    for m in todo {
        if !out.is_empty() && rows + m.rows > budget {
            break;
        }
        rows += m.rows;
        out.push(*m);
    }
    out
}

/// What one merge commit did.
#[derive(Debug, Default)]
struct Merged {
    upserted: u64,
    removed: u64,
    bytes_written: u64,
    files_rewritten: u64,
}

/// One merge of `batch` on top of `view`: `None` when another writer committed first.
async fn merge_once(
    ctx: &Context,
    delta: &DeltaTables,
    schema: &ObjectSchema,
    view: &CurrentView,
    batch: &[&Manifest],
    live: &BTreeSet<String>,
) -> Result<Option<Merged>, SinkError> {
    let object = &schema.object;
    let (sources, mut candidates) = candidates(ctx, schema, batch).await?;
    let object = object.as_str();
    remembered(ctx, object, &mut candidates).await?;
    let deletes = if candidates.is_empty() {
        HashMap::new()
    } else {
        against_table(ctx, schema, view, &mut candidates).await?
    };
    let mut merged = Merged::default();
    // rows of a file older than a candidate go; a whole file goes when half of it is gone, or
    // when the table has too many files (the smaller half)
    let rewrite = to_rewrite(view, &deletes);
    let mut deletes = deletes;
    let rewrites: Vec<(String, u64, Vec<u64>)> = rewrite
        .iter()
        .filter_map(|p| {
            let file = view.files.iter().find(|f| &f.path == p)?;
            let mut dead = file.deleted.clone();
            dead.extend(deletes.remove(p).unwrap_or_default());
            dead.sort_unstable();
            Some((p.clone(), file.bytes, dead))
        })
        .collect();
    let new_deletions: Vec<(&str, Rank)> = candidates
        .iter()
        .filter(|(_, c)| !c.beaten && c.rank.deleted && !c.remembered)
        .map(|(id, c)| (id.as_str(), c.rank))
        .collect();
    let mut picks: HashMap<u32, Vec<u32>> = HashMap::new();
    for c in candidates.values().filter(|c| !c.beaten && !c.rank.deleted) {
        if c.source.file != u32::MAX {
            picks.entry(c.source.file).or_default().push(c.source.row);
        }
    }
    merged.upserted = picks.values().map(|v| v.len() as u64).sum();
    merged.removed = candidates
        .values()
        .filter(|c| !c.beaten && c.found && c.rank.deleted)
        .count() as u64;
    merged.files_rewritten = rewrites.len() as u64;
    if !new_deletions.is_empty() {
        merged.bytes_written += remember(ctx, object, &new_deletions).await?;
    }
    drop(new_deletions);
    drop(candidates);
    let adds = write_versions(ctx, schema, &sources, picks, &rewrites).await?;
    merged.bytes_written += adds.iter().map(|a| a.bytes).sum::<u64>();
    let mut record = CurrentRecord {
        applied: view
            .record
            .applied
            .iter()
            .filter(|c| live.contains(*c))
            .cloned()
            .collect(),
        merged_at: Some(crate::timefmt::rfc3339(chrono::Utc::now())),
    };
    record
        .applied
        .extend(batch.iter().map(|m| m.chunk_id.clone()));
    let removes: Vec<String> = rewrites.into_iter().map(|(p, _, _)| p).collect();
    let change = CurrentChange {
        adds: adds.clone(),
        deletes,
        removes: removes.clone(),
        record,
        chunks: batch.iter().map(|m| m.chunk_id.clone()).collect(),
    };
    match delta
        .current_commit(object, view, &schema.arrow, change)
        .await?
    {
        Some((version, dv_bytes)) => {
            merged.bytes_written += dv_bytes;
            tracing::info!(
                object,
                version,
                chunks = batch.len(),
                upserted = merged.upserted,
                removed = merged.removed,
                "merged into the current table"
            );
            // files the commit removed are rewritten into its new file: gone from the store
            // (as the change log's superseded files: a reader of an older version that has
            // not read them yet reruns its query)
            for p in &removes {
                let _ = ctx.store.delete(&table_path(object, p)).await;
            }
            fold_memory(ctx, object).await;
            Ok(Some(merged))
        }
        None => {
            for a in adds {
                let _ = ctx.store.delete(&table_path(object, &a.path)).await;
            }
            Ok(None)
        }
    }
}

/// The store path of a file of the current table.
fn table_path(object: &str, rel: &str) -> Path {
    Path::from(format!(
        "{}/{object}/{rel}",
        crate::sink::delta::CURRENT_DIR
    ))
}

/// The batch's source files and the newest rank of each `Id` in them.
async fn candidates(
    ctx: &Context,
    schema: &ObjectSchema,
    batch: &[&Manifest],
) -> Result<(Vec<(String, u64)>, HashMap<Key, Candidate>), SinkError> {
    let cursor = schema.cursor_field.as_str();
    let mut sources = Vec::new();
    let mut out: HashMap<Key, Candidate> = HashMap::new();
    for m in batch {
        let tombstones = matches!(m.kind, ChunkKind::Deletes | ChunkKind::Reconcile);
        for f in &m.files {
            let file = sources.len() as u32;
            sources.push((f.path.clone(), f.bytes));
            let mut offset = 0u32;
            for_each_batch(
                &ctx.store,
                &f.path,
                Some(f.bytes),
                Some(&["Id", STAMP, cursor, "IsDeleted"]),
                |b| {
                    let cols = RankColumns::of(&b, cursor, &f.path)?;
                    for i in 0..b.num_rows() {
                        let Some((id, rank)) = cols.at(i, tombstones) else {
                            continue;
                        };
                        let source = if tombstones {
                            Source::DELETION
                        } else {
                            Source {
                                file,
                                row: offset + i as u32,
                            }
                        };
                        offer(&mut out, Key::new(id)?, rank, source);
                    }
                    offset += b.num_rows() as u32;
                    Ok(())
                },
            )
            .await?;
        }
    }
    Ok((sources, out))
}

/// Keeps the newer of two candidates for an `Id`.
fn offer(out: &mut HashMap<Key, Candidate>, id: Key, rank: Rank, source: Source) {
    match out.get_mut(&id) {
        Some(c) if c.rank >= rank => {}
        Some(c) => {
            c.rank = rank;
            c.source = source;
        }
        None => {
            out.insert(
                id,
                Candidate {
                    rank,
                    source,
                    remembered: false,
                    beaten: false,
                    found: false,
                },
            );
        }
    }
}

/// Reads the table's `Id` and rank columns (live rows only): a row older than its `Id`'s
/// candidate is to delete (per file, its row indexes); a row as new or newer beats the
/// candidate.
async fn against_table(
    ctx: &Context,
    schema: &ObjectSchema,
    view: &CurrentView,
    candidates: &mut HashMap<Key, Candidate>,
) -> Result<HashMap<String, Vec<u64>>, SinkError> {
    let cursor = schema.cursor_field.as_str();
    let mut deletes: HashMap<String, Vec<u64>> = HashMap::new();
    let columns = ["Id", STAMP, cursor];
    for_each_live_row(
        ctx,
        &schema.object,
        view,
        &columns,
        |file, b, path, rows| {
            let cols = RankColumns::of(b, cursor, path)?;
            for &(i, row) in rows {
                let Some((id, rank)) = cols.at(i, false) else {
                    continue;
                };
                if let Some(c) = candidates.get_mut(&Key::new(id)?) {
                    if c.rank > rank {
                        deletes.entry(file.path.clone()).or_default().push(row);
                        c.found = true;
                    } else {
                        c.beaten = true;
                    }
                }
            }
            Ok(())
        },
    )
    .await?;
    Ok(deletes)
}

/// Files to rewrite whole rather than mark: those at least half deleted after this merge, and,
/// when the table has more than [`MAX_FILES`] files, the smaller half of them.
fn to_rewrite(view: &CurrentView, deletes: &HashMap<String, Vec<u64>>) -> Vec<String> {
    // the benchmark's copy-on-write comparison (benches/current_merge.rs): every file a
    // changed record is in is rewritten, as a merge without deletion vectors must
    let copy_on_write = std::env::var_os("FORCELAKE_BENCH_COPY_ON_WRITE").is_some();
    let mut out: Vec<String> = view
        .files
        .iter()
        .filter(|f| {
            if copy_on_write && deletes.contains_key(&f.path) {
                return true;
            }
            let dead =
                f.deleted.len() as u64 + deletes.get(&f.path).map(|v| v.len() as u64).unwrap_or(0);
            dead * 2 >= f.rows
        })
        .map(|f| f.path.clone())
        .collect();
    if view.files.len() > MAX_FILES {
        let mut by_size: Vec<_> = view.files.iter().collect();
        by_size.sort_by_key(|f| f.live_rows());
        for f in by_size.iter().take(view.files.len() / 2) {
            if !out.contains(&f.path) {
                out.push(f.path.clone());
            }
        }
    }
    out
}

/// The columns that rank a batch's rows.
struct RankColumns<'a> {
    ids: &'a StringArray,
    stamps: Option<Int64Array>,
    cursors: Option<Int64Array>,
    deleted: Option<&'a BooleanArray>,
}

impl<'a> RankColumns<'a> {
    fn of(b: &'a RecordBatch, cursor: &str, path: &str) -> Result<Self, SinkError> {
        let ids = b
            .column_by_name("Id")
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| SinkError::Parquet {
                what: path.to_string(),
                message: "no Id column of strings: the current table needs each record's Id".into(),
            })?;
        Ok(Self {
            ids,
            stamps: b
                .column_by_name(STAMP)
                .map(|c| millis(c, path))
                .transpose()?,
            cursors: b
                .column_by_name(cursor)
                .map(|c| millis(c, path))
                .transpose()?,
            deleted: b
                .column_by_name("IsDeleted")
                .and_then(|c| c.as_boolean_opt()),
        })
    }

    /// Row `i`'s `Id` and rank (`None` without an `Id`). A tombstone is a deletion.
    fn at(&self, i: usize, tombstone: bool) -> Option<(&'a str, Rank)> {
        if !self.ids.is_valid(i) {
            return None;
        }
        let value =
            |a: &Option<Int64Array>| a.as_ref().filter(|a| a.is_valid(i)).map(|a| a.value(i));
        let cursor = value(&self.cursors);
        let stamp = value(&self.stamps).or(cursor).unwrap_or(i64::MIN);
        let deleted = tombstone || self.deleted.is_some_and(|d| d.is_valid(i) && d.value(i));
        Some((
            self.ids.value(i),
            Rank {
                stamp,
                cursor: cursor.unwrap_or(i64::MIN),
                deleted,
            },
        ))
    }
}

/// A datetime (or date) column as milliseconds since the epoch.
fn millis(c: &ArrayRef, path: &str) -> Result<Int64Array, SinkError> {
    let err = |e: arrow::error::ArrowError| SinkError::Parquet {
        what: path.to_string(),
        message: format!("a rank column is not a datetime: {e}"),
    };
    let ts = cast(c, &DataType::Timestamp(TimeUnit::Millisecond, None)).map_err(err)?;
    let ms = cast(&ts, &DataType::Int64).map_err(err)?;
    Ok(ms.as_primitive::<Int64Type>().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tombstone_wins_a_tie_and_an_undelete_wins_over_its_deletion() {
        let live = Rank {
            stamp: 10,
            cursor: 10,
            deleted: false,
        };
        let tomb = Rank {
            deleted: true,
            ..live
        };
        assert!(tomb > live);
        let undelete = Rank {
            stamp: 11,
            cursor: 11,
            deleted: false,
        };
        assert!(undelete > tomb);
    }

    #[test]
    fn offer_keeps_the_newest_whatever_the_order() {
        let ranks = [(5, false), (9, true), (7, false), (9, false)];
        let x = Key::new("001000000000001AAA").unwrap();
        let mut a = HashMap::new();
        let mut b = HashMap::new();
        for (s, d) in ranks {
            let r = Rank {
                stamp: s,
                cursor: s,
                deleted: d,
            };
            offer(&mut a, x, r, Source::DELETION);
        }
        for (s, d) in ranks.iter().rev() {
            let r = Rank {
                stamp: *s,
                cursor: *s,
                deleted: *d,
            };
            offer(&mut b, x, r, Source::DELETION);
        }
        assert_eq!(a[&x].rank, b[&x].rank);
        assert!(a[&x].rank.deleted && a[&x].rank.stamp == 9);
        assert_eq!(x.as_str(), "001000000000001AAA");
    }
}
