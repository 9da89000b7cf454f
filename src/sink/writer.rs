//! Parquet encoding of one chunk into local temporary files (rolled at a size limit), and
//! their upload to the store. Encoding is synchronous and runs on a blocking thread; memory is
//! bounded by the row group being built, never by the chunk's size.

use std::fs::File;
use std::path::Path as FsPath;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as PqCompression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use tempfile::NamedTempFile;
use tokio::io::AsyncReadExt;

use crate::config::Compression;
use crate::sink::SinkError;

/// Row groups of about 128 MiB or 1,000,000 rows, or smaller when the memory a row group
/// holds while it is built reaches `row_group_memory`; files rolled at about 512 MiB (SPEC §3).
#[derive(Debug, Clone)]
pub struct ParquetSettings {
    pub compression: Compression,
    pub max_row_group_rows: usize,
    pub max_row_group_bytes: usize,
    /// A row group is flushed once the writer holds this many bytes for it.
    pub row_group_memory: usize,
    pub roll_bytes: u64,
}

impl ParquetSettings {
    pub fn new(compression: Compression, row_group_memory: usize) -> Self {
        Self {
            compression,
            max_row_group_rows: 1_000_000,
            max_row_group_bytes: 128 << 20,
            row_group_memory: row_group_memory.clamp(1 << 20, 256 << 20),
            roll_bytes: 512 << 20,
        }
    }

    fn properties(&self, object: &str, chunk_id: &str, schema: &Schema) -> WriterProperties {
        let compression = match self.compression {
            Compression::Zstd => {
                PqCompression::ZSTD(ZstdLevel::try_new(1).expect("level 1 is valid"))
            }
            Compression::Snappy => PqCompression::SNAPPY,
            Compression::None => PqCompression::UNCOMPRESSED,
        };
        let mut b = WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_row_count(Some(self.max_row_group_rows))
            .set_max_row_group_bytes(Some(self.max_row_group_bytes))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_created_by(format!("forcelake version {}", crate::VERSION))
            .set_key_value_metadata(Some(vec![
                KeyValue::new("forcelake.object".to_string(), object.to_string()),
                KeyValue::new("forcelake.chunk_id".to_string(), chunk_id.to_string()),
            ]));
        for f in schema.fields() {
            let sf_type = f.metadata().get("salesforce.type").map(String::as_str);
            if sf_type.is_some_and(|t| !dictionary_pays(t)) {
                b = b.set_column_dictionary_enabled(ColumnPath::from(f.name().as_str()), false);
            }
        }
        if schema.field_with_name("Id").is_ok() {
            // Sized for the rows a row group can hold within its memory share (≥ 100 bytes a
            // row), not for a million: the filter is allocated whole while the group is built.
            let ndv = (self.row_group_memory / 100).clamp(10_000, self.max_row_group_rows) as u64;
            b = b
                .set_column_bloom_filter_enabled(ColumnPath::from("Id"), true)
                .set_column_bloom_filter_max_ndv(ColumnPath::from("Id"), ndv);
        }
        b.build()
    }
}

/// Whether values of a Salesforce type repeat enough for dictionary encoding to pay. Record
/// Ids, datetimes, coordinates, phone numbers, URLs, e-mail addresses and text areas are
/// (nearly) unique within a day: hashing every value into a dictionary then costs encode time
/// and yields a larger file than plain encoding. Picklists, references, booleans, numbers and
/// short text keep Parquet's default (dictionary, falling back to plain when it grows large).
fn dictionary_pays(sf_type: &str) -> bool {
    !matches!(
        sf_type,
        "id" | "datetime" | "double" | "phone" | "url" | "email" | "textarea" | "encryptedstring"
    )
}

/// A finished local part, ready to upload.
#[derive(Debug)]
pub struct LocalPart {
    pub file: NamedTempFile,
    pub rows: u64,
    pub bytes: u64,
}

/// Writes one chunk's batches into rolled Parquet temp files.
pub struct ChunkFileWriter {
    schema: SchemaRef,
    props: WriterProperties,
    roll_bytes: u64,
    row_group_memory: usize,
    tmp_dir: std::path::PathBuf,
    current: Option<(ArrowWriter<File>, NamedTempFile, u64)>,
    done: Vec<LocalPart>,
    what: String,
}

impl ChunkFileWriter {
    pub fn new(
        schema: SchemaRef,
        settings: &ParquetSettings,
        object: &str,
        chunk_id: &str,
        tmp_dir: &FsPath,
    ) -> Self {
        Self {
            props: settings.properties(object, chunk_id, &schema),
            schema,
            roll_bytes: settings.roll_bytes,
            row_group_memory: settings.row_group_memory,
            tmp_dir: tmp_dir.to_path_buf(),
            current: None,
            done: Vec::new(),
            what: format!("{object} {chunk_id}"),
        }
    }

