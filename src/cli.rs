//! Command-line interface: clap types and the dispatcher. `main.rs` only parses, sets up
//! logging and maps the result to an exit code.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{Config, Mode};
use crate::context::{Context, SyncError};
use crate::emulator::{self, EmulatorConfig};

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
    /// Aggregate (GROUP BY) queries answer QUERY_TIMEOUT (forcelake then counts by COUNT() bisection).
    #[arg(long)]
    pub refuse_aggregates: bool,
    /// Mutation mode: every N ms, update, soft-delete, create and late-commit records of every object.
    #[arg(long)]
    pub mutate_every_ms: Option<u64>,
    /// Serve these objects as large read-only tables generated on demand in constant memory,
    /// e.g. `Account=10000000` (LastModifiedDate/SystemModstamp increase with the record).
    #[arg(long, value_name = "OBJECT=N,...")]
    pub synthetic: Option<String>,
    /// Bulk API 2.0: milliseconds from job creation to JobComplete.
    #[arg(long, default_value_t = 1000)]
    pub bulk_delay_ms: u64,
    /// Bulk API 2.0: the first N query jobs end Failed.
    #[arg(long, default_value_t = 0)]
    pub bulk_fail_jobs: u64,
    /// Bulk API 2.0: the Nth results request (once) returns a page cut short.
    #[arg(long)]
    pub bulk_cut_page: Option<u64>,
    /// Bulk API 2.0: DailyBulkV2QueryJobs.Max (jobs past it: LIMIT_EXCEEDED).
    #[arg(long, default_value_t = 10_000)]
    pub bulk_daily_jobs: u64,
    /// Bulk API 2.0: objects refused with INVALIDENTITY (besides Salesforce's own list).
    #[arg(long, value_name = "OBJECT,...", value_delimiter = ',')]
    pub bulk_refuse: Vec<String>,
    /// The org's id (in the token response's identity URL): another id plays another org,
    /// e.g. a sandbox.
    #[arg(long, default_value = emulator::DEMO_ORG_ID)]
    pub org_id: String,
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
        cfg.org_id = self.org_id.clone();
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
            refuse_aggregates: self.refuse_aggregates,
            hidden_objects: Vec::new(),
        };
        cfg.bulk = emulator::bulk::BulkConfig {
            processing: Duration::from_millis(self.bulk_delay_ms),
            fail_jobs: self.bulk_fail_jobs,
            cut_page: self.bulk_cut_page,
            daily_jobs: self.bulk_daily_jobs,
            refuse: self.bulk_refuse.clone(),
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
    fn summary(&self, summary: &crate::run::RunSummary) {
        if self.json {
            print_json(summary);
        } else if self.log_json {
            tracing::info!(summary = %serde_json::to_string(summary).unwrap_or_default(), "run summary");
        } else {
            eprint!("{}", summary.to_text());
        }
    }

    /// A line for a person on stderr (a JSON log record with `--log-format json`).
    fn note(&self, line: &str) {
        if self.log_json {
            tracing::info!("{line}");
        } else {
            eprintln!("{line}");
        }
    }
}

