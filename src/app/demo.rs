//! `forcelake demo`: the emulator in-process, a historical sync into a local folder, then
//! `status` and a DuckDB query to try. No configuration needed.

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::context::{Context, SyncError};
use crate::emulator::{self, EmulatorConfig};

/// The demo pipeline file, pointed at an emulator URL and a lake folder.
pub fn demo_config_text(url: &str, dir: &str) -> String {
    format!(
        r#"# forcelake demo pipeline (against the built-in emulator)
[salesforce]
instance_url = "{url}"
client_id = "{id}"

[[objects]]
name = "Account"

[[objects]]
name = "Contact"

[[objects]]
name = "Opportunity"

[[objects]]
name = "Case"

[[objects]]
name = "Invoice__c"
fields = ["Id", "Name", "IsDeleted", "Account__c", "Amount__c", "Tax_Rate__c", "Due_Date__c", "Paid__c",
          "Units__c", "Line_Items__c", "Status__c", "Tags__c", "Cutoff_Time__c", "Notes__c", "Ship_To__c",
          "CreatedDate", "LastModifiedDate", "SystemModstamp", "Account__r.Name", "Owner.Name"]

[sync]
mode = "incremental"
lag_s = 0
query_limit = 100000
rate_limit = 1000
rate_limit_timeout_ms = 1000
concurrency = 8

[destination]
url = "{dir}"
"#,
        id = emulator::DEMO_CLIENT_ID
    )
}

pub async fn run(dir: &Path, rows: usize, json: bool) -> Result<u8, SyncError> {
    let mut cfg = EmulatorConfig::default();
    cfg.gen.default_rows = rows;
    let emu = emulator::start(cfg, "127.0.0.1:0".parse().expect("valid address"))
        .await
        .map_err(|e| SyncError::Internal(format!("cannot start the emulator: {e}")))?;
    eprintln!(
        "forcelake demo: emulator at {} with {rows} records per object",
        emu.url
    );
    let abs = std::env::current_dir()
        .map(|c| c.join(dir))
        .unwrap_or_else(|_| dir.to_path_buf());
    let dir_s = abs.display().to_string();
    let text = demo_config_text(&emu.url, &dir_s);
    let secret = Some(emulator::DEMO_CLIENT_SECRET.to_string());
    // The recommended sequence: start incremental (records the start point P), run one
    // historical sync up to P, then incremental runs carry on from P.
    let incremental = Config::from_toml_str(&text, "demo", &[], secret.clone())?;
    let ctx = Arc::new(Context::new(incremental.clone())?);
    let first = crate::modes::incremental::run_incremental(ctx.clone()).await?;
    let start_point = first
        .objects
        .iter()
        .filter_map(|o| o.incremental_start.clone())
        .min()
        .unwrap_or_default();
    eprintln!("forcelake demo: incremental start point {start_point}; historical sync up to it");
    let historical = Config::from_toml_str(
        &text,
        "demo",
        &[
            "sync.mode=historical".into(),
            format!("sync.end_date={start_point}"),
        ],
        secret,
    )?;
    let hctx = Arc::new(Context::new(historical)?);
    let summary = crate::modes::historical::run_historical(hctx).await?;
    let inc = crate::modes::incremental::run_incremental(ctx.clone()).await?;
    if json {
        println!("{}", serde_json::to_string(&summary).unwrap_or_default());
    } else {
        eprint!("{}", summary.to_text());
        eprint!("{}", inc.to_text());
    }
    let mut st = crate::app::status::status(ctx.store.clone(), &[]).await?;
    if let Some(delta) = ctx.delta.as_deref() {
        crate::app::status::add_table_status(
            &ctx.store,
            delta,
            ctx.config.destination.current_table,
            &mut st,
        )
        .await?;
    }
    if !json {
        println!("\n{}", st.to_text());
        // the current tables against what Salesforce says is live now
        for o in &st.objects {
            let Some(rows) = o.current.as_ref().map(|c| c.rows) else {
                continue;
            };
            let soql = format!("SELECT COUNT() FROM {}", o.object);
            match ctx.client.count(&soql, false, &o.object).await {
                Ok(live) => {
                    println!(
                    "current table {:<12} {rows:>6} live records; Salesforce ({soql}): {live}{}",
                    o.object,
                    if live == rows { " — equal" } else { " — DIFFERENT" }
                )
                }
                Err(e) => println!(
                    "current table {:<12} {rows:>6} live records ({soql} failed: {e})",
                    o.object
                ),
            }
        }
        println!("\nThe current table (one row per live record):");
        println!("  duckdb -c \"INSTALL delta; LOAD delta; SELECT Industry, count(*) FROM delta_scan('{dir_s}/_current/Account') GROUP BY 1 ORDER BY 2 DESC\"");
        println!("The change log, every version (each object folder is a Delta table; the plain Parquet glob works too):");
        println!("  duckdb -c \"INSTALL delta; LOAD delta; SELECT date, count(*) FROM delta_scan('{dir_s}/Account') GROUP BY date ORDER BY date DESC LIMIT 5\"");
        println!("  duckdb -c \"SELECT Name, Account__r.Name AS account, Owner.Name AS owner FROM read_parquet('{dir_s}/Invoice__c/date=*/*.parquet') LIMIT 5\"");
        println!("or in Python: import duckdb; duckdb.sql(\"SELECT Industry, count(*) FROM read_parquet('{dir_s}/Account/date=*/*.parquet', hive_partitioning=true) GROUP BY 1\").show()");
        println!(
            "             import deltalake; deltalake.DeltaTable('{dir_s}/Account').to_pandas()"
        );
        println!("The pipeline file used: see `forcelake demo --help`; lake: {dir_s}");
    }
    emu.stop().await;
    Ok(summary.exit_code().max(inc.exit_code()))
}
