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
use crate::salesforce::{soql, Client};
use crate::schema::ObjectSchema;
use crate::sink::layout::{self, ChunkId};
use crate::sink::manifest::{self, CommitOutcome, FileEntry, Manifest};
use crate::sink::writer::{self, ChunkFileWriter, LocalPart, ParquetSettings};
use crate::sync::{Budget, Scratch, SyncError};
use crate::timefmt::rfc3339;

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
        }
    }
}

/// How a chunk ended (errors are `Err`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkOutcome {
    Committed {
        rows: u64,
        requests: u64,
    },
    AlreadyCommitted {
        requests: u64,
    },
    /// The object's query budget ran out before the chunk finished; nothing was committed.
    BudgetSpent {
        requests: u64,
    },
}

/// A random token that makes this attempt's file names unique.
pub fn attempt_token() -> String {
    format!("{:08x}", rand::rng().random::<u32>())
}

/// Runs one attempt of a chunk.
pub async fn run_chunk(
    client: &Arc<Client>,
    store: &Arc<dyn ObjectStore>,
    budget: &Budget,
    scratch: &Scratch,
    job: &ChunkJob,
) -> Result<ChunkOutcome, SyncError> {
    let obj = &job.object;
    let chunk_id = job.chunk.to_string();
    let manifest_path = layout::manifest_path(&obj.object, &job.chunk);
    if store.head(&manifest_path).await.is_ok() {
        return Ok(ChunkOutcome::AlreadyCommitted { requests: 0 });
    }
    let attempt = attempt_token();
    let started_at = Utc::now();
    // A backfill chunk supersedes the chunks of its day committed before it began.
    let q = soql::chunk_query(
        &obj.object,
        &obj.select_list(),
        &obj.cursor_field,
        obj.cursor_is_date,
        job.chunk.start,
        job.chunk.end,
    );
    let what = format!("{} {}", obj.object, chunk_id);

    // Decoder + encoder on a blocking thread, fed through a bounded channel.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    // A page is requested only while fewer than `pages_ahead` pages wait or are being decoded.
    let ahead = Arc::new(tokio::sync::Semaphore::new(job.pages_ahead.max(1)));
    let decoded = ahead.clone();
    let enc_obj = obj.clone();
    let enc_settings = job.settings.clone();
    let enc_tmp = scratch.dir.clone();
    let enc_chunk = chunk_id.clone();
    let encoder =
        tokio::task::spawn_blocking(move || -> Result<(Vec<LocalPart>, u64), SyncError> {
            // However this ends (done, or a bad value), the fetcher stops waiting for room.
            struct CloseOnDrop(Arc<tokio::sync::Semaphore>);
            impl Drop for CloseOnDrop {
                fn drop(&mut self) {
                    self.0.close();
                }
            }
            let decoded = CloseOnDrop(decoded);
            let mut dec = PageDecoder::new(&enc_obj);
            let mut w = ChunkFileWriter::new(
                enc_obj.arrow.clone(),
                &enc_settings,
                &enc_obj.object,
                &enc_chunk,
                &enc_tmp,
            );
            let mut rows = 0u64;
            while let Some(page) = rx.blocking_recv() {
                let info = dec.decode_page(&page)?;
                drop(page);
                decoded.0.add_permits(1);
                rows += info.records as u64;
                if dec.buffered_rows() >= BATCH_ROWS {
                    w.write(&dec.finish_batch()?)?;
                }
            }
            if dec.buffered_rows() > 0 {
                w.write(&dec.finish_batch()?)?;
            }
            Ok((w.finish()?, rows))
        });

    let groups = crate::sync::fetch::field_groups(
        client,
        obj,
        job.chunk.start,
        job.chunk.end,
        job.include_deleted,
        crate::sync::fetch::MAX_URI,
    );
    let mut fetcher = crate::sync::fetch::Fetcher {
        client,
        budget,
        what: &what,
        object: &obj.object,
        all: job.include_deleted,
        requests: 0,
        ahead: Some(ahead),
    };
    let fetched = if groups.len() == 1 {
        fetcher.single(&q, &tx).await
    } else {
        tracing::debug!(object = %obj.object, groups = groups.len(), "field list too long for one request URI: split query joined by Id");
        let queries: Vec<(String, Vec<String>)> = groups
            .into_iter()
            .map(|g| {
                (
                    soql::chunk_query(
                        &obj.object,
                        &g,
                        &obj.cursor_field,
                        obj.cursor_is_date,
                        job.chunk.start,
                        job.chunk.end,
                    ),
                    g,
                )
            })
            .collect();
        fetcher.split(&queries, &tx).await
    };
    let requests = fetcher.requests;
    let (mut fetch_error, mut spent, mut total_size) = (None, false, 0u64);
    match fetched {
        Ok(crate::sync::fetch::FetchEnd::Done { total_size: t }) => total_size = t,
        Ok(crate::sync::fetch::FetchEnd::BudgetSpent) => spent = true,
        Err(e) => fetch_error = Some(e),
    }
    drop(tx);
    let encoded = encoder
        .await
        .map_err(|e| SyncError::Internal(format!("{what}: encoder task failed: {e}")))?;
    if let Some(e) = fetch_error {
        return Err(e);
    }
    let (parts, rows) = encoded?;
    if spent {
        return Ok(ChunkOutcome::BudgetSpent { requests });
    }
    if rows != total_size {
        return Err(SyncError::CountMismatch {
            object: obj.object.clone(),
            chunk: chunk_id,
            received: rows,
            total: total_size,
        });
    }

    // Upload, then commit.
    let mut files = Vec::with_capacity(parts.len());
    for (n, part) in parts.into_iter().enumerate() {
        let dest = layout::data_path(&obj.object, &job.chunk, &attempt, n);
        let entry = FileEntry {
            path: dest.to_string(),
            rows: part.rows,
            bytes: part.bytes,
        };
        if let Err(e) = writer::place(store, scratch.local.as_deref(), part, &dest).await {
            delete_quietly(store, files.iter().map(|f: &FileEntry| f.path.clone())).await;
            return Err(e.into());
        }
        files.push(entry);
    }
    let superseded = if job.chunk.kind == layout::ChunkKind::Backfill {
        let replaces = job.replaces.unwrap_or((job.chunk.start, job.chunk.end));
        match superseded_by(store, &obj.object, &job.chunk, replaces, started_at).await {
            Ok(v) => v,
            Err(e) => {
                delete_quietly(store, files.iter().map(|f| f.path.clone())).await;
                return Err(e.into());
            }
        }
    } else {
        vec![]
    };
    let m = Manifest {
        format_version: manifest::FORMAT_VERSION,
        object: obj.object.clone(),
        day: job.chunk.day().format("%Y-%m-%d").to_string(),
        chunk_id: chunk_id.clone(),
        kind: job.chunk.kind,
        cursor_field: obj.cursor_field.clone(),
        window_start: rfc3339(job.chunk.start),
        window_end: rfc3339(job.chunk.end),
        files: files.clone(),
        rows,
        schema_hash: obj.hash.clone(),
        api_requests: requests,
        started_at: rfc3339(started_at),
        committed_at: rfc3339(Utc::now()),
        tool_version: crate::VERSION.to_string(),
        supersedes: superseded.iter().map(|m| m.chunk_id.clone()).collect(),
        attempt: attempt.clone(),
        endpoint: if job.include_deleted {
            "queryAll"
        } else {
            "query"
        }
        .to_string(),
        soql: q,
        total_size,
    };
    match manifest::commit(store.as_ref(), &m).await {
        Ok(CommitOutcome::Committed) => {
            remove_orphans(store, &obj.object, &job.chunk, &attempt).await;
            // Readers never see a day with rows missing: old files go only after the commit.
            for old in &superseded {
                delete_quietly(store, old.files.iter().map(|f| f.path.clone())).await;
            }
            tracing::debug!(object = %obj.object, chunk = %chunk_id, rows, "chunk committed");
            Ok(ChunkOutcome::Committed { rows, requests })
        }
        Ok(CommitOutcome::AlreadyCommitted) => {
            delete_quietly(store, files.iter().map(|f| f.path.clone())).await;
            Ok(ChunkOutcome::AlreadyCommitted { requests })
        }
        Err(e) => {
            delete_quietly(store, files.iter().map(|f| f.path.clone())).await;
            Err(e.into())
        }
    }
}

