//! Command-line interface: clap types and the dispatcher. `main.rs` only parses, sets up
//! logging and maps the result to an exit code.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{Config, Mode};
use crate::emulator::{self, EmulatorConfig};
use crate::sync::{self, Context, SyncError};

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

#[derive(Debug, Subcommand)]
pub enum PlanWhat {
    /// The chunks the configured sync mode would run now.
    Sync,
    /// Record a backfill plan (or find the unfinished one) and print its remaining chunks.
    Backfill(RangeArgs),
}

#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8085")]
    pub listen: SocketAddr,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Records per object: `N` for all, or `Account=1000,Invoice__c=50`.
    #[arg(long, default_value = "1000")]
    pub rows: String,
    /// Cursor values end at this UTC day (exclusive); default today.
    #[arg(long)]
    pub anchor_date: Option<chrono::NaiveDate>,
    /// Days of history before the anchor.
    #[arg(long, default_value_t = 730)]
    pub days: i64,
    #[arg(long, default_value = emulator::DEMO_CLIENT_ID)]
    pub client_id: String,
    /// The consumer secret the emulator accepts.
    #[arg(long, env = "FORCELAKE_EMULATOR_SECRET", default_value = emulator::DEMO_CLIENT_SECRET, hide_env_values = true)]
    pub client_secret: String,
    /// DailyApiRequests.Max; past it, 403 REQUEST_LIMIT_EXCEEDED.
    #[arg(long, default_value_t = 5_000_000)]
    pub daily_limit: u64,
    /// Every Nth REST request answers 503.
    #[arg(long)]
    pub fail_every: Option<u64>,
    /// Tokens expire after this many seconds.
    #[arg(long)]
    pub token_ttl_s: Option<u64>,
    /// Latency added to every answer, in ms.
    #[arg(long)]
    pub latency_ms: Option<u64>,
    /// QUERY_TIMEOUT for queries spanning more than N hours.
    #[arg(long)]
    pub query_timeout_hours: Option<u64>,
    /// Every Nth query page is truncated.
    #[arg(long)]
    pub truncate_every: Option<u64>,
    /// Serve OBJECT.FIELD with a value of the wrong JSON type.
    #[arg(long, value_name = "OBJECT.FIELD")]
    pub bad_value: Option<String>,
    /// Token requests fail with `no client credentials user enabled`.
    #[arg(long)]
    pub no_run_as_user: bool,
    /// Token requests fail with `no valid scopes defined`.
    #[arg(long)]
    pub no_scopes: bool,
    /// Idle seconds before a query locator expires.
    #[arg(long, default_value_t = 900)]
    pub locator_idle_s: u64,
    /// Every Nth query page drops the connection mid-body.
    #[arg(long)]
    pub drop_body_every: Option<u64>,
    /// Mutation mode: every N ms, update, soft-delete, create and late-commit records of every object.
    #[arg(long)]
    pub mutate_every_ms: Option<u64>,
    /// Serve these objects as large read-only tables generated on demand in constant memory,
    /// e.g. `Account=10000000` (LastModifiedDate/SystemModstamp increase with the record).
    #[arg(long, value_name = "OBJECT=N,...")]
    pub synthetic: Option<String>,
}

