//! What a run shares below its stages: the [`Context`] (configuration, Salesforce client,
//! store, scratch folder, Delta tables, what the run learns of Bulk and of the commit log),
//! the per-object request [`Budget`] and the one error type of the sync stages, [`SyncError`].

mod budget;
mod bulk;
mod commit_log;
mod error;

pub use budget::Budget;
pub use bulk::BulkState;
pub use commit_log::LogCache;
pub(crate) use error::suggest;
pub use error::SyncError;

use std::sync::Arc;

use object_store::ObjectStore;

use crate::config::Config;
use crate::salesforce::Client;

/// What a run shares: configuration, the Salesforce client and the store.
pub struct Context {
    pub config: Config,
    pub client: Arc<Client>,
    pub store: Arc<dyn ObjectStore>,
    pub scratch: Scratch,
    /// The objects' Delta tables (`destination.table_format = "delta"`).
    pub delta: Option<Arc<crate::sink::delta::DeltaTables>>,
    /// The org's Bulk job allowance and the objects Bulk refused, as this run learns them.
    pub bulk: BulkState,
    /// The day commit log entries this run has read (they never change).
    pub commit_log: LogCache,
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
        let delta = open_tables(&config.destination)?.map(Arc::new);
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

/// The destination's Delta tables, when `destination.table_format = "delta"`.
pub fn open_tables(
    d: &crate::config::DestinationConfig,
) -> Result<Option<crate::sink::delta::DeltaTables>, SyncError> {
    match d.table_format {
        crate::config::TableFormat::None => Ok(None),
        crate::config::TableFormat::Delta => {
            let (root_store, root) = crate::sink::store::open_root(&d.url, &d.options)
                .map_err(|e| crate::context::destination_error(d, e))?;
            Ok(Some(crate::sink::delta::DeltaTables::new(root_store, root)))
        }
    }
}
