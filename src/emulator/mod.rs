//! A local Salesforce emulator: OAuth 2.0 client credentials, versions, limits, global and
//! object describe, query/queryAll with `nextRecordsUrl` paging and `batchSize`, Salesforce's
//! error bodies and status codes, `Sforce-Limit-Info` on every REST response, and fault
//! injection; JSON answers are gzip-compressed when the client asks (`Accept-Encoding: gzip`),
//! as Salesforce does. It serves the demo and every end-to-end test, and users can point their own
//! pipelines at it.

mod args;
pub mod bulk;
pub mod data;
mod deleted;
mod describe;
mod http;
mod oauth;
mod query;
mod records;
pub mod render;
pub mod soql;

pub use args::{parse_rows, parse_synthetic};
use deleted::*;
use describe::*;
use http::*;
use oauth::*;
use query::*;
pub use records::render_page;
use records::*;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use data::{java_double, Cell, Dataset, FieldDef, GenConfig, ObjectDef, Table};

/// Fault injection switches.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Every Nth REST request answers 503 `SERVER_UNAVAILABLE`.
    pub fail_every: Option<u64>,
    /// Access tokens expire this long after issue (401 `INVALID_SESSION_ID`).
    pub token_ttl: Option<Duration>,
    /// Added before every answer.
    pub latency: Option<Duration>,
    /// Queries whose datetime window spans more than this many hours get `QUERY_TIMEOUT`.
    pub query_timeout_hours: Option<u64>,
    /// Every Nth query page is cut in half (truncated body).
    pub truncate_every: Option<u64>,
    /// `(Object, Field)` whose values are served with the wrong JSON type.
    pub bad_value: Option<(String, String)>,
    /// The app has no Run-As user (`invalid_grant`).
    pub no_run_as_user: bool,
    /// The app has no OAuth scopes (`invalid_grant`).
    pub no_scopes: bool,
    /// Every Nth query page drops the connection in the middle of its body.
    pub drop_body_every: Option<u64>,
    /// The first N query requests answer only after this delay (to pass a client timeout).
    pub slow_first_queries: Option<(u64, Duration)>,
    /// The Nth `nextRecordsUrl` request (once) finds its query locator expired.
    pub expire_locator_at: Option<u64>,
    /// Aggregate (`GROUP BY`) queries answer `QUERY_TIMEOUT`, as they may on a huge table.
    pub refuse_aggregates: bool,
    /// Objects the Run-As user cannot see: their describe answers 404 `NOT_FOUND`.
    pub hidden_objects: Vec<String>,
}

/// Emulator settings.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub gen: GenConfig,
    pub client_id: String,
    pub client_secret: String,
    /// `DailyApiRequests.Max`; past it: 403 `REQUEST_LIMIT_EXCEEDED`.
    pub daily_limit: u64,
    pub faults: Faults,
    /// Query locators expire after this much idle time.
    pub locator_idle: Duration,
    /// Bulk API 2.0 query jobs: processing time, failures and limits.
    pub bulk: bulk::BulkConfig,
    /// The org's 18-character id, in the token response's identity URL.
    pub org_id: String,
    /// getDeleted answers at most this many ids (Salesforce: 600,000), else
    /// `EXCEEDED_ID_LIMIT`.
    pub deleted_id_limit: usize,
}

/// Demo credentials.
pub const DEMO_CLIENT_ID: &str = "forcelake-demo-client";
pub const DEMO_CLIENT_SECRET: &str = "forcelake-demo-secret";

impl Default for EmulatorConfig {
    fn default() -> Self {
        let today = chrono::Utc::now().date_naive();
        Self {
            gen: GenConfig {
                seed: 42,
                rows: HashMap::new(),
                default_rows: 1000,
                anchor_ms: today
                    .and_hms_opt(0, 0, 0)
                    .expect("midnight exists")
                    .and_utc()
                    .timestamp_millis(),
                days: 730,
                synthetic: HashMap::new(),
            },
            client_id: DEMO_CLIENT_ID.into(),
            client_secret: DEMO_CLIENT_SECRET.into(),
            daily_limit: 5_000_000,
            faults: Faults::default(),
            locator_idle: Duration::from_secs(15 * 60),
            bulk: bulk::BulkConfig::default(),
            org_id: DEMO_ORG_ID.into(),
            deleted_id_limit: 600_000,
        }
    }
}

