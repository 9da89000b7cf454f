//! The current table's Delta mechanics (SPEC §3 "The current table"): one unpartitioned Delta
//! table per object at `<dest>/_current/<Object>/`, with deletion vectors, so that a merge
//! writes one file of new versions and one small deletion vector per file that held a changed
//! record — not a copy of every file a changed record sits in. Which rows change is decided
//! above (`commit::current`); this module reads the table's files and their deletion vectors,
//! creates the table, and makes a merge's commit: its new file, its deletion vectors, the
//! files it rewrote, and the record of the chunks applied (a `domainMetadata` action, read back
//! in one call).

use std::collections::BTreeSet;

use delta_kernel::actions::deletion_vector_writer::{
    KernelDeletionVector, StreamingDeletionVectorWriter,
};
use delta_kernel::scan::state::ScanFile;
use serde::{Deserialize, Serialize};

use super::*;

/// The folder of the current tables, under the destination root.
pub const CURRENT_DIR: &str = "_current";

/// The `domainMetadata` domain holding [`CurrentRecord`].
pub const CURRENT_DOMAIN: &str = "forcelake.current";

/// What the table records about itself, in each merge commit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CurrentRecord {
    /// The chunks (change-log chunk ids) whose rows the table holds: a merge applies only the
    /// others, and a chunk applied twice changes nothing anyway.
    pub applied: BTreeSet<String>,
    /// When the last merge was committed (RFC 3339).
    #[serde(default)]
    pub merged_at: Option<String>,
}

/// One data file of the current table as a merge sees it.
#[derive(Debug, Clone)]
pub struct CurrentFile {
    /// Relative to the table folder.
    pub path: String,
    pub bytes: u64,
    /// Rows in the file (deleted ones included).
    pub rows: u64,
    /// Row indexes its deletion vector removes (sorted).
    pub deleted: Vec<u64>,
}

impl CurrentFile {
    pub fn live_rows(&self) -> u64 {
        self.rows.saturating_sub(self.deleted.len() as u64)
    }
}

/// A snapshot of the current table: what a merge decides against and commits on top of.
#[derive(Clone)]
pub struct CurrentView {
    snapshot: SnapshotRef,
    pub version: u64,
    pub files: Vec<CurrentFile>,
    pub record: CurrentRecord,
    pub schema: Arc<StructType>,
    /// When the version was committed (ms since the epoch).
    pub committed_ms: Option<i64>,
}

impl std::fmt::Debug for CurrentView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurrentView")
            .field("version", &self.version)
            .field("files", &self.files.len())
            .finish()
    }
}

impl CurrentView {
    /// Live rows: every file's rows less its deletion vector.
    pub fn rows(&self) -> u64 {
        self.files.iter().map(CurrentFile::live_rows).sum()
    }
}

/// A file a merge adds (written by the caller into the table folder).
#[derive(Debug, Clone)]
pub struct CurrentAdd {
    /// Relative to the table folder.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

/// One merge's commit.
#[derive(Debug, Clone, Default)]
pub struct CurrentChange {
    pub adds: Vec<CurrentAdd>,
    /// Per file (relative path): row indexes to delete, besides those already deleted.
    pub deletes: HashMap<String, Vec<u64>>,
    /// Files (relative paths) removed whole: their live rows are in `adds`.
    pub removes: Vec<String>,
    /// The record after the merge.
    pub record: CurrentRecord,
    /// Recorded in the commit's `operationParameters`: what this merge applied.
    pub chunks: Vec<String>,
}

impl DeltaTables {
    /// The current table's URL (`<root>/_current/<Object>/`).
    pub fn current_url(&self, object: &str) -> Result<Url, DeltaError> {
        self.root
            .join(&format!("{CURRENT_DIR}/{object}/"))
            .map_err(|e| kernel(object, e))
    }

    /// The table's newest snapshot, `None` when there is no current table yet.
    pub async fn current_view(&self, object: &str) -> Result<Option<CurrentView>, DeltaError> {
        let (engine, url, object_s) = (
            self.engine.clone(),
            self.current_url(object)?,
            object.to_string(),
        );
        tokio::task::spawn_blocking(move || {
            let Some(snap) = latest(&engine, &url, &object_s, None)? else {
                return Ok(None);
            };
            view_of(&engine, &url, &object_s, snap).map(Some)
        })
        .await
        .map_err(|e| kernel(object, e))?
    }