impl EmulatorArgs {
    pub fn to_config(&self) -> Result<EmulatorConfig, String> {
        let mut cfg = EmulatorConfig::default();
        let (default, rows) = emulator::parse_rows(&self.rows)?;
        cfg.gen.seed = self.seed;
        cfg.gen.rows = rows;
        if let Some(d) = default {
            cfg.gen.default_rows = d;
        }
        if let Some(d) = self.anchor_date {
            cfg.gen.anchor_ms = crate::timefmt::day_start(d).timestamp_millis();
        }
        cfg.gen.days = self.days.max(1);
        cfg.client_id = self.client_id.clone();
        cfg.client_secret = self.client_secret.clone();
        cfg.daily_limit = self.daily_limit;
        cfg.locator_idle = Duration::from_secs(self.locator_idle_s);
        cfg.faults = emulator::Faults {
            fail_every: self.fail_every,
            token_ttl: self.token_ttl_s.map(Duration::from_secs),
            latency: self.latency_ms.map(Duration::from_millis),
            query_timeout_hours: self.query_timeout_hours,
            truncate_every: self.truncate_every,
            bad_value: match &self.bad_value {
                None => None,
                Some(s) => Some(
                    s.split_once('.')
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .ok_or("--bad-value takes OBJECT.FIELD")?,
                ),
            },
            no_run_as_user: self.no_run_as_user,
            no_scopes: self.no_scopes,
            drop_body_every: self.drop_body_every,
            slow_first_queries: None,
            expire_locator_at: None,
        };
        if let Some(spec) = &self.synthetic {
            cfg.gen.synthetic = emulator::parse_synthetic(spec, cfg.gen.days)?;
            if self.mutate_every_ms.is_some() {
                return Err("--synthetic tables are read-only: drop --mutate-every-ms".into());
            }
        }
        Ok(cfg)
    }
}

/// What a command produced: the exit code (the error, if any, was already reported).
pub type ExitCode = u8;

fn print_json(v: &impl serde::Serialize) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot serialise the summary: {e}"),
    }
}

/// Runs a parsed command.
pub async fn run(cli: Cli) -> Result<ExitCode, SyncError> {
    match &cli.command {
        Command::Emulator(args) => run_emulator(args).await,
        Command::Demo { dir, rows } => crate::demo::run(dir, *rows, cli.json).await,
        Command::Check => {
            let cfg = Config::load(&cli.config, &cli.overrides)?;
            check(cfg, cli.json).await
        }
        Command::Discover { object } => {
            let cfg = Config::load(&cli.config, &cli.overrides)?;
            discover(cfg, object.as_deref(), cli.json).await
        }
        Command::Sync => {
            let cfg = Config::load(&cli.config, &cli.overrides)?;
            run_sync(cfg, cli.json).await
        }
        Command::Backfill(args) => {
            let cfg = Config::load(&cli.config, &cli.overrides)?;
            run_backfill_cmd(cfg, args, cli.json).await
        }
        Command::Plan { what } => {
            let cfg = Config::load(&cli.config, &cli.overrides)?;
            plan_cmd(cfg, what, cli.json).await
        }
        Command::RunChunk { chunk } => {
            let cfg = Config::load(&cli.config, &cli.overrides)?;
            run_chunk_cmd(cfg, chunk, cli.json).await
        }
        Command::Status { object } => {
            let cfg = Config::load(&cli.config, &cli.overrides)?;
            let store = crate::sink::store::open(&cfg.destination.url, &cfg.destination.options)?;
            let st = sync::status::status(store, object).await?;
            if cli.json {
                print_json(&st);
            } else {
                print!("{}", st.to_text());
            }
            Ok(0)
        }
    }
}

/// `sync`: the configured mode.
pub async fn run_sync(cfg: Config, json: bool) -> Result<ExitCode, SyncError> {
    let mode = cfg.sync.mode;
    let ctx = Arc::new(Context::new(cfg)?);
    let summary = match mode {
        Mode::Historical => sync::historical::run_historical(ctx).await?,
        Mode::Incremental => sync::incremental::run_incremental(ctx).await?,
    };
    tracing::info!(status = %summary.status, requests = summary.requests, "sync finished");
    if json {
        print_json(&summary);
    } else {
        eprint!("{}", summary.to_text());
    }
    Ok(summary.exit_code())
}

