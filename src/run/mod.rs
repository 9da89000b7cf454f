//! Running planned windows: preparation of each object, bounded concurrency, retries,
//! the off-peak gate, progress and the run's summary.

pub mod current;
pub mod offpeak;
pub mod prepare;
pub mod progress;
pub mod runner;
pub mod summary;

pub use summary::{ObjectSummary, RunSummary};