    fn pq_err(&self, e: impl std::fmt::Display) -> SinkError {
        SinkError::Parquet {
            what: self.what.clone(),
            message: e.to_string(),
        }
    }

    /// Appends a batch (empty batches are ignored).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.current.is_none() {
            let tmp = tempfile::Builder::new()
                .prefix(".forcelake-")
                .suffix(".parquet")
                .tempfile_in(&self.tmp_dir)
                .map_err(|source| SinkError::Io {
                    what: self.what.clone(),
                    source,
                })?;
            let f = tmp.reopen().map_err(|source| SinkError::Io {
                what: self.what.clone(),
                source,
            })?;
            let w = ArrowWriter::try_new(f, self.schema.clone(), Some(self.props.clone()))
                .map_err(|e| self.pq_err(e))?;
            self.current = Some((w, tmp, 0));
        }
        let (w, _, rows) = self.current.as_mut().expect("just set");
        w.write(batch).map_err(|e| SinkError::Parquet {
            what: self.what.clone(),
            message: e.to_string(),
        })?;
        *rows += batch.num_rows() as u64;
        if w.memory_size() >= self.row_group_memory {
            w.flush().map_err(|e| SinkError::Parquet {
                what: self.what.clone(),
                message: e.to_string(),
            })?;
        }
        if w.bytes_written() as u64 + w.in_progress_size() as u64 >= self.roll_bytes {
            self.close_current()?;
        }
        Ok(())
    }

    fn close_current(&mut self) -> Result<(), SinkError> {
        if let Some((w, tmp, rows)) = self.current.take() {
            w.close().map_err(|e| self.pq_err(e))?;
            let bytes = tmp
                .as_file()
                .metadata()
                .map_err(|source| SinkError::Io {
                    what: self.what.clone(),
                    source,
                })?
                .len();
            self.done.push(LocalPart {
                file: tmp,
                rows,
                bytes,
            });
        }
        Ok(())
    }

    /// Closes the open file and returns every part.
    pub fn finish(mut self) -> Result<Vec<LocalPart>, SinkError> {
        self.close_current()?;
        Ok(std::mem::take(&mut self.done))
    }
}

const PART: usize = 8 << 20;

/// Puts a finished part at `dest`. A local destination on the temp folder's file system takes
/// the file by rename (atomic, and no second copy of the data); otherwise it is uploaded.
pub async fn place(
    store: &Arc<dyn ObjectStore>,
    local: Option<&LocalFileSystem>,
    part: LocalPart,
    dest: &Path,
) -> Result<(), SinkError> {
    let Some(fs) = local else {
        return upload(store, part.file.path(), dest).await;
    };
    let target = fs
        .path_to_filesystem(dest)
        .map_err(|e| SinkError::store(format!("placing {dest}"), e))?;
    let moved = tokio::task::spawn_blocking(move || rename_into(part.file, &target))
        .await
        .map_err(|e| SinkError::Folder {
            what: format!("placing {dest}"),
            source: std::io::Error::other(e),
        })?;
    match moved? {
        None => Ok(()),
        Some(file) => upload(store, file.path(), dest).await,
    }
}

/// Renames a temp file to `target`, creating its folder; gives the file back when the two
/// lie on different file systems (the caller copies it instead).
fn rename_into(file: NamedTempFile, target: &FsPath) -> Result<Option<NamedTempFile>, SinkError> {
    let err = |what: String| move |source| SinkError::Folder { what, source };
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(err(format!("creating {}", parent.display())))?;
    }
    // Temp files are private (0600); a lake file gets the mode the store gives new files.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(err(format!("making {} readable", file.path().display())))?;
    }
    match file.persist(target) {
        Ok(_) => Ok(None),
        Err(e) if e.error.kind() == std::io::ErrorKind::CrossesDevices => Ok(Some(e.file)),
        Err(e) => Err(err(format!(
            "moving a finished file to {}",
            target.display()
        ))(e.error)),
    }
}

