//! A chunk job: what one query window needs to run, and how it ended.

use std::sync::Arc;

use chrono::Utc;

use rand::Rng;

use crate::schema::ObjectSchema;
use crate::sink::layout::ChunkId;
use crate::sink::writer::ParquetSettings;

/// Parquet settings of a run: each chunk in flight gets an equal share of
/// `sync.memory_limit_mb`; a quarter of it is for the row group being built, the rest for
/// its pages in flight, the decoded batch and the encoder's working buffers.
pub fn parquet_settings(config: &crate::config::Config) -> ParquetSettings {
    let share = memory_share(config, config.sync.concurrency);
    ParquetSettings::new(config.destination.compression, share / 4)
}

/// A window's share of `sync.memory_limit_mb`, in bytes, when `in_flight` windows run at once.
pub fn memory_share(config: &crate::config::Config, in_flight: usize) -> usize {
    (config.sync.memory_limit_mb << 20) / in_flight.max(1)
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
    /// Records the plan counted in the window (`Some(0)`: nothing to fetch, no query).
    pub expected: Option<u64>,
    /// Fetched by a Bulk API 2.0 job rather than a REST query.
    pub bulk: bool,
    /// This window's share of `sync.memory_limit_mb`, in bytes.
    pub memory_share: usize,
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
            expected: None,
            bulk: config.sync.api == crate::config::Api::Bulk,
            memory_share: memory_share(config, config.sync.concurrency),
        }
    }
}

/// How a window ended (errors are `Err`; day chunks committed before an error stay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// `chunks` day chunks committed (with `rows` records).
    Committed {
        rows: u64,
        requests: u64,
        chunks: u64,
    },
    /// Every day of the window was already committed (by an earlier run or another worker).
    AlreadyCommitted { requests: u64 },
    /// The object's query budget ran out mid-window: the days passed before are committed.
    BudgetSpent {
        requests: u64,
        rows: u64,
        chunks: u64,
    },
}

/// A random token that makes this attempt's file names unique.
pub fn attempt_token() -> String {
    format!("{:08x}", rand::rng().random::<u32>())
}

/// Day chunks a window attempt committed, or found committed by another writer.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) rows: u64,
    pub(crate) committed: u64,
    pub(crate) already: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, other: &Tally) {
        self.rows += other.rows;
        self.committed += other.committed;
        self.already += other.already;
    }

    pub(crate) fn outcome(&self, requests: u64, budget_spent: bool) -> ChunkOutcome {
        match (budget_spent, self.committed) {
            (true, _) => ChunkOutcome::BudgetSpent {
                requests,
                rows: self.rows,
                chunks: self.committed,
            },
            (false, 0) => ChunkOutcome::AlreadyCommitted { requests },
            (false, n) => ChunkOutcome::Committed {
                rows: self.rows,
                requests,
                chunks: n,
            },
        }
    }
}
