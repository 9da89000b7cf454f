//! The sync modes: which windows a run of each mode fetches (thin planners over [`crate::run`]).

pub mod backfill;
pub mod historical;
pub mod incremental;