async fn check(cfg: Config, json: bool) -> Result<ExitCode, SyncError> {
    let ctx = Context::new(cfg)?;
    let objects = sync::historical::prepare_objects(&ctx, false).await?;
    let limits = ctx.client.limits().await.ok();
    let mut lines = Vec::new();
    for o in &objects {
        let count = ctx
            .client
            .count(
                &crate::salesforce::soql::count_query(
                    &o.schema.object,
                    &o.schema.cursor_field,
                    None,
                ),
                ctx.config.sync.include_deleted,
                &format!("count of {}", o.schema.object),
            )
            .await?;
        let mut warnings = Vec::new();
        let mut estimate = serde_json::Value::Null;
        if ctx.config.sync.mode == Mode::Historical {
            let budget = sync::Budget::new(u32::MAX);
            let end = ctx.config.sync.end.unwrap_or_else(sync::incremental::now);
            let start = match ctx.config.sync.start {
                Some(s) => Some(s),
                None => sync::historical::earliest_cursor(&ctx, &o.schema, &budget).await?,
            };
            if let Some(start) = start.filter(|s| *s < end) {
                let days = sync::plan::split_days(start, end).len() as u64;
                let records = ctx
                    .client
                    .count(
                        &crate::salesforce::soql::count_query(
                            &o.schema.object,
                            &o.schema.cursor_field,
                            Some((start, end)),
                        ),
                        ctx.config.sync.include_deleted,
                        "count",
                    )
                    .await?;
                let e = estimate_requests(days, records, ctx.config.sync.query_limit);
                if e.runs > 1 {
                    warnings.push(format!(
                        "a historical sync needs about {} requests ({} day chunks, {} records); sync.query_limit = {} splits it over about {} runs (raise it to finish in one)",
                        e.requests, days, records, ctx.config.sync.query_limit, e.runs
                    ));
                }
                estimate = serde_json::to_value(&e).unwrap_or_default();
            }
        }
        if o.config.fields.is_some() {
            let written: Vec<&str> = o
                .schema
                .arrow
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            if !written.contains(&"Id") {
                warnings.push(
                    "the field list lacks Id: rows cannot be matched across runs".to_string(),
                );
            }
            if !written
                .iter()
                .any(|w| w.eq_ignore_ascii_case(&o.schema.cursor_field))
            {
                warnings.push(format!("the field list lacks the cursor {}: it is queried (it decides the day) but not written", o.schema.cursor_field));
            }
        }
        lines.push(serde_json::json!({
            "object": o.schema.object,
            "columns": o.schema.written,
            "cursor_field": o.schema.cursor_field,
            "records": count,
            "schema_hash": o.schema.hash,
            "estimate": estimate,
            "warnings": warnings,
        }));
    }
    let store_check = crate::sink::store::probe(&ctx.store).await;
    let store_ok = store_check.is_ok();
    if json {
        print_json(
            &serde_json::json!({"ok": store_ok, "objects": lines, "api_usage": ctx.client.api_usage(), "limits": limits, "destination_ok": store_ok, "destination_error": store_check.as_ref().err()}),
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
        match &store_check {
            Ok(()) => println!(
                "destination {}: ok (wrote, read and deleted a probe object)",
                ctx.config.destination.url
            ),
            Err(e) => println!("destination {}: {e}", ctx.config.destination.url),
        }
    }
    if let Err(e) = store_check {
        return Err(SyncError::Internal(format!(
            "destination {}: {e}",
            ctx.config.destination.url
        )));
    }
    Ok(0)
}

async fn discover(cfg: Config, object: Option<&str>, json: bool) -> Result<ExitCode, SyncError> {
    let ctx = Context::new(cfg)?;
    ctx.client.authenticate().await?;
    match object {
        None => {
            let g = ctx.client.describe_global().await?;
            let list: Vec<_> = g.sobjects.iter().filter(|s| s.queryable).collect();
            if json {
                print_json(&list.iter().map(|s| serde_json::json!({"name": s.name, "label": s.label, "custom": s.custom})).collect::<Vec<_>>());
            } else {
                for s in list {
                    println!("{:<40} {}", s.name, s.label);
                }
            }
        }
        Some(name) => {
            if !crate::salesforce::ident::is_object_name(name) {
                return Err(SyncError::UnknownObject {
                    name: name.into(),
                    suggestions: vec![],
                });
            }
            let mut cfg_obj = ctx
                .config
                .objects
                .iter()
                .find(|o| o.name.eq_ignore_ascii_case(name))
                .cloned();
            let describe = match ctx.client.describe(name).await {
                Ok(d) => d,
                Err(crate::salesforce::SfError::Api { code, .. }) if code == "NOT_FOUND" => {
                    let g = ctx.client.describe_global().await?;
                    return Err(SyncError::UnknownObject {
                        name: name.into(),
                        suggestions: crate::salesforce::ident::closest(
                            name,
                            g.sobjects.iter().map(|s| s.name.as_str()),
                            3,
                        ),
                    });
                }
                Err(e) => return Err(e.into()),
            };
            let fields = cfg_obj.as_mut().and_then(|o| o.fields.take());
            let cursor = cfg_obj
                .map(|o| o.cursor_field)
                .unwrap_or_else(|| ctx.config.sync.cursor_field.clone());
            let schema =
                crate::schema::ObjectSchema::resolve(&describe, fields.as_deref(), &cursor)?;
            if json {
                print_json(&schema.to_json());
            } else {
                println!(
                    "{} (schema {}; cursor {})",
                    schema.object, schema.hash, schema.cursor_field
                );
                for (c, f) in schema.columns.iter().zip(schema.arrow.fields()) {
                    println!(
                        "  {:<36} {:<28} {:<14}{}{}",
                        f.name(),
                        f.data_type().to_string(),
                        c.sf_type,
                        if f.is_nullable() { "" } else { " NOT NULL" },
                        if c.calculated { " (formula)" } else { "" }
                    );
                }
            }
        }
    }
    Ok(0)
}

async fn run_emulator(args: &EmulatorArgs) -> Result<ExitCode, SyncError> {
    let cfg = args
        .to_config()
        .map_err(|m| SyncError::Config(crate::config::ConfigError::BadOverride(m)))?;
    let emu = emulator::start(cfg, args.listen)
        .await
        .map_err(|e| SyncError::Internal(format!("cannot listen on {}: {e}", args.listen)))?;
    let _mutations = args.mutate_every_ms.map(|ms| {
        emu.start_mutations(
            &["Account", "Contact", "Opportunity", "Case", "Invoice__c"],
            Duration::from_millis(ms.max(1)),
            Duration::from_secs(2),
        )
    });
    println!("forcelake emulator listening on {}", emu.url);
    println!(
        "  instance_url = \"{}\"  client_id = \"{}\"  (secret: FORCELAKE_CLIENT_SECRET)",
        emu.url, args.client_id
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
    emu.stop().await;
    Ok(0)
}

fn parse_range(
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

async fn run_backfill_cmd(
    cfg: Config,
    args: &BackfillArgs,
    json: bool,
) -> Result<ExitCode, SyncError> {
    let (start, end) = parse_range(&args.range)?;
    let gate = match &args.window {
        None => None,
        Some(w) => Some(sync::historical::Gate {
            window: sync::window::OffPeak::parse(w, &args.tz).map_err(|m| {
                crate::config::ConfigError::Invalid {
                    key: "--window/--tz".into(),
                    value: format!("{w} {}", args.tz),
                    rule: m,
                }
            })?,
            wait: args.wait,
        }),
    };
    let cfg = sync::backfill::context_for(&cfg, &args.range.objects)?;
    let ctx = Arc::new(Context::new(cfg)?);
    let summary = sync::backfill::run_backfill(ctx, start, end, args.range.force, gate).await?;
    if json {
        print_json(&summary);
    } else {
        eprint!("{}", summary.to_text());
    }
    Ok(summary.exit_code())
}

#[derive(serde::Serialize)]
struct PlannedOut {
    chunk: String,
    object: String,
    day: String,
    kind: String,
}

async fn plan_cmd(cfg: Config, what: &PlanWhat, json: bool) -> Result<ExitCode, SyncError> {
    let mut chunks: Vec<PlannedOut> = Vec::new();
    let mut extra = serde_json::Map::new();
    match what {
        PlanWhat::Sync => {
            let ctx = Context::new(cfg)?;
            let objects = sync::historical::prepare_objects(&ctx, true).await?;
            let planned: Vec<(String, Vec<crate::sink::layout::ChunkId>)> =
                match ctx.config.sync.mode {
                    Mode::Historical => {
                        let budgets = Default::default();
                        sync::historical::plan_historical(&ctx, &objects, &budgets)
                            .await?
                            .into_iter()
                            .map(|(o, c)| (o.schema.object.clone(), c))
                            .collect()
                    }
                    // Objects without a start point plan nothing: their first `sync` records it.
                    Mode::Incremental => {
                        sync::incremental::plan_incremental(&ctx, &objects).await?
                    }
                };
            let mut estimates = Vec::new();
            for (o, cs) in &planned {
                if let (Some(first), Some(last)) = (cs.first(), cs.last()) {
                    let q = crate::salesforce::soql::count_query(
                        o,
                        &ctx.config
                            .objects
                            .iter()
                            .find(|x| &x.name == o)
                            .map(|x| x.cursor_field.clone())
                            .unwrap_or_default(),
                        Some((first.start, last.end)),
                    );
                    let records = ctx
                        .client
                        .count(&q, ctx.config.sync.include_deleted, "count")
                        .await?;
                    let e =
                        estimate_requests(cs.len() as u64, records, ctx.config.sync.query_limit);
                    if e.runs > 1 {
                        tracing::warn!(object = %o, requests = e.requests, query_limit = ctx.config.sync.query_limit, runs = e.runs, "sync.query_limit splits this sync over several runs");
                    }
                    let mut v = serde_json::to_value(&e).unwrap_or_default();
                    v["object"] = o.clone().into();
                    estimates.push(v);
                }
            }
            extra.insert("estimates".into(), estimates.into());
            for (o, cs) in planned {
                for c in cs {
                    chunks.push(PlannedOut {
                        chunk: format!("{o}/{c}"),
                        object: o.clone(),
                        day: c.day().format("%Y-%m-%d").to_string(),
                        kind: c.kind.as_str().into(),
                    });
                }
            }
        }
        PlanWhat::Backfill(r) => {
            let (start, end) = parse_range(r)?;
            let cfg = sync::backfill::context_for(&cfg, &r.objects)?;
            let ctx = Context::new(cfg)?;
            let objects = sync::historical::prepare_objects(&ctx, true).await?;
            let names: Vec<String> = objects.iter().map(|o| o.schema.object.clone()).collect();
            let (plan, resumed) =
                sync::backfill::plan_backfill(ctx.store.as_ref(), &names, start, end, r.force)
                    .await?;
            extra.insert("backfill_id".into(), plan.id.clone().into());
            extra.insert("resumed".into(), resumed.into());
            for o in &names {
                let committed: std::collections::HashSet<String> =
                    crate::sink::manifest::list_chunks(ctx.store.as_ref(), o)
                        .await?
                        .iter()
                        .map(|c| c.to_string())
                        .collect();
                for c in plan
                    .chunks
                    .iter()
                    .filter(|c| &c.object == o && !committed.contains(&c.chunk_id))
                {
                    chunks.push(PlannedOut {
                        chunk: format!("{}/{}", c.object, c.chunk_id),
                        object: c.object.clone(),
                        day: c.day.clone(),
                        kind: "backfill".into(),
                    });
                }
            }
        }
    }
    if json {
        let mut v = serde_json::Map::new();
        v.insert(
            "chunks".into(),
            serde_json::to_value(&chunks).unwrap_or_default(),
        );
        v.extend(extra);
        print_json(&v);
    } else {
        for c in &chunks {
            println!("{}", c.chunk);
        }
        eprintln!("{} chunks", chunks.len());
    }
    Ok(0)
}

async fn run_chunk_cmd(cfg: Config, spec: &str, json: bool) -> Result<ExitCode, SyncError> {
    use crate::config::ConfigError;
    let bad = |rule: &str| -> SyncError {
        ConfigError::Invalid {
            key: "CHUNK".into(),
            value: format!("{spec:?}"),
            rule: rule.into(),
        }
        .into()
    };
    let (object, id) = spec.split_once('/').ok_or_else(|| {
        bad("expected <Object>/<chunk-id>, as `forcelake plan … --json` prints it")
    })?;
    let chunk = crate::sink::layout::ChunkId::parse(id)
        .ok_or_else(|| bad("the chunk id is not valid (e.g. Account/historical-20250301)"))?;
    if chunk.is_marker()
        || chunk.start.date_naive() != (chunk.end - chrono::Duration::milliseconds(1)).date_naive()
    {
        return Err(bad("a chunk covers a non-empty window inside one UTC day"));
    }
    let cfg = sync::backfill::context_for(&cfg, &[object.to_string()])?;
    let ctx = Arc::new(Context::new(cfg)?);
    let objects = sync::historical::prepare_objects(&ctx, true).await?;
    let o = objects
        .into_iter()
        .next()
        .ok_or_else(|| bad("unknown object"))?;
    let job = sync::chunk::ChunkJob {
        object: o.schema.clone(),
        chunk: chunk.clone(),
        include_deleted: ctx.config.sync.include_deleted,
        settings: sync::chunk::parquet_settings(&ctx.config),
        pages_ahead: sync::chunk::pages_ahead(1),
        replaces: (chunk.kind == crate::sink::layout::ChunkKind::Backfill)
            .then_some((chunk.start, chunk.end)),
    };
    let budget = sync::Budget::new(ctx.config.sync.query_limit);
    let r = sync::historical::run_splitting(&ctx, &budget, &job).await;
    let (outcome, rows, code) = match r {
        Ok(sync::chunk::ChunkOutcome::Committed { rows, .. }) => ("committed", rows, 0),
        Ok(sync::chunk::ChunkOutcome::AlreadyCommitted { .. }) => ("already_committed", 0, 0),
        Ok(sync::chunk::ChunkOutcome::BudgetSpent { .. }) => ("paused_query_limit", 0, 0),
        Err(e) => return Err(e),
    };
    let v = serde_json::json!({"chunk": spec, "object": o.schema.object, "outcome": outcome, "rows": rows, "requests": budget.used()});
    if json {
        print_json(&v);
    } else {
        println!(
            "{spec}: {}",
            if outcome == "committed" {
                format!("committed ({rows} rows)")
            } else {
                outcome.replace('_', " ")
            }
        );
    }
    Ok(code)
}

/// What a run will cost in query requests.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct Estimate {
    pub chunks: u64,
    pub records: u64,
    /// One request per chunk plus one per further page of 2,000 records.
    pub requests: u64,
    pub query_limit: u32,
    /// Runs needed with the per-object query budget.
    pub runs: u64,
}

/// Estimates requests from the chunk count and COUNT(): every chunk needs one request, and
/// each 2,000 records beyond the first page of a chunk one more.
pub fn estimate_requests(chunks: u64, records: u64, query_limit: u32) -> Estimate {
    let requests = chunks.max(1) + records / 2000;
    Estimate {
        chunks,
        records,
        requests,
        query_limit,
        runs: requests.div_ceil(query_limit.max(1) as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_split_over_runs() {
        assert_eq!(estimate_requests(730, 1_000_000, 50).requests, 1230);
        assert_eq!(estimate_requests(730, 1_000_000, 50).runs, 25);
        assert_eq!(estimate_requests(3, 10, 50).runs, 1);
    }
}
