//! Where data lands: object stores, partition paths, Parquet files and manifests.

pub mod delta;
pub mod layout;
pub mod manifest;
pub mod read;
pub mod store;
pub mod writer;

/// Storage and encoding errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    #[error("destination {what}: {source}")]
    Store {
        what: String,
        source: object_store::Error,
    },
    #[error("writing Parquet for {what}: {message}")]
    Parquet { what: String, message: String },
    #[error("local temporary file for {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// A local destination folder refused a file (moved into place by rename).
    #[error("destination folder: {what}: {source}")]
    Folder {
        what: String,
        source: std::io::Error,
    },
    /// The destination cannot be used as configured (the message says why and what to do).
    #[error("{0}")]
    Unusable(String),
    #[error(transparent)]
    Delta(#[from] delta::DeltaError),
    #[error("manifest {path}: {message}")]
    Manifest { path: String, message: String },
}

/// A record forcelake writes to the lake (manifest, schema record, backfill plan, failure
/// marker) as one JSON object on one line (JSON Lines), so `spark.read.json` reads a folder of
/// them without `multiLine`.
pub fn json_line(value: &impl serde::Serialize) -> Result<Vec<u8>, serde_json::Error> {
    let mut body = serde_json::to_vec(value)?;
    body.push(b'\n');
    Ok(body)
}

impl SinkError {
    pub(crate) fn store(what: impl Into<String>, source: object_store::Error) -> Self {
        SinkError::Store {
            what: what.into(),
            source,
        }
    }
}
