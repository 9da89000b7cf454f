//! The commands' bodies, one file each (the arguments and dispatch are in [`crate::cli`]).

pub mod check;
pub mod demo;
pub mod discover;
pub mod emulator;
pub mod plan;
pub mod reconcile;
pub mod run_chunk;
pub mod status;
pub mod sync;

use crate::context::{Context, SyncError};
use clap::Args;

/// What a command produced: the exit code (the error, if any, was already reported).
pub type ExitCode = u8;

/// Where a command's results go: `--json` puts one JSON object on one line of stdout;
/// `--log-format json` keeps every stderr line a JSON object.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    pub json: bool,
    pub log_json: bool,
}

impl Out {
    /// A run summary: the JSON line on stdout with `--json`, and the human lines on stderr (as
    /// one JSON log record with `--log-format json`).
    pub(crate) fn summary(&self, summary: &crate::run::RunSummary) {
        if self.json {
            print_json(summary);
        } else if self.log_json {
            tracing::info!(summary = %serde_json::to_string(summary).unwrap_or_default(), "run summary");
        } else {
            eprint!("{}", summary.to_text());
        }
    }

    /// A line for a person on stderr (a JSON log record with `--log-format json`).
    pub(crate) fn note(&self, line: &str) {
        if self.log_json {
            tracing::info!("{line}");
        } else {
            eprintln!("{line}");
        }
    }
}

pub(crate) fn print_json(v: &impl serde::Serialize) {
    match serde_json::to_string(v) {
        Ok(s) => println!("{s}"),
        Err(e) => tracing::error!("cannot serialise the summary: {e}"),
    }
}

/// Checks the destination before any work: a local folder that is a file, lies under a file or
/// cannot be created, a missing bucket, credentials that cannot write — a configuration error
/// (exit 2) naming `destination.url`, found by writing, reading and deleting a probe object.
pub async fn ensure_destination(ctx: &Context) -> Result<(), SyncError> {
    crate::sink::store::probe(&ctx.store)
        .await
        .map_err(|message| SyncError::Destination {
            url: ctx.config.destination.url.clone(),
            message,
        })
}

pub(crate) fn parse_range(
    r: &RangeArgs,
) -> Result<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>), SyncError> {
    use crate::config::ConfigError;
    use crate::timefmt::DateOrTime;
    let start = DateOrTime::parse(&r.start).ok_or_else(|| ConfigError::Invalid {
        key: "--start".into(),
        value: format!("{:?}", r.start),
        rule: "an ISO date (2025-03-01) or RFC 3339 datetime".into(),
    })?;
    let end = DateOrTime::parse(&r.end).ok_or_else(|| ConfigError::Invalid {
        key: "--end".into(),
        value: format!("{:?}", r.end),
        rule: "an ISO date (2025-03-31, included) or RFC 3339 datetime (exclusive)".into(),
    })?;
    let (s, e) = (start.as_start(), end.as_end());
    if e <= s {
        return Err(ConfigError::Invalid {
            key: "--end".into(),
            value: r.end.clone(),
            rule: format!("must be after --start ({})", r.start),
        }
        .into());
    }
    for o in &r.objects {
        if !crate::salesforce::ident::is_object_name(o) {
            return Err(ConfigError::Invalid {
                key: "--object".into(),
                value: format!("{o:?}"),
                rule: "must be a Salesforce object API name".into(),
            }
            .into());
        }
    }
    Ok((s, e))
}

/// Exit code of `run-chunk` for a chunk it could not finish yet (a budget stopped it, or its
/// window reaches past now − sync.lag_s): retry later.
pub const EXIT_RETRY_LATER: ExitCode = 3;

#[derive(Debug, Args, Clone)]
pub struct RangeArgs {
    /// Object to backfill (repeatable); must be in the configuration.
    #[arg(long = "object", required = true)]
    pub objects: Vec<String>,
    /// First day (YYYY-MM-DD) or instant (RFC 3339).
    #[arg(long)]
    pub start: String,
    /// Last day, included (YYYY-MM-DD), or an exclusive instant (RFC 3339).
    #[arg(long)]
    pub end: String,
    /// Start a new backfill even if one of this range already exists (redo committed chunks).
    #[arg(long)]
    pub force: bool,
}
