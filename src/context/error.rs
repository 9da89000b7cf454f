//! [`SyncError`]: everything a run can fail with, and the exit code each maps to.

use crate::config::ConfigError;
use crate::decode::DecodeError;
use crate::salesforce::SfError;
use crate::schema::SchemaError;
use crate::sink::SinkError;

/// Everything a run can fail with, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Salesforce(#[from] SfError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("object {name:?} does not exist or is not visible to the Run-As user{}", suggest(.suggestions))]
    UnknownObject {
        name: String,
        suggestions: Vec<String>,
    },
    #[error("object {name} cannot be queried (describe says queryable: false)")]
    NotQueryable { name: String },
    #[error(
        "{object} {chunk}: received {received} records but Salesforce reported totalSize {total}"
    )]
    CountMismatch {
        object: String,
        chunk: String,
        received: u64,
        total: u64,
    },
    #[error("{object}: the lake at {destination} was written with cursor {lake}, but the configuration says {configured}; its day partitions follow {lake}, so mixing cursors would misfile records. Keep cursor_field = \"{lake}\" for {object} on this destination, or write the new cursor to a new destination.url")]
    CursorChanged {
        object: String,
        lake: String,
        configured: String,
        destination: String,
    },
    #[error("destination.url {url}: {message}")]
    Destination { url: String, message: String },
    #[error("{object} {window}: Bulk API 2.0 job {job} ended {state}{}", .message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    BulkJobFailed {
        object: String,
        window: String,
        job: String,
        state: String,
        message: Option<String>,
    },
    #[error("{object}: Bulk API 2.0 cannot fetch it ({message}); with sync.api = \"bulk\" that is a configuration error: set sync.api = \"auto\" (such objects and fields then go over REST) or leave the field out")]
    BulkRefused { object: String, message: String },
    #[error("the org's daily Bulk API 2.0 query job allowance is used up or guarded ({message}); no new job is started, and the next run resumes")]
    BulkAllowance { message: String },
    #[error("{object} {chunk}: {by} was committed while this backfill ran and reaches past its end; the day is fetched again to cover it")]
    Overtaken {
        object: String,
        chunk: String,
        by: String,
    },
    #[error("destination.url {destination} holds the lake of Salesforce org {lake}, but this configuration's token is for org {org}: one lake holds one org. Point destination.url at another folder for this org (e.g. a sandbox), or salesforce.instance_url back at org {lake}")]
    OtherOrg {
        destination: String,
        lake: String,
        org: String,
    },
    #[error("{object}.{field} was in the lake and is no longer in Salesforce's describe: it was deleted, or field-level security now hides it from the Run-As user. {object} is not synced until it is back (give the Run-As user's profile or permission set read access to it) or removed from the object's `fields` list; the lake keeps what it has of it, and the other objects sync")]
    FieldGone { object: String, field: String },
    #[error("{object} is in the lake but cannot be read any more ({message}); the lake keeps what it has of it, and the other objects sync")]
    ObjectGone { object: String, message: String },
    #[error("{0}")]
    Internal(String),
}

pub(crate) fn suggest(s: &[String]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", s.join(", "))
    }
}

impl SyncError {
    /// 2 for configuration, usage and authentication problems; 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            SyncError::Config(_)
            | SyncError::Schema(_)
            | SyncError::UnknownObject { .. }
            | SyncError::NotQueryable { .. }
            | SyncError::CursorChanged { .. }
            | SyncError::OtherOrg { .. }
            | SyncError::BulkRefused { .. }
            | SyncError::Destination { .. } => 2,
            SyncError::Salesforce(e) if e.is_user_error() => 2,
            SyncError::Sink(SinkError::Delta(crate::sink::delta::DeltaError::TypeChanged {
                ..
            })) => 2,
            _ => 1,
        }
    }

    /// Worth redoing the chunk from its start.
    pub fn is_retryable(&self) -> bool {
        match self {
            SyncError::Salesforce(e) => {
                e.is_retryable()
                    || matches!(e, SfError::Api { code, .. } if code == "INVALID_QUERY_LOCATOR")
            }
            SyncError::Decode(e) => e.is_retryable(),
            SyncError::CountMismatch { .. } => true,
            SyncError::Overtaken { .. } => true,
            SyncError::BulkJobFailed { .. } => true,
            SyncError::Sink(SinkError::Store { .. }) => true,
            _ => false,
        }
    }
}
