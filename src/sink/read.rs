//! Reading the lake's own Parquet files back (the current table's merges): streamed a row group
//! at a time, only the columns asked for, so memory follows the row group, not the file.

use std::sync::Arc;

use arrow::array::RecordBatch;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
// `ParquetObjectReader` is deprecated in favour of an own `AsyncFileReader`; it is still the
// crate's reader for object_store and does what is needed here.
#[allow(deprecated)]
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
use parquet::arrow::ProjectionMask;

use crate::sink::SinkError;

/// Rows per batch read.
const BATCH_ROWS: usize = 8192;

/// Calls `f` with each batch of the file at `path` (relative to the store), of `size` bytes
/// (asked for when `None`: Azure answers no suffix range, so the footer is read by offset), in
/// row order, with only the top-level `columns` the file has (all columns when `None`). A file
/// that is gone is [`is_not_found`].
pub async fn for_each_batch(
    store: &Arc<dyn ObjectStore>,
    path: &str,
    size: Option<u64>,
    columns: Option<&[&str]>,
    mut f: impl FnMut(RecordBatch) -> Result<(), SinkError>,
) -> Result<(), SinkError> {
    let location = Path::from(path);
    let size = match size {
        Some(s) => s,
        None => {
            store
                .head(&location)
                .await
                .map_err(|e| SinkError::store(format!("reading {path}"), e))?
                .size
        }
    };
    #[allow(deprecated)]
    let reader = ParquetObjectReader::new(store.clone(), location).with_file_size(size);
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(|e| parquet_error(path, e))?;
    let builder = match columns {
        None => builder,
        Some(names) => {
            let roots: Vec<usize> = builder
                .schema()
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| names.iter().any(|n| n == f.name()))
                .map(|(i, _)| i)
                .collect();
            let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
            builder.with_projection(mask)
        }
    };
    let mut stream = builder
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| parquet_error(path, e))?;
    while let Some(batch) = stream
        .try_next()
        .await
        .map_err(|e| parquet_error(path, e))?
    {
        f(batch)?;
    }
    Ok(())
}

fn parquet_error(path: &str, e: parquet::errors::ParquetError) -> SinkError {
    match e {
        parquet::errors::ParquetError::External(inner) => {
            match inner.downcast::<object_store::Error>() {
                Ok(source) => SinkError::store(format!("reading {path}"), *source),
                Err(other) => SinkError::Parquet {
                    what: path.to_string(),
                    message: other.to_string(),
                },
            }
        }
        other => SinkError::Parquet {
            what: path.to_string(),
            message: other.to_string(),
        },
    }
}

/// True when a read failed because the file is gone (a backfill's clean-up, a compaction).
pub fn is_not_found(e: &SinkError) -> bool {
    matches!(
        e,
        SinkError::Store {
            source: object_store::Error::NotFound { .. },
            ..
        }
    )
}
