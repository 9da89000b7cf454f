//! forcelake: extract Salesforce records into a typed, day-partitioned Parquet data lake.
//!
//! The folders are the data flow; a module imports only from those below it:
//! - [`cli`] (arguments, dispatch) → [`app`] (one file per command)
//! - → [`modes`] (historical, incremental, backfill: what to fetch, as jobs for the runner)
//! - → [`run`] (the runner: concurrency, retries, off-peak gate, progress, per-object preparation)
//! - → [`plan`] (counts, query windows, REST or Bulk) and [`fetch`] (REST pages, Bulk jobs)
//! - → [`commit`] (a window's rows by day, the commit gate, manifests, Delta catch-up)
//! - → [`context`] (what a run shares: client, store, budget, error type)
//! - → [`sink`] (lake paths, manifests, Parquet writer, stores, Delta log), [`decode`],
//!   [`schema`], [`salesforce`]
//! - → [`config`], [`ranges`], [`timefmt`].
//!
//! [`emulator`] is a Salesforce stand-in for the demo and the tests, independent of the rest.

#![recursion_limit = "256"]

pub mod app;
pub mod cli;
pub mod commit;
pub mod config;
pub mod context;
pub mod decode;
pub mod emulator;
pub mod fetch;
pub mod modes;
pub mod plan;
pub mod ranges;
pub mod run;
pub mod salesforce;
pub mod schema;
pub mod sink;
pub mod timefmt;

/// The version written into manifests and Parquet `created_by`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
