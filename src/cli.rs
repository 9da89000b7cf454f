//! Command-line interface: clap types and the dispatcher. `main.rs` only parses, sets up
//! logging and maps the result to an exit code.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::app::emulator::EmulatorArgs;
use crate::app::plan::PlanWhat;
use crate::app::sync::BackfillArgs;
use crate::app::{self, ExitCode, Out};
use crate::config::Config;
use crate::context::SyncError;

#[derive(Debug, Parser)]
#[command(
    name = "forcelake",
    version,
    about = "Extract Salesforce records into a typed, day-partitioned Parquet data lake"
)]
pub struct Cli {
    /// The pipeline file.
    #[arg(
        short,
        long,
        global = true,
        env = "FORCELAKE_CONFIG",
        default_value = "forcelake.toml"
    )]
    pub config: PathBuf,
    /// Override any configuration key, e.g. --set sync.concurrency=8 (repeatable).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// More logging (-v debug, -vv trace); RUST_LOG also works.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print a machine-readable JSON summary on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Test the connection: token, API, describe of every object, fields and cursor.
    Check,
    /// List queryable objects, or print the Arrow schema forcelake would write for OBJECT.
    Discover { object: Option<String> },
    /// Run the configured sync mode.
    Sync,
    /// Rows, chunks and coverage per object, from the manifests.
    Status {
        /// Only this object (repeatable).
        #[arg(long)]
        object: Vec<String>,
    },
    /// Re-pull a date range in per-day chunks, replacing those day partitions.
    Backfill(BackfillArgs),
    /// Print the chunks a run would do, for schedulers (`plan sync`, `plan backfill …`).
    Plan {
        #[command(subcommand)]
        what: PlanWhat,
    },
    /// Run exactly one chunk from `plan` (idempotent: exits 0 if it was already committed).
    RunChunk {
        /// `<Object>/<chunk-id>`, as `plan` prints it.
        chunk: String,
    },
    /// List each object's live Ids in Salesforce and record every record the lake holds that
    /// Salesforce no longer has as deleted (tombstones), then update the current table.
    Reconcile {
        /// Only this object (repeatable); all configured objects by default.
        #[arg(long)]
        object: Vec<String>,
    },
    /// Serve the local Salesforce emulator.
    Emulator(EmulatorArgs),
    /// Start the emulator in-process, sync into ./forcelake-demo, and print status and a query.
    Demo {
        /// Where to write the demo lake.
        #[arg(long, default_value = "forcelake-demo")]
        dir: PathBuf,
        /// Records per emulated object.
        #[arg(long, default_value_t = 2000)]
        rows: usize,
    },
}

/// Runs a parsed command.
pub async fn run(cli: Cli) -> Result<ExitCode, SyncError> {
    let out = Out {
        json: cli.json,
        log_json: cli.log_format == LogFormat::Json,
    };
    let load = || Config::load(&cli.config, &cli.overrides);
    match &cli.command {
        Command::Emulator(args) => app::emulator::run_emulator(args).await,
        Command::Demo { dir, rows } => app::demo::run(dir, *rows, cli.json).await,
        Command::Check => app::check::check(load()?, out).await,
        Command::Discover { object } => {
            app::discover::discover(load()?, object.as_deref(), out).await
        }
        Command::Sync => app::sync::run_sync(load()?, out).await,
        Command::Backfill(args) => app::sync::backfill(load()?, args, out).await,
        Command::Plan { what } => app::plan::plan(load()?, what, out).await,
        Command::RunChunk { chunk } => app::run_chunk::run_chunk(load()?, chunk, out).await,
        Command::Status { object } => crate::app::status::run(load()?, object, out).await,
        Command::Reconcile { object } => app::reconcile::run(load()?, object, out).await,
    }
}
