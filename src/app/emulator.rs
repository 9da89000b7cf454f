//! `emulator`: serves the Salesforce emulator until Ctrl-C.

use std::time::Duration;

use crate::emulator;

use crate::app::ExitCode;
use std::net::SocketAddr;

use clap::Args;

use crate::context::SyncError;
use crate::emulator::EmulatorConfig;

pub async fn run_emulator(args: &EmulatorArgs) -> Result<ExitCode, SyncError> {
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
    /// getDeleted: the most ids one call answers (more: EXCEEDED_ID_LIMIT).
    #[arg(long, default_value_t = 600_000)]
    pub deleted_id_limit: usize,
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
        cfg.deleted_id_limit = self.deleted_id_limit;
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