/// The demo org's id.
pub const DEMO_ORG_ID: &str = "00D5g000004EMULEAA";

struct Cursor {
    /// The table as it was when the query ran (a consistent snapshot).
    table: Arc<Table>,
    rows: Vec<u32>,
    fields: Vec<usize>,
    rels: Vec<(usize, soql::RelSelect)>,
    pos: usize,
    batch: usize,
    last_used: Instant,
    seq: u64,
}

struct Inner {
    cfg: EmulatorConfig,
    data: RwLock<Dataset>,
    tokens: Mutex<HashMap<String, Instant>>,
    cursors: Mutex<HashMap<String, Cursor>>,
    requests: AtomicU64,
    query_pages: AtomicU64,
    query_requests: AtomicU64,
    next_requests: AtomicU64,
    daily_limit: AtomicU64,
    /// Rendered records per (table, select list), for the table's current version: each record
    /// is rendered to JSON once and then served from memory (fast enough for benchmarks).
    rendered: Mutex<HashMap<(String, Vec<usize>), (u64, Arc<Vec<std::sync::OnceLock<Box<[u8]>>>>)>>,
    /// Row indexes sorted by a datetime field, per table version: range queries use them.
    indexes: Mutex<HashMap<(String, usize), (usize, Arc<Vec<(i64, u32)>>)>>,
    /// Pre-rendered pool records of synthetic tables per (table, select list).
    templates: Mutex<HashMap<(String, Vec<usize>), Templates>>,
    /// Pre-rendered CSV pool records of synthetic tables per (table, select list).
    csv_templates: Mutex<HashMap<(String, Vec<usize>), Templates>>,
    seq: AtomicU64,
    base_url: Mutex<String>,
    hold: Hold,
    /// Bulk API 2.0 query jobs by id.
    jobs: Mutex<HashMap<String, bulk::Job>>,
    /// `DailyBulkV2QueryJobs.Remaining`.
    bulk_jobs_left: AtomicU64,
    bulk_jobs_created: AtomicU64,
    /// Bulk results requests so far.
    bulk_pages: AtomicU64,
    /// A Bulk job's time from create to `JobComplete`, in ms (changeable while running).
    bulk_processing_ms: AtomicU64,
}

impl Inner {
    fn processing(&self) -> Duration {
        Duration::from_millis(self.bulk_processing_ms.load(Ordering::Relaxed))
    }
}

/// Holding query answers open (tests kill the client while it provably waits mid-run).
struct Hold {
    /// Query requests (first pages and `nextRecordsUrl` pages) seen so far.
    seen: AtomicU64,
    /// Requests numbered at or past this are held (`u64::MAX`: none).
    from: AtomicU64,
    /// How many requests have been held, ever.
    held: tokio::sync::watch::Sender<u64>,
    /// Bumped to let held requests go.
    released: tokio::sync::watch::Sender<u64>,
}

impl Hold {
    fn new() -> Self {
        Self {
            seen: AtomicU64::new(0),
            from: AtomicU64::new(u64::MAX),
            held: tokio::sync::watch::channel(0).0,
            released: tokio::sync::watch::channel(0).0,
        }
    }

    /// Waits, for a held request, until [`RunningEmulator::release_held`].
    async fn point(&self) {
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if n < self.from.load(Ordering::SeqCst) {
            return;
        }
        let mut rx = self.released.subscribe();
        let generation = *rx.borrow_and_update();
        self.held.send_modify(|h| *h += 1);
        let _ =
            tokio::time::timeout(Duration::from_secs(300), rx.wait_for(|g| *g != generation)).await;
    }
}

