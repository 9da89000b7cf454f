//! Chunk manifests: the commit record and the only state. A manifest is written last, in one
//! create-only put; a second writer of the same chunk gets `AlreadyExists` and backs off.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::sink::layout::{self, ChunkId, ChunkKind};
use crate::sink::SinkError;

/// Current manifest format.
pub const FORMAT_VERSION: u32 = 1;

/// One data file of a chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the destination root.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

/// `_forcelake/manifests/<Object>/date=YYYY-MM-DD/<chunk-id>.json` (schemas/manifest.schema.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub object: String,
    pub day: String,
    pub chunk_id: String,
    pub kind: ChunkKind,
    pub cursor_field: String,
    pub window_start: String,
    pub window_end: String,
    pub files: Vec<FileEntry>,
    pub rows: u64,
    pub schema_hash: String,
    pub api_requests: u64,
    pub started_at: String,
    pub committed_at: String,
    pub tool_version: String,
    #[serde(default)]
    pub supersedes: Vec<String>,
    /// Extra: the attempt token in this chunk's file names.
    #[serde(default)]
    pub attempt: String,
    /// Extra: `query` or `queryAll`.
    #[serde(default)]
    pub endpoint: String,
    /// Extra: the SOQL the chunk ran.
    #[serde(default)]
    pub soql: String,
    /// Extra: `totalSize` Salesforce reported (equals `rows`).
    #[serde(default)]
    pub total_size: u64,
    /// The Salesforce org that wrote the chunk (from the token response's identity URL); a
    /// run against another org is refused. Absent in manifests of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
}

/// What a commit attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed,
    /// Another writer committed this chunk first.
    AlreadyCommitted,
}

impl Manifest {
    pub fn path(&self) -> Result<Path, SinkError> {
        let id = ChunkId::parse(&self.chunk_id).ok_or_else(|| SinkError::Manifest {
            path: self.chunk_id.clone(),
            message: "not a chunk id".into(),
        })?;
        Ok(layout::manifest_path(&self.object, &id))
    }

    /// A manifest of an Account chunk without files, committed at `committed_at` (tests set
    /// the fields they need on it).
    #[cfg(test)]
    pub(crate) fn example(chunk: &ChunkId, committed_at: &str, supersedes: &[String]) -> Self {
        Manifest {
            format_version: FORMAT_VERSION,
            object: "Account".into(),
            day: chunk.day().to_string(),
            chunk_id: chunk.to_string(),
            kind: chunk.kind,
            cursor_field: "LastModifiedDate".into(),
            window_start: crate::timefmt::rfc3339(chunk.start),
            window_end: crate::timefmt::rfc3339(chunk.end),
            files: vec![],
            rows: 0,
            schema_hash: String::new(),
            api_requests: 0,
            started_at: committed_at.into(),
            committed_at: committed_at.into(),
            tool_version: String::new(),
            supersedes: supersedes.to_vec(),
            attempt: String::new(),
            endpoint: String::new(),
            soql: String::new(),
            total_size: 0,
            org_id: None,
        }
    }
}

/// Writes the manifest with `PutMode::Create`.
pub async fn commit(store: &dyn ObjectStore, m: &Manifest) -> Result<CommitOutcome, SinkError> {
    let path = m.path()?;
    let body = super::json_line(m).map_err(|e| SinkError::Manifest {
        path: path.to_string(),
        message: e.to_string(),
    })?;
    let opts = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match store.put_opts(&path, PutPayload::from(body), opts).await {
        Ok(_) => Ok(CommitOutcome::Committed),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(CommitOutcome::AlreadyCommitted),
        Err(e) => Err(SinkError::store(format!("committing {path}"), e)),
    }
}

/// Every committed data chunk of an object (record versions: historical, incremental and
/// backfill chunks; not the tombstone lanes), from the listing alone (no reads), sorted.
pub async fn list_chunks(store: &dyn ObjectStore, object: &str) -> Result<Vec<ChunkId>, SinkError> {
    let mut all = list_all_chunks(store, object).await?;
    all.retain(|c| !c.holds_tombstones());
    Ok(all)
}

/// Every committed deletes chunk (tombstones) of an object, sorted.
pub async fn list_delete_chunks(
    store: &dyn ObjectStore,
    object: &str,
) -> Result<Vec<ChunkId>, SinkError> {
    let mut all = list_all_chunks(store, object).await?;
    all.retain(|c| c.is_deletes());
    Ok(all)
}

/// Every committed chunk of an object, of both lanes, sorted.
pub async fn list_all_chunks(
    store: &dyn ObjectStore,
    object: &str,
) -> Result<Vec<ChunkId>, SinkError> {
    let prefix = layout::manifests_prefix(object);
    let metas: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| SinkError::store(format!("listing {prefix}"), e))?;
    let mut out: Vec<ChunkId> = metas
        .iter()
        .filter_map(|m| layout::parse_manifest_path(&m.location))
        .filter(|(o, _)| o == object)
        .map(|(_, id)| id)
        .collect();
    out.sort();
    Ok(out)
}

/// Reads one manifest.
pub async fn load(store: &dyn ObjectStore, path: &Path) -> Result<Manifest, SinkError> {
    let bytes = store
        .get(path)
        .await
        .map_err(|e| SinkError::store(format!("reading {path}"), e))?
        .bytes()
        .await
        .map_err(|e| SinkError::store(format!("reading {path}"), e))?;
    serde_json::from_slice(&bytes).map_err(|e| SinkError::Manifest {
        path: path.to_string(),
        message: e.to_string(),
    })
}

/// Reads the manifests of the given chunks (16 reads in flight), sorted by chunk id.
pub async fn load_some(
    store: Arc<dyn ObjectStore>,
    object: &str,
    ids: Vec<ChunkId>,
) -> Result<Vec<Manifest>, SinkError> {
    let mut out: Vec<Manifest> = futures::stream::iter(ids.into_iter().map(|id| {
        let store = store.clone();
        let path = layout::manifest_path(object, &id);
        async move { load(store.as_ref(), &path).await }
    }))
    .buffer_unordered(16)
    .try_collect()
    .await?;
    out.sort_by(|a, b| a.chunk_id.cmp(&b.chunk_id));
    Ok(out)
}

/// Objects that have manifests in the lake.
pub async fn list_objects(store: &dyn ObjectStore) -> Result<Vec<String>, SinkError> {
    let prefix = layout::manifests_root();
    let r = store.list_with_delimiter(Some(&prefix)).await;
    match r {
        Ok(r) => {
            let mut v: Vec<String> = r
                .common_prefixes
                .iter()
                .filter_map(|p| p.filename().map(str::to_string))
                .collect();
            v.sort();
            Ok(v)
        }
        Err(object_store::Error::NotFound { .. }) => Ok(vec![]),
        Err(e) => Err(SinkError::store("listing manifests", e)),
    }
}
