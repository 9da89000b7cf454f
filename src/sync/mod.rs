//! Running syncs: planning chunks, running them with bounded concurrency, and reporting.

pub mod backfill;
pub mod bulk;
pub mod chunk;
pub mod counts;
pub mod delta;
pub mod fetch;
pub mod gate;
pub mod historical;
pub mod incremental;
pub mod offpeak;
pub mod plan;
pub mod prepare;
pub mod progress;
pub mod runner;
pub mod status;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use object_store::ObjectStore;
use serde::Serialize;

use crate::config::{Config, ConfigError};
use crate::decode::DecodeError;
use crate::salesforce::{ApiUsage, Client, SfError};
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
    #[error("object {name:?} does not exist or is not visible to the Run-As user{}", crate::sync::suggest(.suggestions))]
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

/// Per-object request budget for one run (`sync.query_limit`).
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    used: AtomicU64,
}

impl Budget {
    pub fn new(limit: u32) -> Self {
        Self {
            limit: limit as u64,
            used: AtomicU64::new(0),
        }
    }
    /// Takes one request from the budget; false when it is spent.
    pub fn try_take(&self) -> bool {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                (u < self.limit).then_some(u + 1)
            })
            .is_ok()
    }
    /// Takes one request even past the limit (the results pages of a Bulk job already
    /// created, which are only of use read whole).
    pub fn force_take(&self) {
        self.used.fetch_add(1, Ordering::SeqCst);
    }
    /// Requests left before the limit.
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used.load(Ordering::SeqCst))
    }
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }
    pub fn exhausted(&self) -> bool {
        self.used.load(Ordering::SeqCst) >= self.limit
    }
}

/// What a run shares: configuration, the Salesforce client and the store.
pub struct Context {
    pub config: Config,
    pub client: Arc<Client>,
    pub store: Arc<dyn ObjectStore>,
    pub scratch: Scratch,
    /// The objects' Delta tables (`destination.table_format = "delta"`).
    pub delta: Option<Arc<crate::sink::delta::DeltaTables>>,
    /// The org's Bulk job allowance and the objects Bulk refused, as this run learns them.
    pub bulk: bulk::BulkState,
    /// The day commit log entries this run has read (they never change).
    pub commit_log: gate::LogCache,
}

/// Where a chunk's Parquet files are written before they are placed in the store.
pub struct Scratch {
    /// The folder of the temp files.
    pub dir: std::path::PathBuf,
    /// The destination itself when it is a local folder: finished files are renamed into it.
    pub local: Option<Arc<object_store::local::LocalFileSystem>>,
}

/// The destination cannot be opened (exit 2).
pub(crate) fn destination_error(
    d: &crate::config::DestinationConfig,
    e: crate::sink::SinkError,
) -> SyncError {
    SyncError::Destination {
        url: d.url.clone(),
        message: e.to_string(),
    }
}

impl Context {
    /// Connects nothing yet: builds the client and opens the store.
    pub fn new(config: Config) -> Result<Self, SyncError> {
        let client = Arc::new(Client::new(&config.salesforce, &config.sync)?);
        let (store, local) = crate::sink::store::open_with_folder(
            &config.destination.url,
            &config.destination.options,
        )
        .map_err(|e| destination_error(&config.destination, e))?;
        let delta = delta::open_tables(&config.destination)?.map(Arc::new);
        Ok(Self {
            client,
            store,
            delta,
            scratch: Scratch {
                dir: std::env::temp_dir(),
                local,
            },
            bulk: Default::default(),
            commit_log: Default::default(),
            config,
        })
    }
}

impl Context {
    /// Why no new window may start now: the org's rolling API usage passed
    /// `sync.api_budget_percent` (from the last `Sforce-Limit-Info`).
    pub fn api_budget_stop(&self) -> Option<String> {
        let u = self.client.api_usage()?;
        let pct = self.config.sync.api_budget_percent;
        (u.max > 0 && u.used * 100 >= u.max * pct as u64).then(|| {
            format!(
                "the org's API usage {}/{} passed sync.api_budget_percent = {pct}%",
                u.used, u.max
            )
        })
    }

    /// The pause reason when an object's `sync.query_limit` is spent.
    pub fn query_limit_reason(&self) -> String {
        format!(
            "sync.query_limit = {} requests reached for this run",
            self.config.sync.query_limit
        )
    }
}