/// A running emulator; dropping it (or [`RunningEmulator::stop`]) shuts it down.
pub struct RunningEmulator {
    pub url: String,
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningEmulator {
    /// A snapshot of the records (the truth tests compare against).
    pub fn dataset(&self) -> Arc<Dataset> {
        Arc::new(self.inner.data.read().expect("dataset lock").clone())
    }

    /// Changes the data in place (mutations, new fields, type changes).
    pub fn mutate<R>(&self, f: impl FnOnce(&mut Dataset) -> R) -> R {
        let mut g = self.inner.data.write().expect("dataset lock");
        f(&mut g)
    }

    /// Inserts `n` records of `object` that share one cursor instant (`ts_ms`).
    pub fn insert_records(&self, object: &str, n: usize, ts_ms: i64) {
        let mut rng = StdRng::seed_from_u64(ts_ms as u64 ^ n as u64);
        self.mutate(|d| {
            if let Some(t) = d.table_mut(object) {
                for _ in 0..n {
                    t.insert(&mut rng, ts_ms);
                }
            }
        });
    }

    /// Adds a field to an object's describe at run time.
    pub fn add_field(&self, object: &str, name: &str, ftype: &'static str, custom: bool) {
        self.mutate(|d| {
            d.table_mut(object)
                .map(|t| t.add_field(name, ftype, custom))
        });
    }

    /// Changes a field's type in an object's describe at run time.
    pub fn change_field_type(&self, object: &str, field: &str, ftype: &'static str) {
        self.mutate(|d| {
            d.table_mut(object)
                .map(|t| t.change_field_type(field, ftype))
        });
    }

    /// Starts creating, updating, soft-deleting and late-committing records of `objects`
    /// every `every`, until the handle is stopped or dropped.
    pub fn start_mutations(
        &self,
        objects: &[&str],
        every: Duration,
        late_by: Duration,
    ) -> MutationHandle {
        start_mutator(
            self.inner.clone(),
            objects.iter().map(|s| s.to_string()).collect(),
            every,
            late_by,
        )
    }
    /// REST requests answered so far.
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// From the `k`-th query request after this call on (1 = the next one), every query
    /// request (first page or `nextRecordsUrl`) is held open, unanswered, until
    /// [`Self::release_held`]: a client killed while one is held is provably mid-run, and the
    /// requests answered before it bound how far the run got.
    pub fn hold_queries_from(&self, k: u64) {
        let seen = self.inner.hold.seen.load(Ordering::SeqCst);
        self.inner
            .hold
            .from
            .store(seen + k.max(1), Ordering::SeqCst);
    }

    /// Waits until a request is held after [`Self::hold_queries_from`] (returns at once if
    /// one is held already since `since` = the value of [`Self::held_count`] before).
    pub async fn wait_held(&self, since: u64) {
        let mut rx = self.inner.hold.held.subscribe();
        let _ = rx.wait_for(|h| *h > since).await;
    }

    /// How many requests have been held so far.
    pub fn held_count(&self) -> u64 {
        *self.inner.hold.held.borrow()
    }

    /// Stops holding and answers every held request.
    pub fn release_held(&self) {
        self.inner.hold.from.store(u64::MAX, Ordering::SeqCst);
        self.inner.hold.released.send_modify(|g| *g += 1);
    }

    /// Changes `DailyApiRequests.Max` (e.g. to lift an exhausted limit).
    /// Sets a Bulk job's time from create to `JobComplete` (jobs already created included).
    pub fn set_bulk_delay(&self, d: Duration) {
        self.inner
            .bulk_processing_ms
            .store(d.as_millis() as u64, Ordering::Relaxed);
    }

    /// Bulk API 2.0 query jobs created so far.
    pub fn bulk_jobs_created(&self) -> u64 {
        self.inner.bulk_jobs_created.load(Ordering::SeqCst)
    }

    /// Bulk results requests answered (or held) so far.
    pub fn bulk_result_requests(&self) -> u64 {
        self.inner.bulk_pages.load(Ordering::SeqCst)
    }

    /// `(id, state)` of every job not deleted, by id.
    pub fn bulk_jobs(&self) -> Vec<(String, String)> {
        let jobs = self.inner.jobs.lock().expect("job map");
        let mut v: Vec<(String, String)> = jobs
            .iter()
            .map(|(id, j)| {
                (
                    id.clone(),
                    j.state_name(self.inner.processing()).to_string(),
                )
            })
            .collect();
        v.sort();
        v
    }

    pub fn set_daily_limit(&self, max: u64) {
        self.inner.daily_limit.store(max, Ordering::Relaxed);
    }
    /// Stops serving and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Stops a mutation task when stopped or dropped.
pub struct MutationHandle {
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: Option<tokio::task::JoinHandle<u64>>,
}

impl MutationHandle {
    /// Stops mutating; returns how many mutations were made.
    pub async fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        match self.task.take() {
            Some(t) => t.await.unwrap_or(0),
            None => 0,
        }
    }
}

impl Drop for MutationHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn start_mutator(
    inner: Arc<Inner>,
    objects: Vec<String>,
    every: Duration,
    late_by: Duration,
) -> MutationHandle {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let task = tokio::spawn(async move {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let mut n = 0u64;
        while !flag.load(Ordering::SeqCst) {
            tokio::time::sleep(every).await;
            let now = chrono::Utc::now().timestamp_millis();
            let mut g = inner.data.write().expect("dataset lock");
            for o in &objects {
                if g.table(o).is_none_or(|t| t.synthetic.is_some()) {
                    continue; // synthetic tables are read-only
                }
                let Some(t) = g.table_mut(o) else { continue };
                let len = t.rows.len();
                if len > 0 {
                    for _ in 0..2 {
                        let i = rng.random_range(0..len);
                        t.update(i, now, &mut rng);
                    }
                    if rng.random::<f64>() < 0.5 {
                        let i = rng.random_range(0..len);
                        t.soft_delete(i, now);
                    }
                }
                t.insert(&mut rng, now);
                // A record committed late: visible from now on, with a cursor value in the past.
                t.insert(&mut rng, now - late_by.as_millis() as i64);
                n += 5;
            }
        }
        n
    });
    MutationHandle {
        stop,
        task: Some(task),
    }
}

/// Generates the data and serves on `addr` (port 0 picks a free port).
pub async fn start(cfg: EmulatorConfig, addr: SocketAddr) -> std::io::Result<RunningEmulator> {
    let data = RwLock::new(data::generate(&cfg.gen));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let url = format!("http://{local}");
    let daily = cfg.daily_limit;
    let inner = Arc::new(Inner {
        daily_limit: AtomicU64::new(daily),
        indexes: Mutex::new(HashMap::new()),
        rendered: Mutex::new(HashMap::new()),
        templates: Mutex::new(HashMap::new()),
        csv_templates: Mutex::new(HashMap::new()),
        jobs: Mutex::new(HashMap::new()),
        bulk_jobs_left: AtomicU64::new(cfg.bulk.daily_jobs),
        bulk_jobs_created: AtomicU64::new(0),
        bulk_pages: AtomicU64::new(0),
        bulk_processing_ms: AtomicU64::new(cfg.bulk.processing.as_millis() as u64),
        cfg,
        data,
        tokens: Mutex::new(HashMap::new()),
        cursors: Mutex::new(HashMap::new()),
        requests: AtomicU64::new(0),
        query_pages: AtomicU64::new(0),
        query_requests: AtomicU64::new(0),
        next_requests: AtomicU64::new(0),
        seq: AtomicU64::new(0),
        base_url: Mutex::new(url.clone()),
        hold: Hold::new(),
    });
    let app = Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/data", get(versions))
        .route("/services/data/", get(versions))
        .route("/services/data/{*rest}", axum::routing::any(data_api))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(gzip_when_asked))
        .with_state(inner.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Ok(RunningEmulator {
        url,
        addr: local,
        inner,
        shutdown: Some(tx),
        task: Some(task),
    })
}

// -----------------------------------------------------------------------------------------
// OAuth

// -----------------------------------------------------------------------------------------
// REST

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic record served from its pre-rendered template equals the same record
    /// generated and rendered field by field.
    #[test]
    fn synthetic_templates_render_the_generated_record() {
        let mut gen = EmulatorConfig::default().gen;
        gen.default_rows = 0;
        gen.synthetic.insert("Account".into(), 100_000);
        let data = data::generate(&gen);
        let table = data.table_arc("Account").unwrap();
        let s = table.synthetic.clone().unwrap();
        let fields: Vec<usize> = (0..table.def.fields.len()).collect();
        let t: Vec<std::sync::OnceLock<Template>> = (0..s.pool_len())
            .map(|_| std::sync::OnceLock::new())
            .collect();
        for i in [0u64, 1, 65_535, 65_536, 99_999] {
            let mut fast = Vec::new();
            render_synthetic(&mut fast, &table.def, &s, &t, i, &fields);
            let mut slow = Vec::new();
            render_record(
                &mut slow,
                &table.def,
                &table.row(i as usize),
                &fields,
                "62.0",
                None,
                None,
                None,
            );
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(slow).unwrap()
            );
        }
    }
}
