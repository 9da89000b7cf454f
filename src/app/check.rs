//! `check`: the configuration, the org, each object and the destination, with what a sync will cost.

use std::sync::Arc;

use crate::app::{ensure_destination, print_json, ExitCode, Out};
use crate::config::{Config, Mode};
use crate::context::{Context, SyncError};
use crate::run::prepare::PreparedObject;

pub async fn check(cfg: Config, out: Out) -> Result<ExitCode, SyncError> {
    let json = out.json;
    let ctx = Context::new(cfg)?;
    // The destination first: an unusable one is a configuration error before any other work.
    ensure_destination(&ctx).await?;
    let objects = crate::run::prepare::prepare_objects(&ctx, false).await?;
    let limits = ctx.client.limits().await.ok();
    let mut lines = Vec::new();
    for o in &objects {
        let count = ctx
            .client
            .count(
                &crate::salesforce::soql::count_query(
                    &o.schema.object,
                    &o.schema.cursor_field,
                    o.schema.cursor_is_date,
                    None,
                ),
                ctx.config.sync.include_deleted,
                &format!("count of {}", o.schema.object),
            )
            .await?;
        let mut warnings = o.warnings.clone();
        if o.schema.cursor_is_date {
            warnings.push(format!(
                "{}.{} is a date cursor: days are synced once they have passed (UTC), and an edit does not move a date, so incremental runs do not see later changes to a record; LastModifiedDate follows every edit",
                o.schema.object, o.schema.cursor_field
            ));
        }
        let estimate = historical_estimate(&ctx, o, &mut warnings).await?;
        let deletes = deletes_probe(&ctx, o, &mut warnings).await;
        warnings.extend(field_list_warnings(o));
        lines.push(serde_json::json!({
            "object": o.schema.object,
            "columns": o.schema.written,
            "cursor_field": o.schema.cursor_field,
            "cursor_type": if o.schema.cursor_is_date { "date" } else { "datetime" },
            "records": count,
            "null_cursor_records": o.null_cursor,
            "schema_hash": o.schema.hash,
            "estimate": estimate,
            "replicateable": o.replicateable,
            "deletes": deletes,
            "warnings": warnings,
        }));
    }
    if json {
        print_json(
            &serde_json::json!({"ok": true, "objects": lines, "api_usage": ctx.client.api_usage(), "limits": limits, "destination_ok": true}),
        );
    } else {
        for l in &lines {
            println!(
                "{}: ok — {} columns, cursor {}, {} records{}",
                l["object"].as_str().unwrap_or(""),
                l["columns"],
                l["cursor_field"].as_str().unwrap_or(""),
                l["records"],
                l["warnings"]
                    .as_array()
                    .filter(|w| !w.is_empty())
                    .map(|w| format!(
                        " (warning: {})",
                        w.iter()
                            .filter_map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ))
                    .unwrap_or_default()
            );
        }
        if let Some(u) = ctx.client.api_usage() {
            println!("org API usage: {}/{}", u.used, u.max);
        }
        println!(
            "destination {}: ok (wrote, read and deleted a probe object)",
            ctx.config.destination.url
        );
    }
    Ok(0)
}

/// In historical mode, the windows `plan` and `sync` would fetch (counted without a request
/// limit) and what they cost: the estimate `plan` prints too. Its warnings and notes go to
/// `warnings`.
async fn historical_estimate(
    ctx: &Context,
    o: &PreparedObject,
    warnings: &mut Vec<String>,
) -> Result<serde_json::Value, SyncError> {
    let mut estimate = serde_json::Value::Null;
    if ctx.config.sync.mode == Mode::Historical {
        // The windows `plan` and `sync` would fetch (counted without a request limit) and
        // what they cost: the estimate `plan` prints too.
        let budgets = std::collections::HashMap::from([(
            o.schema.object.clone(),
            Arc::new(crate::context::Budget::new(u32::MAX)),
        )]);
        let planned =
            crate::modes::historical::plan_historical(ctx, std::slice::from_ref(o), &budgets)
                .await?;
        if let Some(h) = planned.into_iter().next() {
            warnings.extend(h.warning);
            warnings.extend(h.note);
            if !h.windows.is_empty() {
                let e = crate::plan::estimate::for_object(&h.windows, &ctx.config.sync, &o.schema);
                if e.runs > 1 {
                    warnings.push(format!(
                        "a historical sync needs about {} requests ({} day chunks, {} records); sync.query_limit = {} splits it over about {} runs (raise it to finish in one)",
                        e.requests, e.chunks, e.records, ctx.config.sync.query_limit, e.runs
                    ));
                }
                estimate = serde_json::to_value(&e).unwrap_or_default();
            }
        }
    }
    Ok(estimate)
}

/// Warnings about a configured field list that lacks `Id` or the cursor.
fn field_list_warnings(o: &PreparedObject) -> Vec<String> {
    let mut warnings = Vec::new();
    if o.config.fields.is_some() {
        let written: Vec<&str> = o
            .schema
            .arrow
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        if !written.contains(&"Id") {
            warnings
                .push("the field list lacks Id: rows cannot be matched across runs".to_string());
        }
        if !written
            .iter()
            .any(|w| w.eq_ignore_ascii_case(&o.schema.cursor_field))
        {
            warnings.push(format!("the field list lacks the cursor {}: it is queried (it decides the day) but not written", o.schema.cursor_field));
        }
    }
    warnings
}

/// Whether incremental runs can capture the object's deletes: describe's `replicateable`, and
/// one getDeleted call over the last minutes (`ok`, `off`, `not replicateable`, or the error,
/// also as a warning).
async fn deletes_probe(ctx: &Context, o: &PreparedObject, warnings: &mut Vec<String>) -> String {
    if !ctx.config.sync.capture_deletes {
        return "off".into();
    }
    if !o.replicateable {
        warnings.push(format!(
            "{} is not replicateable (describe): getDeleted cannot list its deletes, so records deleted for good stay in the lake as their last version",
            o.schema.object
        ));
        return "not replicateable".into();
    }
    let now = chrono::Utc::now();
    match ctx
        .client
        .get_deleted(
            &o.schema.object,
            now - chrono::Duration::minutes(3),
            now - chrono::Duration::minutes(1),
        )
        .await
    {
        Ok(_) => "ok".into(),
        Err(e) => {
            warnings.push(format!(
                "getDeleted failed, so incremental runs cannot capture deletes ({e}): the Run-As user needs API access to {} (or set sync.capture_deletes = false)",
                o.schema.object
            ));
            format!("error: {e}")
        }
    }
}
