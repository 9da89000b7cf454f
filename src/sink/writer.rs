//! Parquet encoding of one chunk into local temporary files (rolled at a size limit), and
//! their upload to the store. Encoding is synchronous and runs on a blocking thread; memory is
//! bounded by the row group being built, never by the chunk's size.

use std::fs::File;
use std::path::Path as FsPath;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
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

    fn properties(&self, object: &str, chunk_id: &str, has_id: bool) -> WriterProperties {
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
        if has_id {
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
        let has_id = schema.field_with_name("Id").is_ok();
        Self {
            props: settings.properties(object, chunk_id, has_id),
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
