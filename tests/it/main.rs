//! One integration-test binary (one link step): the real `forcelake` binary against the
//! in-process Salesforce emulator over HTTP, with the lake read back from Parquet.

mod util;

mod backfill;
mod bulk;
mod crash;
mod current;
mod deletes;
mod delta;
mod errors;
mod evolution;
mod faults;
mod firstday;
mod historical;
mod incremental;
mod memory;
pub mod races;
mod relationships;
mod stores;
mod windows;