/// Uploads a local file: one put when small, a streamed multipart upload (aborted on failure) when large.
pub async fn upload(
    store: &Arc<dyn ObjectStore>,
    local: &FsPath,
    dest: &Path,
) -> Result<(), SinkError> {
    let what = || format!("uploading {dest}");
    let mut f = tokio::fs::File::open(local)
        .await
        .map_err(|source| SinkError::Io {
            what: what(),
            source,
        })?;
    let len = f
        .metadata()
        .await
        .map_err(|source| SinkError::Io {
            what: what(),
            source,
        })?
        .len();
    if len as usize <= PART {
        let mut buf = Vec::with_capacity(len as usize);
        f.read_to_end(&mut buf)
            .await
            .map_err(|source| SinkError::Io {
                what: what(),
                source,
            })?;
        store
            .put(dest, PutPayload::from(buf))
            .await
            .map_err(|e| SinkError::store(what(), e))?;
        return Ok(());
    }
    let up = store
        .put_multipart(dest)
        .await
        .map_err(|e| SinkError::store(what(), e))?;
    let mut w = WriteMultipart::new_with_chunk_size(up, PART);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if let Err(e) = w.wait_for_capacity(4).await {
            let _ = w.abort().await;
            return Err(SinkError::store(what(), e));
        }
        let n = match f.read(&mut buf).await {
            Ok(n) => n,
            Err(source) => {
                let _ = w.abort().await;
                return Err(SinkError::Io {
                    what: what(),
                    source,
                });
            }
        };
        if n == 0 {
            break;
        }
        w.write(&buf[..n]);
    }
    w.finish().await.map_err(|e| SinkError::store(what(), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn part(dir: &FsPath, body: &[u8]) -> LocalPart {
        let mut file = NamedTempFile::new_in(dir).unwrap();
        file.write_all(body).unwrap();
        LocalPart {
            file,
            rows: 1,
            bytes: body.len() as u64,
        }
    }

    #[test]
    fn dictionaries_only_where_values_repeat() {
        use arrow::datatypes::{DataType, Field};
        let f = |name: &str, sf: &str| {
            Field::new(name, DataType::Utf8, true).with_metadata(std::collections::HashMap::from([
                ("salesforce.type".to_string(), sf.to_string()),
            ]))
        };
        let schema = Schema::new(vec![
            f("Id", "id"),
            f("Industry", "picklist"),
            f("OwnerId", "reference"),
            f("Description", "textarea"),
            f("SystemModstamp", "datetime"),
            f("Phone", "phone"),
            Field::new("NoMetadata", DataType::Utf8, true),
        ]);
        let props =
            ParquetSettings::new(Compression::Zstd, 4 << 20).properties("Account", "c", &schema);
        let dict = |c: &str| props.dictionary_enabled(&ColumnPath::from(c));
        assert!(dict("Industry") && dict("OwnerId") && dict("NoMetadata"));
        assert!(!dict("Id") && !dict("Description") && !dict("SystemModstamp") && !dict("Phone"));
        assert!(props
            .bloom_filter_properties(&ColumnPath::from("Id"))
            .is_some());
    }

    #[tokio::test]
    async fn a_local_destination_takes_finished_files_by_rename_or_by_copy() {
        let lake = tempfile::tempdir().unwrap();
        let fs = LocalFileSystem::new_with_prefix(lake.path()).unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(lake.path()).unwrap());

        // Same file system: renamed into a new partition folder, readable like any store file.
        let p = part(lake.path(), b"same");
        let tmp_path = p.file.path().to_path_buf();
        let dest = Path::from("Account/date=2025-01-01/a-0.parquet");
        place(&store, Some(&fs), p, &dest).await.unwrap();
        let on_disk = lake.path().join("Account/date=2025-01-01/a-0.parquet");
        assert_eq!(std::fs::read(&on_disk).unwrap(), b"same");
        assert!(!tmp_path.exists(), "moved, not copied");
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        assert_eq!(
            std::fs::metadata(&on_disk).unwrap().permissions().mode() & 0o777,
            0o644
        );

        // Another file system (tmpfs, where there is one): copied through the store instead.
        let shm = FsPath::new("/dev/shm");
        if shm.is_dir()
            && std::fs::metadata(shm).unwrap().dev()
                != std::fs::metadata(lake.path()).unwrap().dev()
        {
            let dest = Path::from("Account/date=2025-01-02/b-0.parquet");
            place(&store, Some(&fs), part(shm, b"other"), &dest)
                .await
                .unwrap();
            let got = store.get(&dest).await.unwrap().bytes().await.unwrap();
            assert_eq!(&got[..], b"other");
        }

        // A file where the partition folder must go: an error naming the folder.
        std::fs::write(lake.path().join("Account/date=2025-01-03"), b"x").unwrap();
        let dest = Path::from("Account/date=2025-01-03/c-0.parquet");
        let e = place(&store, Some(&fs), part(lake.path(), b"c"), &dest)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("destination folder: creating "), "{e}");
        assert!(e.contains("date=2025-01-03"), "{e}");
    }
}
