//! forcelake: extract Salesforce records into a typed, day-partitioned Parquet data lake.
//!
//! The crate is split by responsibility:
//! - [`config`]: the TOML pipeline file, validated into a typed [`config::Config`].
//! - [`salesforce`]: OAuth client credentials, describe, query/queryAll paging, SOQL text.
//! - [`schema`]: describe metadata → Arrow schema (pure).
//! - [`decode`]: REST JSON pages → Arrow `RecordBatch` (pure, exact decimals).
//! - [`sink`]: object stores, Parquet files, partition paths and manifests.
//! - [`sync`]: planning and running chunks (historical mode), status.
//! - [`emulator`]: a local Salesforce emulator used by the demo and the tests.

#![recursion_limit = "256"]

pub mod cli;
pub mod config;
pub mod decode;
pub mod demo;
pub mod emulator;
pub mod salesforce;
pub mod schema;
pub mod sink;
pub mod sync;
pub mod timefmt;

/// The version written into manifests and Parquet `created_by`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