/// The pause reason when Salesforce says the daily API allowance is used up.
pub fn daily_limit_reason(message: &str) -> String {
    format!("the org's daily API limit is reached ({message})")
}

/// Per-object outcome of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ObjectSummary {
    pub object: String,
    pub rows: u64,
    /// Day chunks planned (one object × one UTC day, or part of one).
    pub chunks_planned: u64,
    /// Query windows planned: one Salesforce query each, over one or many days.
    pub windows_planned: u64,
    pub chunks_committed: u64,
    /// Found committed by another writer while this run was on them.
    pub chunks_already_committed: u64,
    pub chunks_failed: u64,
    /// Planned but not run (query limit, API budget, daily limit); the next run does them.
    pub chunks_pending: u64,
    pub requests: u64,
    /// `complete`, `paused` or `failed`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Schema changes and other things worth a look.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What the run did that the user should know (e.g. an end in the future was cut).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Historical and backfill: where the fetched range ends (cut at now − sync.lag_s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range_end: Option<String>,
    /// Records whose (nillable) cursor is null: they belong to no day and are never synced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub null_cursor_records: Option<u64>,
    /// Incremental: the pipeline's start point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incremental_start: Option<String>,
    /// Incremental: the position before and after this run, and the window end it aimed for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_end: Option<String>,
}

/// The summary of a run (stdout with `--json`, and the log).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub command: String,
    pub mode: String,
    pub status: String,
    pub objects: Vec<ObjectSummary>,
    pub requests: u64,
    pub api_usage: Option<ApiUsage>,
    pub elapsed_s: f64,
    pub destination: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backfill_id: Option<String>,
    /// The off-peak window, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<serde_json::Value>,
    /// A window failed for a configuration reason (exit 2 rather than 1).
    #[serde(skip)]
    pub config_error: bool,
}

impl RunSummary {
    /// Fills in what the client counted and the elapsed time.
    pub fn finish(mut self, ctx: &Context, started: std::time::Instant) -> Self {
        self.requests = ctx.client.requests_sent();
        self.api_usage = ctx.client.api_usage();
        self.elapsed_s = started.elapsed().as_secs_f64();
        self
    }

    /// 0 when all work is committed or cleanly paused, 1 when a chunk failed.
    pub fn exit_code(&self) -> u8 {
        if self.config_error {
            2
        } else if self.objects.iter().any(|o| o.chunks_failed > 0) {
            1
        } else {
            0
        }
    }

    /// A few human lines.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for o in &self.objects {
            s.push_str(&format!(
                "{:<20} {:>10} rows  {:>5} chunks committed  {:>4} pending  {:>3} failed  {:>6} requests  {}{}\n",
                o.object,
                o.rows,
                o.chunks_committed,
                o.chunks_pending,
                o.chunks_failed,
                o.requests,
                o.status,
                o.paused_reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default()
            ));
            for e in &o.errors {
                s.push_str(&format!("    error: {e}\n"));
            }
            for w in &o.warnings {
                s.push_str(&format!("    warning: {w}\n"));
            }
            for n in &o.notes {
                s.push_str(&format!("    note: {n}\n"));
            }
            if let Some(p) = &o.position_after {
                s.push_str(&format!(
                    "    incremental position: {p}{}\n",
                    o.incremental_start
                        .as_ref()
                        .map(|st| format!(" (pipeline start point {st})"))
                        .unwrap_or_default()
                ));
            }
        }
        if let Some(u) = self.api_usage {
            s.push_str(&format!(
                "org API usage: {}/{} ({:.1}%)\n",
                u.used,
                u.max,
                100.0 * u.used as f64 / u.max.max(1) as f64
            ));
        }
        if let Some(w) = &self.window {
            if w["open"] == false {
                let pending: u64 = self.objects.iter().map(|o| o.chunks_pending).sum();
                s.push_str(&format!("off-peak window closed: {pending} chunks remain; the next window opens at {}\n", w["next_opens_at"].as_str().unwrap_or("?")));
            }
        }
        s.push_str(&format!(
            "{}: {} in {:.1}s, {} requests\n",
            self.command, self.status, self.elapsed_s, self.requests
        ));
        s
    }
}