/// What a backfill chunk supersedes when it commits: once this chunk and the other chunks of
/// its backfill (same tag) cover the whole planned window `replaces`, every other chunk inside
/// that window committed before the backfill's first chunk there began. Until then, nothing
/// (so a window split by QUERY_TIMEOUT never leaves readers with rows missing).
async fn superseded_by(
    store: &Arc<dyn ObjectStore>,
    object: &str,
    chunk: &ChunkId,
    replaces: (chrono::DateTime<Utc>, chrono::DateTime<Utc>),
    started_at: chrono::DateTime<Utc>,
) -> Result<Vec<Manifest>, crate::sink::SinkError> {
    let prefix = object_store::path::Path::from(format!(
        "_forcelake/manifests/{object}/{}",
        layout::partition(chunk.day())
    ));
    let metas: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| crate::sink::SinkError::store(format!("listing {prefix}"), e))?;
    let mut mine = vec![(chunk.start, chunk.end)];
    let mut began = started_at;
    let mut others = Vec::new();
    for meta in metas {
        let Some((_, id)) = layout::parse_manifest_path(&meta.location) else {
            continue;
        };
        if id == *chunk || id.is_marker() || id.start < replaces.0 || id.end > replaces.1 {
            continue;
        }
        let m = manifest::load(store.as_ref(), &meta.location).await?;
        if id.kind == chunk.kind && id.tag == chunk.tag {
            mine.push((id.start, id.end));
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&m.started_at) {
                began = began.min(t.with_timezone(&Utc));
            }
        } else {
            others.push(m);
        }
    }
    if !crate::sync::plan::gaps(replaces.0, replaces.1, &mine).is_empty() {
        return Ok(vec![]);
    }
    Ok(others
        .into_iter()
        .filter(|m| {
            chrono::DateTime::parse_from_rfc3339(&m.committed_at)
                .map(|t| t.with_timezone(&Utc) < began)
                .unwrap_or(false)
        })
        .collect())
}