    /// The table's newest snapshot; creates the table (from `arrow`, with deletion vectors on)
    /// when there is none. A racing creator wins and this reads its table.
    pub async fn current_open(
        &self,
        object: &str,
        arrow: &ArrowSchema,
    ) -> Result<CurrentView, DeltaError> {
        let schema = current_schema(object, arrow)?;
        let (engine, url, object_s) = (
            self.engine.clone(),
            self.current_url(object)?,
            object.to_string(),
        );
        tokio::task::spawn_blocking(move || {
            for _ in 0..MAX_ATTEMPTS {
                if let Some(snap) = latest(&engine, &url, &object_s, None)? {
                    return view_of(&engine, &url, &object_s, snap);
                }
                create_current(&engine, &url, &object_s, &schema)?;
            }
            Err(DeltaError::TooManyConflicts {
                object: object_s,
                attempts: MAX_ATTEMPTS,
            })
        })
        .await
        .map_err(|e| kernel(object, e))?
    }

    /// Commits a merge on top of `view`: `Some((version, bytes of the deletion-vector file))`,
    /// or `None` when another writer committed first (the caller decides again on a fresh
    /// view: nothing of this attempt is in the table; its files are the caller's to delete).
    pub async fn current_commit(
        &self,
        object: &str,
        view: &CurrentView,
        arrow: &ArrowSchema,
        change: CurrentChange,
    ) -> Result<Option<(u64, u64)>, DeltaError> {
        let schema = current_schema(object, arrow)?;
        let (engine, url, object_s, view) = (
            self.engine.clone(),
            self.current_url(object)?,
            object.to_string(),
            view.clone(),
        );
        tokio::task::spawn_blocking(move || {
            commit_current(&engine, &url, &object_s, &schema, &view, &change)
        })
        .await
        .map_err(|e| kernel(object, e))?
    }
}

/// The current table's schema: the object's columns (nullable, except `Id`), no partition.
pub fn current_schema(object: &str, arrow: &ArrowSchema) -> Result<Arc<StructType>, DeltaError> {
    let s = StructType::try_from_arrow(arrow).map_err(|e| kernel(object, e))?;
    Ok(Arc::new(s))
}

fn create_current(
    engine: &Engine,
    url: &Url,
    object: &str,
    schema: &Arc<StructType>,
) -> Result<(), DeltaError> {
    let engine_info = format!("forcelake/{}", crate::VERSION);
    // the kernel wants a local table's folder to exist (object stores have no folders)
    if let Ok(dir) = url.to_file_path() {
        std::fs::create_dir_all(&dir)
            .map_err(|e| kernel(object, format!("creating {}: {e}", dir.display())))?;
    }
    let txn = match create_table(url.as_str(), schema.clone(), &engine_info, false)
        .with_table_properties([
            ("delta.enableDeletionVectors", "true"),
            ("delta.feature.domainMetadata", "supported"),
        ])
        .build(engine, Box::new(FileSystemCommitter::new()))
    {
        Ok(t) => t,
        Err(delta_kernel::KernelError::TableAlreadyExistsAtPath(_)) => return Ok(()),
        Err(e) => return Err(kernel(object, e)),
    };
    if let CommitResult::Committed(c) = txn.commit(engine).map_err(|e| kernel(object, e))? {
        tracing::info!(
            object,
            version = c.commit_version(),
            "created the current table"
        );
    }
    Ok(())
}

fn view_of(
    engine: &Engine,
    url: &Url,
    object: &str,
    snap: SnapshotRef,
) -> Result<CurrentView, DeltaError> {
    let record = match snap
        .get_domain_metadata(CURRENT_DOMAIN, engine)
        .map_err(|e| kernel(object, e))?
    {
        Some(s) => serde_json::from_str(&s).map_err(|e| {
            kernel(
                object,
                format!("the current table's {CURRENT_DOMAIN} record is not readable: {e}"),
            )
        })?,
        None => CurrentRecord::default(),
    };
    let scan = snap
        .clone()
        .scan_builder()
        .build()
        .map_err(|e| kernel(object, e))?;
    let mut scan_files: Vec<ScanFile> = Vec::new();
    for meta in scan.scan_metadata(engine).map_err(|e| kernel(object, e))? {
        let meta = meta.map_err(|e| kernel(object, e))?;
        scan_files = meta
            .visit_scan_files(scan_files, |v: &mut Vec<ScanFile>, f: ScanFile| v.push(f))
            .map_err(|e| kernel(object, e))?;
    }
    let mut files = Vec::with_capacity(scan_files.len());
    for f in scan_files {
        let rows = f
            .stats
            .as_ref()
            .map(|s| s.num_records)
            .ok_or_else(|| kernel(object, format!("{}: no numRecords in its stats", f.path)))?;
        let mut deleted = f
            .dv_info
            .get_row_indexes(engine, url)
            .map_err(|e| kernel(object, e))?
            .unwrap_or_default();
        deleted.sort_unstable();
        files.push(CurrentFile {
            path: f.path,
            bytes: f.size.max(0) as u64,
            rows,
            deleted,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(CurrentView {
        version: snap.version(),
        committed_ms: snap.get_timestamp(engine).ok(),
        schema: snap.schema(),
        snapshot: snap,
        files,
        record,
    })
}

fn commit_current(
    engine: &Engine,
    url: &Url,
    object: &str,
    schema: &Arc<StructType>,
    view: &CurrentView,
    change: &CurrentChange,
) -> Result<Option<(u64, u64)>, DeltaError> {
    let engine_info = format!("forcelake/{}", crate::VERSION);
    let s = view.snapshot.clone();
    let new_columns = schema_diff(object, &s.schema(), schema)?;
    let record = serde_json::to_string(&change.record).map_err(|e| kernel(object, e))?;
    let mut builder = s
        .clone()
        .update_table(UpdateTableOperation::Merge, &engine_info, true)
        .with_domain_metadata(CURRENT_DOMAIN, record)
        .with_operation_parameters([("chunks", Some(change.chunks.join(",")))]);
    builder = with_columns(builder, &new_columns);
    let mut txn = builder
        .build(engine, Box::new(FileSystemCommitter::new()))
        .map_err(|e| kernel(object, e))?;
    let write_state = txn.write_state().map_err(|e| kernel(object, e))?;
    let ctx = write_state
        .write_context_builder()
        .build()
        .map_err(|e| kernel(object, e))?;
    for f in &change.adds {
        let location = url.join(&f.path).map_err(|e| kernel(object, e))?;
        add_file(&mut txn, &ctx, object, location, f.rows, f.bytes)?;
    }
    let mut dv_bytes = 0;
    if !change.deletes.is_empty() {
        // one deletion-vector file for every file this merge deletes rows from
        let dv_path = ctx.new_deletion_vector_path(String::new());
        let mut buf = Vec::new();
        let mut writer = StreamingDeletionVectorWriter::new(&mut buf);
        let mut descriptors = HashMap::new();
        for (path, rows) in &change.deletes {
            let old = view
                .files
                .iter()
                .find(|f| &f.path == path)
                .ok_or_else(|| kernel(object, format!("{path} is not in the current table")))?;
            let mut dv = KernelDeletionVector::new();
            dv.add_deleted_row_indexes(old.deleted.iter());
            dv.add_deleted_row_indexes(rows.iter());
            let written = writer
                .write_deletion_vector(dv)
                .map_err(|e| kernel(object, e))?;
            descriptors.insert(path.clone(), written.to_descriptor(&dv_path));
        }
        writer.finalize().map_err(|e| kernel(object, e))?;
        dv_bytes = buf.len() as u64;
        let location = dv_path.absolute_path().map_err(|e| kernel(object, e))?;
        {
            use delta_kernel::Engine as _;
            engine
                .storage_handler()
                .put(&location, buf.into(), false)
                .map_err(|e| kernel(object, e))?;
        }
        let scan = s
            .clone()
            .scan_builder()
            .build()
            .map_err(|e| kernel(object, e))?;
        let files = scan
            .scan_metadata(engine)
            .map_err(|e| kernel(object, e))?
            .map(|m| m.map(|m| m.scan_files));
        txn.update_deletion_vectors(descriptors, files)
            .map_err(|e| kernel(object, e))?;
    }
    if !change.removes.is_empty() {
        let removes: HashSet<&str> = change.removes.iter().map(String::as_str).collect();
        for rows in for_each_scan_file(engine, &s, object, None, |p, _| removes.contains(p))? {
            txn.remove_files(rows);
        }
    }
    match txn.commit(engine).map_err(|e| kernel(object, e))? {
        CommitResult::Committed(c) => {
            let version = c.commit_version();
            checkpoint_if_due(engine, object, &c);
            Ok(Some((version, dv_bytes)))
        }
        CommitResult::Conflicted(_) | CommitResult::Retryable(_) => Ok(None),
    }
}
