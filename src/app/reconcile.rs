//! `reconcile [--object O]…`: lists each object's live Ids in Salesforce and records every Id
//! the lake holds that Salesforce no longer has as deleted (a `reconcile` chunk of tombstones),
//! then merges them into the current table. Incremental runs do the same by themselves where
//! getDeleted cannot answer; this is the on-demand form (e.g. a weekly Airflow task).

use std::collections::HashMap;
use std::sync::Arc;

use crate::app::{ensure_destination, ExitCode, Out};
use crate::config::{Config, ConfigError};
use crate::context::{Context, SyncError};
use crate::run::{ObjectSummary, RunSummary};

pub async fn run(cfg: Config, objects: &[String], out: Out) -> Result<ExitCode, SyncError> {
    if !cfg.destination.current_table {
        return Err(ConfigError::Invalid {
            key: "destination.current_table".into(),
            value: "false".into(),
            rule: "reconcile compares Salesforce's live Ids with the current table: set destination.table_format = \"delta\" and destination.current_table = true".into(),
        }
        .into());
    }
    let cfg = if objects.is_empty() {
        cfg
    } else {
        crate::modes::backfill::context_for(&cfg, objects)?
    };
    let started = std::time::Instant::now();
    let ctx = Arc::new(Context::new(cfg)?);
    ensure_destination(&ctx).await?;
    let (prepared, failed) = crate::run::prepare::prepare_each(&ctx, false, true).await?;
    let mut summary = RunSummary {
        command: "reconcile".into(),
        mode: "reconcile".into(),
        status: "complete".into(),
        destination: ctx.config.destination.url.clone(),
        ..Default::default()
    };
    let mut reasons = HashMap::new();
    for o in &prepared {
        summary.objects.push(ObjectSummary {
            object: o.schema.object.clone(),
            status: "complete".into(),
            ..Default::default()
        });
        reasons.insert(o.schema.object.clone(), "the reconcile command".to_string());
    }
    let now = crate::modes::incremental::now();
    crate::run::current::refresh_and_reconcile(&ctx, &prepared, &reasons, now, &mut summary).await;
    crate::run::prepare::add_failed(&mut summary, failed);
    let summary = summary.finish(&ctx, started);
    tracing::info!(status = %summary.status, requests = summary.requests, "reconcile finished");
    out.summary(&summary);
    Ok(summary.exit_code())
}