/// Finishes deletions a crash may have interrupted: files of chunks that a committed backfill
/// chunk superseded.
pub async fn finish_supersedes(
    store: &Arc<dyn ObjectStore>,
    object: &str,
) -> Result<usize, crate::sink::SinkError> {
    let ids = manifest::list_chunks(store.as_ref(), object).await?;
    let mut deleted = 0;
    for id in ids.iter().filter(|c| c.kind == layout::ChunkKind::Backfill) {
        let m = manifest::load(store.as_ref(), &layout::manifest_path(object, id)).await?;
        for old_id in &m.supersedes {
            let Some(old) = ChunkId::parse(old_id) else {
                continue;
            };
            let Ok(old_m) =
                manifest::load(store.as_ref(), &layout::manifest_path(object, &old)).await
            else {
                continue;
            };
            for f in &old_m.files {
                let p = object_store::path::Path::from(f.path.as_str());
                if store.head(&p).await.is_ok() {
                    delete_quietly(store, std::iter::once(f.path.clone())).await;
                    deleted += 1;
                }
            }
        }
    }
    Ok(deleted)
}

async fn delete_quietly(store: &Arc<dyn ObjectStore>, paths: impl Iterator<Item = String>) {
    for p in paths {
        let path = object_store::path::Path::from(p);
        if let Err(e) = store.delete(&path).await {
            if !matches!(e, object_store::Error::NotFound { .. }) {
                tracing::warn!(path = %path, error = %e, "could not delete an uncommitted file; a later run removes it");
            }
        }
    }
}

/// Deletes files in the chunk's day partition that no manifest will ever name: other attempts
/// of this chunk, and uncommitted chunks whose window lies inside this one (e.g. a crashed
/// attempt of a partial day that this chunk has now covered).
async fn remove_orphans(
    store: &Arc<dyn ObjectStore>,
    object: &str,
    chunk: &ChunkId,
    keep_attempt: &str,
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
        tracing::info!(object, chunk = %chunk_id, files = orphans.len(), "removing files of earlier, uncommitted attempts");
    }
    delete_quietly(store, orphans.into_iter()).await;
}