fn print_json(v: &impl serde::Serialize) {
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

/// Runs a parsed command.
pub async fn run(cli: Cli) -> Result<ExitCode, SyncError> {
    let out = Out {
        json: cli.json,
        log_json: cli.log_format == LogFormat::Json,
    };
    let load = || Config::load(&cli.config, &cli.overrides);
    match &cli.command {
        Command::Emulator(args) => run_emulator(args).await,
        Command::Demo { dir, rows } => crate::demo::run(dir, *rows, cli.json).await,
        Command::Check => check(load()?, out).await,
        Command::Discover { object } => discover(load()?, object.as_deref(), out).await,
        Command::Sync => run_sync(load()?, out).await,
        Command::Backfill(args) => run_backfill_cmd(load()?, args, out).await,
        Command::Plan { what } => plan_cmd(load()?, what, out).await,
        Command::RunChunk { chunk } => run_chunk_cmd(load()?, chunk, out).await,
        Command::Status { object } => {
            let cfg = load()?;
            for o in object {
                if !cfg.objects.iter().any(|c| c.name.eq_ignore_ascii_case(o)) {
                    let names: Vec<&str> = cfg.objects.iter().map(|c| c.name.as_str()).collect();
                    let close = crate::salesforce::ident::closest(o, names.iter().copied(), 3);
                    return Err(crate::config::ConfigError::Invalid {
                        key: "--object".into(),
                        value: format!("{o:?}"),
                        rule: format!(
                            "is not a configured object{}; configured: {}",
                            crate::context::suggest(&close),
                            names.join(", ")
                        ),
                    }
                    .into());
                }
            }
            let store = crate::sink::store::open(&cfg.destination.url, &cfg.destination.options)
                .map_err(|e| SyncError::Destination {
                    url: cfg.destination.url.clone(),
                    message: e.to_string(),
                })?;
            let mut st = crate::app::status::status(store.clone(), object).await?;
            if let Some(delta) = crate::context::open_tables(&cfg.destination)? {
                crate::app::status::add_table_status(&store, &delta, &mut st).await?;
            }
            if out.json {
                print_json(&st);
            } else {
                print!("{}", st.to_text());
            }
            Ok(0)
        }
    }
}

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

async fn check(cfg: Config, out: Out) -> Result<ExitCode, SyncError> {
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
        let mut estimate = serde_json::Value::Null;
        if ctx.config.sync.mode == Mode::Historical {
            let budget = crate::context::Budget::new(u32::MAX);
            let now = crate::modes::incremental::now();
            let cut = crate::ranges::cut(now, ctx.config.sync.lag_s, o.schema.cursor_is_date);
            if let Some(s) = ctx.config.sync.start.filter(|s| *s >= cut) {
                warnings.push(crate::modes::historical::future_start_warning(s));
            }
            if let Some(n) = crate::modes::historical::cut_note(
                ctx.config.sync.end,
                cut,
                ctx.config.sync.lag_s,
                o.schema.cursor_is_date,
            ) {
                warnings.push(n);
            }
            let end = ctx.config.sync.end.unwrap_or(now);
            let start = match ctx.config.sync.start {
                Some(s) => Some(s),
                None => crate::run::prepare::earliest_cursor(&ctx, &o.schema, &budget).await?,
            };
            let range = start
                .and_then(|s| crate::ranges::fetch_range(s, end, cut, o.schema.cursor_is_date));
            if let Some((start, end)) = range {
                let days = crate::ranges::split_days(start, end).len() as u64;
                let records = ctx
                    .client
                    .count(
                        &crate::salesforce::soql::count_query(
                            &o.schema.object,
                            &o.schema.cursor_field,
                            o.schema.cursor_is_date,
                            Some((start, end)),
                        ),
                        ctx.config.sync.include_deleted,
                        "count",
                    )
                    .await?;
                let bulk =
                    crate::plan::api::use_bulk(ctx.config.sync.api, Some(records), &o.schema);
                let e = estimate_requests(
                    days,
                    records,
                    ctx.config.sync.concurrency,
                    ctx.config.sync.window_records,
                    ctx.config.sync.query_limit,
                    bulk,
                );
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
            "cursor_type": if o.schema.cursor_is_date { "date" } else { "datetime" },
            "records": count,
            "null_cursor_records": o.null_cursor,
            "schema_hash": o.schema.hash,
            "estimate": estimate,
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

async fn discover(cfg: Config, object: Option<&str>, out: Out) -> Result<ExitCode, SyncError> {
    let json = out.json;
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
            // Only this object is read: no cursor, no other configured object is needed.
            let describe = match ctx.client.describe(name).await {
                Ok(d) => d,
                Err(crate::salesforce::SfError::Api { code, .. })
                    if code == "NOT_FOUND" || code == "INVALID_TYPE" =>
                {
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
            let fields = discover_fields(&describe);
            let cursors = crate::schema::cursor_candidates(&describe, "LastModifiedDate");
            if json {
                print_json(&serde_json::json!({
                    "object": describe.name,
                    "label": describe.label,
                    "custom": describe.custom,
                    "queryable": describe.queryable,
                    "cursor_candidates": cursors,
                    "fields": fields,
                }));
            } else {
                println!(
                    "{} ({} fields; * = in the default field set; -> relationship (parent): select its fields as Relationship.Field; cursor: {})",
                    describe.name,
                    fields.len(),
                    if cursors.is_empty() {
                        "none (no datetime or date field)".to_string()
                    } else {
                        cursors.join(" or ")
                    }
                );
                for f in &fields {
                    let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
                    let rel = match f["relationship_name"].as_str() {
                        Some(r) => format!(
                            " -> {r} ({}{})",
                            f["reference_to"]
                                .as_array()
                                .map(|a| a
                                    .iter()
                                    .filter_map(|x| x.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", "))
                                .unwrap_or_default(),
                            if f["polymorphic"] == true {
                                "; polymorphic: paths reach only the Name fields"
                            } else {
                                ""
                            }
                        ),
                        None => String::new(),
                    };
                    println!(
                        "{} {:<36} {:<14} {:<28}{}{}",
                        if f["default"] == true { "*" } else { " " },
                        s("name"),
                        s("type"),
                        s("arrow_type"),
                        if f["calculated"] == true {
                            " formula"
                        } else {
                            ""
                        },
                        rel
                    );
                }
            }
        }
    }
    Ok(0)
}

/// Every field of a describe as `discover` shows it: API name, Salesforce type, the Arrow type
/// written, whether it is in the default field set, whether it is a formula, and for lookups
/// the relationship name and the objects it points to.
pub fn discover_fields(d: &crate::salesforce::describe::ObjectDescribe) -> Vec<serde_json::Value> {
    d.fields
        .iter()
        .map(|f| {
            let arrow = crate::schema::arrow_field(&crate::schema::column(f));
            let mut v = serde_json::json!({
                "name": f.name,
                "label": f.label,
                "type": f.field_type,
                "arrow_type": arrow.data_type().to_string(),
                "default": crate::schema::is_default_field(f),
                "calculated": f.calculated,
                "nillable": f.nillable,
                "custom": f.custom,
            });
            if let Some(c) = &f.compound_field_name {
                v["compound_field"] = c.clone().into();
            }
            if let Some(r) = &f.relationship_name {
                v["relationship_name"] = r.clone().into();
                v["reference_to"] = f.reference_to.clone().into();
                v["polymorphic"] = f.is_polymorphic().into();
            }
            v
        })
        .collect()
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
    out: Out,
) -> Result<ExitCode, SyncError> {
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

#[derive(serde::Serialize)]
struct PlannedOut {
    /// `<Object>/<window id>`: what `run-chunk` takes.
    chunk: String,
    object: String,
    /// The UTC days the window covers (its day chunks).
    days: Vec<String>,
    kind: String,
    /// Records counted in the window when it was planned (null: a day or less, not counted).
    records: Option<u64>,
    /// `bulk` (a Bulk API 2.0 job) or `rest`: how `sync` and `run-chunk` fetch it.
    api: &'static str,
}

impl PlannedOut {
    fn new(
        object: &crate::schema::ObjectSchema,
        window: &crate::sink::layout::ChunkId,
        records: u64,
        api: crate::config::Api,
    ) -> Self {
        let counted = crate::plan::windows::counted(records);
        Self {
            api: if crate::plan::api::use_bulk(api, counted, object) {
                "bulk"
            } else {
                "rest"
            },
            chunk: format!("{}/{window}", object.object),
            object: object.object.clone(),
            days: crate::commit::days::day_chunks(window)
                .iter()
                .map(|d| d.day().format("%Y-%m-%d").to_string())
                .collect(),
            kind: window.kind.as_str().into(),
            records: counted,
        }
    }
}

async fn plan_cmd(cfg: Config, what: &PlanWhat, out: Out) -> Result<ExitCode, SyncError> {
    let mut chunks: Vec<PlannedOut> = Vec::new();
    let mut extra = serde_json::Map::new();
    match what {
        PlanWhat::Sync => {
            let ctx = Context::new(cfg)?;
            // `plan` reads and writes nothing: no schema record, no start point.
            let objects = crate::run::prepare::prepare_objects(&ctx, false).await?;
            let planned: Vec<(String, Vec<(crate::sink::layout::ChunkId, u64)>)> = match ctx
                .config
                .sync
                .mode
            {
                Mode::Historical => {
                    let budgets = Default::default();
                    let mut notes = Vec::new();
                    let p =
                        crate::modes::historical::plan_historical(&ctx, &objects, &budgets).await?;
                    let v = p
                            .into_iter()
                            .map(|h| {
                                if let Some(n) = h.note {
                                    notes.push(serde_json::json!({"object": h.object.schema.object, "note": n}));
                                }
                                (h.object.schema.object.clone(), h.windows)
                            })
                            .collect();
                    if !notes.is_empty() {
                        extra.insert("notes".into(), notes.into());
                    }
                    v
                }
                // Objects without a start point plan nothing: their first `sync` records it.
                Mode::Incremental => {
                    crate::modes::incremental::plan_incremental(&ctx, &objects).await?
                }
            };
            let mut estimates = Vec::new();
            let api = ctx.config.sync.api;
            for (o, ws) in planned {
                let Some(schema) = objects.iter().find(|x| x.schema.object == o) else {
                    continue;
                };
                let schema = &schema.schema;
                if !ws.is_empty() {
                    let e = estimate_windows(&ws, ctx.config.sync.query_limit, &|r| {
                        crate::plan::api::use_bulk(api, crate::plan::windows::counted(r), schema)
                    });
                    if e.runs > 1 {
                        tracing::warn!(object = %o, requests = e.requests, query_limit = ctx.config.sync.query_limit, runs = e.runs, "sync.query_limit splits this sync over several runs");
                    }
                    let mut v = serde_json::to_value(&e).unwrap_or_default();
                    v["object"] = o.clone().into();
                    estimates.push(v);
                }
                for (w, records) in ws {
                    chunks.push(PlannedOut::new(schema, &w, records, api));
                }
            }
            extra.insert("estimates".into(), estimates.into());
        }
        PlanWhat::Backfill(r) => {
            let (start, end) = parse_range(r)?;
            let cfg = crate::modes::backfill::context_for(&cfg, &r.objects)?;
            let ctx = Context::new(cfg)?;
            let objects = crate::run::prepare::prepare_objects(&ctx, false).await?;
            let names: Vec<String> = objects.iter().map(|o| o.schema.object.clone()).collect();
            // The backfill's plan record is what `status` counts pending chunks from, and
            // what `run-chunk` workers and a later `backfill` of the same range resume.
            let (plan, resumed) = crate::modes::backfill::plan_backfill(
                ctx.store.as_ref(),
                &names,
                start,
                end,
                r.force,
            )
            .await?;
            extra.insert("backfill_id".into(), plan.id.clone().into());
            extra.insert("resumed".into(), resumed.into());
            let now = crate::modes::incremental::now();
            let mut waiting = 0;
            for o in &objects {
                let name = &o.schema.object;
                let committed =
                    crate::sink::manifest::list_chunks(ctx.store.as_ref(), name).await?;
                let cut = crate::ranges::cut(now, ctx.config.sync.lag_s, o.schema.cursor_is_date);
                let (todo, later) = crate::modes::backfill::runnable_parts(
                    &plan,
                    name,
                    &committed,
                    cut,
                    o.schema.cursor_is_date,
                );
                waiting += later;
                let budget = crate::context::Budget::new(u32::MAX);
                let (windows, _) = crate::modes::backfill::backfill_windows(
                    &ctx, &o.schema, &plan.id, &todo, &budget,
                )
                .await?;
                for (w, records, _) in windows {
                    chunks.push(PlannedOut::new(&o.schema, &w, records, ctx.config.sync.api));
                }
            }
            if waiting > 0 {
                extra.insert("waiting".into(), waiting.into());
                extra.insert(
                    "note".into(),
                    format!("{waiting} chunks lie (partly) after now − sync.lag_s: the range ends in the future; plan again later for them").into(),
                );
            }
        }
    }
    if out.json {
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
        out.note(&format!("{} chunks", chunks.len()));
    }
    Ok(0)
}

/// Exit code of `run-chunk` for a chunk it could not finish yet (a budget stopped it, or its
/// window reaches past now − sync.lag_s): retry later.
pub const EXIT_RETRY_LATER: ExitCode = 3;

async fn run_chunk_cmd(cfg: Config, spec: &str, out: Out) -> Result<ExitCode, SyncError> {
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
    if chunk.is_marker() {
        return Err(bad("a chunk covers a non-empty window"));
    }
    let cfg = crate::modes::backfill::context_for(&cfg, &[object.to_string()])?;
    let ctx = Arc::new(Context::new(cfg)?);
    ensure_destination(&ctx).await?;
    let objects = crate::run::prepare::prepare_objects(&ctx, true).await?;
    let o = objects
        .into_iter()
        .next()
        .ok_or_else(|| bad("unknown object"))?;
    let budget = crate::context::Budget::new(ctx.config.sync.query_limit);
    let cut = crate::ranges::cut(
        crate::modes::incremental::now(),
        ctx.config.sync.lag_s,
        o.schema.cursor_is_date,
    );
    // What of this chunk is still to do (an earlier run may have committed a part of it, cut
    // at now − lag), and what of that can be fetched now.
    let committed =
        crate::sink::manifest::list_chunks(ctx.store.as_ref(), &o.schema.object).await?;
    let parts = crate::modes::backfill::uncovered(&chunk, &committed);
    let mut later = parts.iter().any(|p| p.end > cut);
    let mut stop: Option<String> = ctx.api_budget_stop();
    let (mut rows, mut committed_parts) = (0u64, 0u64);
    crate::run::runner::mark_started(&ctx, &o.schema.object, &chunk).await;
    for part in &parts {
        if stop.is_some() {
            break;
        }
        let Some((a, b)) =
            crate::ranges::fetch_range(part.start, part.end, cut, o.schema.cursor_is_date)
        else {
            continue;
        };
        // In `auto`, a window of more than a day is counted first (one request) to choose
        // between REST and a Bulk job, as `sync` does from its plan; an empty one needs no query.
        let api = ctx.config.sync.api;
        let expected = if api == crate::config::Api::Auto
            && o.schema.bulk_obstacle().is_none()
            && b - a > chrono::Duration::days(1)
            && budget.try_take()
        {
            Some(
                ctx.client
                    .count(
                        &crate::salesforce::soql::count_query(
                            &o.schema.object,
                            &o.schema.cursor_field,
                            o.schema.cursor_is_date,
                            Some((a, b)),
                        ),
                        ctx.config.sync.include_deleted,
                        &format!("count of {}", o.schema.object),
                    )
                    .await?,
            )
        } else {
            None
        };
        // one window alone in the process: it may use the whole memory limit and read ahead
        let job = crate::commit::job::ChunkJob {
            pages_ahead: crate::commit::job::pages_ahead(1),
            // a day cut at now − lag is replaced up to the cut (then widened over what
            // committed past it, as a backfill run does)
            replaces: (chunk.kind == crate::sink::layout::ChunkKind::Backfill)
                .then_some((chunk.start, chunk.end.min(b))),
            expected,
            bulk: crate::plan::api::use_bulk(api, expected, &o.schema),
            memory_share: (ctx.config.sync.memory_limit_mb << 20),
            ..crate::commit::job::ChunkJob::new(
                o.schema.clone(),
                crate::sink::layout::ChunkId {
                    start: a,
                    end: b,
                    ..part.clone()
                },
                &ctx.config,
            )
        };
        match crate::run::runner::run_splitting(&ctx, &budget, &job).await {
            Ok(crate::commit::job::ChunkOutcome::Committed {
                rows: r, chunks: c, ..
            }) => {
                rows += r;
                committed_parts += c;
            }
            Ok(crate::commit::job::ChunkOutcome::AlreadyCommitted { .. }) => {}
            Ok(crate::commit::job::ChunkOutcome::BudgetSpent {
                rows: r, chunks: c, ..
            }) => {
                // the days it passed are committed; the rest waits for the next try
                rows += r;
                committed_parts += c;
                stop = Some(ctx.query_limit_reason());
            }
            Err(SyncError::Salesforce(crate::salesforce::SfError::DailyLimit { message })) => {
                stop = Some(crate::context::daily_limit_reason(&message));
            }
            Err(e) => return Err(e),
        }
    }
    crate::run::runner::mark_ended(&ctx, &o.schema.object, &chunk).await;
    if stop.is_some() {
        later = true;
    }
    let (outcome, code) = match (&stop, later, committed_parts) {
        (Some(_), _, _) => ("paused", EXIT_RETRY_LATER),
        (None, true, _) => ("waiting", EXIT_RETRY_LATER),
        (None, false, 0) => ("already_committed", 0),
        (None, false, _) => ("committed", 0),
    };
    let reason = stop.clone().or_else(|| {
        later.then(|| {
            format!(
                "the chunk ends at {}, after now − sync.lag_s ({}): what has happened is committed, retry after {} for the rest",
                crate::timefmt::rfc3339(chunk.end),
                crate::timefmt::rfc3339(cut),
                crate::timefmt::rfc3339(
                    chunk.end + chrono::Duration::seconds(ctx.config.sync.lag_s as i64)
                )
            )
        })
    });
    let v = serde_json::json!({"chunk": spec, "object": o.schema.object, "outcome": outcome, "rows": rows, "requests": budget.used(), "exit_code": code, "reason": reason});
    if out.json {
        print_json(&v);
    } else {
        println!(
            "{spec}: {}{}",
            match outcome {
                "committed" => format!("committed ({rows} rows)"),
                other => other.replace('_', " "),
            },
            reason.map(|r| format!(" — {r}")).unwrap_or_default()
        );
    }
    Ok(code)
}

/// What a run will cost in query requests.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct Estimate {
    /// Query windows (one query each).
    pub windows: u64,
    /// Day chunks.
    pub chunks: u64,
    pub records: u64,
    /// Counting, then one request per page of 2,000 records per window.
    pub requests: u64,
    pub query_limit: u32,
    /// Runs needed with the per-object query budget.
    pub runs: u64,
}

/// Estimates the requests of planned windows: one aggregate count per 2,000 days, then each
/// window's pages (a window counted empty needs none).
pub fn estimate_windows(
    windows: &[(crate::sink::layout::ChunkId, u64)],
    query_limit: u32,
    bulk: &dyn Fn(u64) -> bool,
) -> Estimate {
    let days = windows
        .iter()
        .map(|(w, _)| crate::commit::days::day_chunks(w).len() as u64)
        .sum::<u64>();
    let counted = |r: u64| {
        if r == crate::plan::windows::UNCOUNTED {
            0
        } else {
            r
        }
    };
    let records = windows.iter().map(|w| counted(w.1)).sum();
    // an uncounted window (a day or less) is taken as one page
    let pages: u64 = windows
        .iter()
        .map(|(_, r)| match *r {
            r if bulk(r) => {
                BULK_JOB_REQUESTS + counted(r).div_ceil(crate::fetch::bulk::RESULTS_PAGE).max(1)
            }
            crate::plan::windows::UNCOUNTED => 1,
            r => r.div_ceil(crate::plan::windows::PAGE),
        })
        .sum();
    let uses_bulk = windows.iter().any(|(_, r)| bulk(*r));
    let requests = days.div_ceil(2000) + pages + u64::from(uses_bulk);
    Estimate {
        windows: windows.len() as u64,
        chunks: days,
        records,
        requests,
        query_limit,
        runs: requests.div_ceil(query_limit.max(1) as u64),
    }
}

/// A Bulk job's requests besides its result pages: the create and about three polls.
const BULK_JOB_REQUESTS: u64 = 4;

/// Estimates requests from COUNT() over a range of `days` (before the windows are planned):
/// the aggregate count, one page per 2,000 records, and at most one partial page per window.
pub fn estimate_requests(
    days: u64,
    records: u64,
    concurrency: usize,
    window_records: u64,
    query_limit: u32,
    bulk: bool,
) -> Estimate {
    let (windows, fetch) = if records == 0 {
        (0, 0)
    } else if bulk {
        // Bulk windows (crate::plan::windows::cut_windows_for): jobs, their polls and result pages, and
        // one /limits read
        let w = records
            .div_ceil(crate::plan::windows::BULK_WINDOW_TARGET)
            .max(
                (concurrency as u64)
                    .min(records / crate::plan::windows::BULK_MIN_RECORDS)
                    .max(1),
            );
        (
            w,
            w * BULK_JOB_REQUESTS + records.div_ceil(crate::fetch::bulk::RESULTS_PAGE) + 1,
        )
    } else {
        let w = records
            .div_ceil(window_records.max(1))
            .max((concurrency as u64).min(records.div_ceil(crate::plan::windows::PAGE)));
        (w, records / crate::plan::windows::PAGE + w)
    };
    let requests = days.div_ceil(2000) + fetch;
    Estimate {
        windows,
        chunks: days,
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
    fn estimates_grow_with_records_not_days() {
        // 1,000,000 records over two years: 1 count, 500 pages, 20 windows
        let e = estimate_requests(730, 1_000_000, 4, 50_000, 50, false);
        assert_eq!((e.requests, e.windows, e.runs), (521, 20, 11));
        // 25 records over two years: a count and a page
        assert_eq!(estimate_requests(730, 25, 4, 50_000, 50, false).requests, 2);
        assert_eq!(estimate_requests(730, 0, 4, 50_000, 50, false).requests, 1);
        // the same million by Bulk: 4 jobs (create + ~3 polls each), 10 result pages, /limits
        let b = estimate_requests(730, 1_000_000, 4, 50_000, 50, true);
        assert_eq!((b.requests, b.windows, b.runs), (1 + 16 + 10 + 1, 4, 1));
        assert!(b.requests <= 1_000_000 / 25_000);
    }
}
