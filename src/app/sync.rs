//! `sync` (the configured mode) and `backfill`.

use std::sync::Arc;

use clap::Args;

use crate::app::{ensure_destination, parse_range, ExitCode, Out, RangeArgs};
use crate::config::{Config, Mode};
use crate::context::{Context, SyncError};

/// `sync`: the configured mode.
pub async fn run_sync(cfg: Config, out: Out) -> Result<ExitCode, SyncError> {
    let mode = cfg.sync.mode;
    let ctx = Arc::new(Context::new(cfg)?);
    ensure_destination(&ctx).await?;
    let summary = match mode {
        Mode::Historical => crate::modes::historical::run_historical(ctx).await?,
        Mode::Incremental => crate::modes::incremental::run_incremental(ctx).await?,
    };
    tracing::info!(status = %summary.status, requests = summary.requests, "sync finished");
    out.summary(&summary);
    Ok(summary.exit_code())
}

pub async fn backfill(cfg: Config, args: &BackfillArgs, out: Out) -> Result<ExitCode, SyncError> {
    let (start, end) = parse_range(&args.range)?;
    let gate = match &args.window {
        None => None,
        Some(w) => Some(crate::run::runner::Gate {
            window: crate::run::offpeak::OffPeak::parse(w, &args.tz).map_err(|m| {
                crate::config::ConfigError::Invalid {
                    key: "--window/--tz".into(),
                    value: format!("{w} {}", args.tz),
                    rule: m,
                }
            })?,
            wait: args.wait,
        }),
    };
    let cfg = crate::modes::backfill::context_for(&cfg, &args.range.objects)?;
    let ctx = Arc::new(Context::new(cfg)?);
    ensure_destination(&ctx).await?;
    let summary =
        crate::modes::backfill::run_backfill(ctx, start, end, args.range.force, gate).await?;
    out.summary(&summary);
    Ok(summary.exit_code())
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    #[command(flatten)]
    pub range: RangeArgs,
    /// Start chunks only inside this daily window, e.g. 22:00-06:00.
    #[arg(long)]
    pub window: Option<String>,
    /// Time zone of --window (IANA name).
    #[arg(long, default_value = "UTC")]
    pub tz: String,
    /// When the window closes, wait for the next one instead of exiting.
    #[arg(long)]
    pub wait: bool,
}
