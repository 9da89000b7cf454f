//! A local Salesforce emulator: OAuth 2.0 client credentials, versions, limits, global and
//! object describe, query/queryAll with `nextRecordsUrl` paging and `batchSize`, Salesforce's
//! error bodies and status codes, `Sforce-Limit-Info` on every REST response, and fault
//! injection; JSON answers are gzip-compressed when the client asks (`Accept-Encoding: gzip`),
//! as Salesforce does. It serves the demo and every end-to-end test, and users can point their own
//! pipelines at it.

pub mod bulk;
pub mod data;
pub mod render;
pub mod soql;

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

/// Compresses a response body with gzip (fast level) when the request accepts it. Streamed
/// bodies (the dropped-connection fault) are left as they are.
async fn gzip_when_asked(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let wants = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|e| e.split(';').next().map(str::trim) == Some("gzip"))
        });
    let resp = next.run(req).await;
    let size = axum::body::HttpBody::size_hint(resp.body()).exact();
    if !wants
        || resp.headers().contains_key(header::CONTENT_ENCODING)
        || size.is_none_or(|n| n < 1024)
    {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(raw) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let gz = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(
            Vec::with_capacity(raw.len() / 4),
            flate2::Compression::fast(),
        );
        e.write_all(&raw).and_then(|_| e.finish())
    })
    .await;
    match gz {
        Ok(Ok(z)) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            parts
                .headers
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            parts
                .headers
                .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
            Response::from_parts(parts, Body::from(z))
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

// -----------------------------------------------------------------------------------------
// OAuth

fn oauth_error(error: &str, description: &str) -> Response {
    let body = serde_json::json!({"error": error, "error_description": description}).to_string();
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body,
    )
        .into_response()
}

async fn token(State(st): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(d) = st.cfg.faults.latency {
        tokio::time::sleep(d).await;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let host = host.split(':').next().unwrap_or("");
    if host == "login.salesforce.com" || host == "test.salesforce.com" {
        return oauth_error("invalid_grant", "request not supported on this domain");
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return oauth_error("unsupported_grant_type", "grant type not supported");
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error("unsupported_grant_type", "grant type not supported");
    }
    let (mut id, mut secret) = (
        form.get("client_id").cloned(),
        form.get("client_secret").cloned(),
    );
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "))
    {
        use base64_decode as b64;
        if let Some((i, s)) = b64(basic).and_then(|d| {
            d.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        }) {
            id = Some(i);
            secret = Some(s);
        }
    }
    if id.as_deref() != Some(st.cfg.client_id.as_str()) {
        return oauth_error("invalid_client_id", "client identifier invalid");
    }
    if secret.as_deref() != Some(st.cfg.client_secret.as_str()) {
        return oauth_error("invalid_client", "invalid client credentials");
    }
    if st.cfg.faults.no_run_as_user {
        return oauth_error("invalid_grant", "no client credentials user enabled");
    }
    if st.cfg.faults.no_scopes {
        return oauth_error("invalid_grant", "no valid scopes defined");
    }
    let mut rng = rand::rng();
    let tok: String = (0..48)
        .map(|_| {
            const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
            A[rng.random_range(0..A.len())] as char
        })
        .collect();
    let access_token = format!("00D5g000004EMUL!AQ{tok}");
    st.tokens
        .lock()
        .expect("token map")
        .insert(access_token.clone(), Instant::now());
    let base = st.base_url.lock().expect("base url").clone();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let body = serde_json::json!({
        "access_token": access_token,
        "signature": "ZW11bGF0b3Itc2lnbmF0dXJl",
        "scope": "api",
        "instance_url": base,
        "id": format!("{base}/id/{}/0055g00000EMULAAA", st.cfg.org_id),
        "token_type": "Bearer",
        "issued_at": now_ms.to_string(),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

fn base64_decode(s: &str) -> Option<String> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.trim().bytes() {
        if c == b'=' {
            break;
        }
        let v = A.iter().position(|&x| x == c)? as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    String::from_utf8(out).ok()
}

// -----------------------------------------------------------------------------------------
// REST

fn rest_error(st: &Inner, status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!([{"message": message, "errorCode": code}]).to_string();
    with_limit(
        st,
        (
            status,
            [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
            body,
        )
            .into_response(),
    )
}

fn with_limit(st: &Inner, mut r: Response) -> Response {
    let max = st.daily_limit.load(Ordering::Relaxed);
    let used = st.requests.load(Ordering::Relaxed).min(max);
    if let Ok(v) = HeaderValue::from_str(&format!("api-usage={used}/{max}")) {
        r.headers_mut().insert("Sforce-Limit-Info", v);
    }
    r
}

fn json_ok(st: &Inner, body: impl Into<Body>) -> Response {
    with_limit(
        st,
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
            body.into(),
        )
            .into_response(),
    )
}

async fn versions() -> Response {
    let body = serde_json::json!([
        {"label": "Spring '24", "url": "/services/data/v60.0", "version": "60.0"},
        {"label": "Summer '24", "url": "/services/data/v61.0", "version": "61.0"},
        {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"},
    ]);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

async fn not_found() -> Response {
    let body = serde_json::json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]).to_string();
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body,
    )
        .into_response()
}

/// What every REST request passes: the latency fault, authentication, the daily request
/// counter (403 `REQUEST_LIMIT_EXCEEDED` past it) and injected 503s. `Ok`: the request's number.
async fn admit(st: &Inner, headers: &HeaderMap) -> Result<u64, Response> {
    if let Some(d) = st.cfg.faults.latency {
        tokio::time::sleep(d).await;
    }
    // Authentication.
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let tok = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("OAuth "))
        .map(str::trim);
    let valid = match tok {
        None => false,
        Some(t) => {
            let map = st.tokens.lock().expect("token map");
            match map.get(t) {
                None => false,
                Some(issued) => st
                    .cfg
                    .faults
                    .token_ttl
                    .map(|ttl| issued.elapsed() < ttl)
                    .unwrap_or(true),
            }
        }
    };
    if !valid {
        return Err(rest_error(
            st,
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        ));
    }
    let n = st.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let daily_limit = st.daily_limit.load(Ordering::Relaxed);
    if n > daily_limit {
        return Err(rest_error(
            st,
            StatusCode::FORBIDDEN,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        ));
    }
    if let Some(k) = st.cfg.faults.fail_every {
        if k > 0 && n % k == 0 {
            return Err(rest_error(
                st,
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVER_UNAVAILABLE",
                "Server Unavailable",
            ));
        }
    }
    Ok(n)
}

/// `/services/data/…`: Bulk API 2.0 query jobs (any method), else the GET resources.
async fn data_api(
    st: State<Arc<Inner>>,
    method: axum::http::Method,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let parts: Vec<String> = uri
        .path()
        .trim_start_matches("/services/data/")
        .trim_end_matches('/')
        .split('/')
        .map(str::to_string)
        .collect();
    if parts.get(1).map(String::as_str) == Some("jobs")
        && parts.get(2).map(String::as_str) == Some("query")
    {
        return bulk::dispatch(&st.0, method, &headers, &uri, parts, body).await;
    }
    if method != axum::http::Method::GET {
        return not_found().await;
    }
    rest(st, headers, uri).await
}

async fn rest(State(st): State<Arc<Inner>>, headers: HeaderMap, uri: Uri) -> Response {
    let n = match admit(&st, &headers).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    let daily_limit = st.daily_limit.load(Ordering::Relaxed);
    let path = uri
        .path()
        .trim_start_matches("/services/data/")
        .trim_end_matches('/');
    let parts: Vec<&str> = path.split('/').collect();
    let Some(version) = parts.first().and_then(|v| v.strip_prefix('v')) else {
        return rest_error(
            &st,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        );
    };
    let version = version.to_string();
    let batch = headers
        .get("sforce-query-options")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.split(',')
                .find_map(|p| p.trim().strip_prefix("batchSize="))
                .and_then(|v| v.trim().parse::<usize>().ok())
        })
        .unwrap_or(2000)
        .clamp(200, 2000);
    if matches!(parts.get(1), Some(&"query") | Some(&"queryAll")) {
        st.hold.point().await;
    }
    let query_param = || {
        uri.query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.into_owned())
        })
    };
    match &parts[1..] {
        [] => json_ok(&st, serde_json::json!({"limits": format!("/services/data/v{version}/limits"), "sobjects": format!("/services/data/v{version}/sobjects"), "query": format!("/services/data/v{version}/query"), "queryAll": format!("/services/data/v{version}/queryAll")}).to_string()),
        ["limits"] => {
            let used = n.min(daily_limit);
            json_ok(&st, serde_json::json!({
                "DailyApiRequests": {"Max": daily_limit, "Remaining": daily_limit - used},
                "DailyBulkV2QueryJobs": {"Max": st.cfg.bulk.daily_jobs, "Remaining": st.bulk_jobs_left.load(Ordering::SeqCst)},
                "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                "DataStorageMB": {"Max": 1024, "Remaining": 1000},
            }).to_string())
        }
        ["sobjects"] => {
            let body = global_describe(&st.data.read().expect("dataset lock"), &version).to_string();
            json_ok(&st, body)
        }
        ["sobjects", obj, "describe"] => {
            let hidden = st.cfg.faults.hidden_objects.iter().any(|h| h.eq_ignore_ascii_case(obj));
            let t = (!hidden)
                .then(|| st.data.read().expect("dataset lock").table_arc(obj))
                .flatten();
            match t {
                Some(t) => json_ok(&st, object_describe(&t.def, &version).to_string()),
                None => rest_error(&st, StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist"),
            }
        }
        ["query"] | ["queryAll"] | ["query", _] | ["queryAll", _] if is_slow(&st) => {
            let d = st.cfg.faults.slow_first_queries.map(|(_, d)| d).unwrap_or_default();
            tokio::time::sleep(d).await;
            rest_error(&st, StatusCode::SERVICE_UNAVAILABLE, "SERVER_UNAVAILABLE", "Server Unavailable")
        }
        ["query"] | ["queryAll"] => {
            let all = parts[1] == "queryAll";
            match query_param() {
                None => rest_error(&st, StatusCode::BAD_REQUEST, "MALFORMED_QUERY", "A query string has to be specified"),
                Some(q) => start_query(&st, &q, all, batch, &version),
            }
        }
        ["query", loc] | ["queryAll", loc] => next_page(&st, loc, &version),
        _ => rest_error(&st, StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist"),
    }
}

/// Answers `SELECT DAY_ONLY(f), COUNT(Id) … GROUP BY DAY_ONLY(f)` (or a date field): one
/// `AggregateResult` record per day, in one batch — more than 2,000 groups is an error, as
/// aggregate queries cannot be continued with `queryMore`.
fn aggregate_by_day(st: &Inner, table: &Table, g: &soql::GroupByDay, rows: &[u32]) -> Response {
    if st.cfg.faults.refuse_aggregates {
        return rest_error(
            st,
            StatusCode::BAD_REQUEST,
            "QUERY_TIMEOUT",
            "Your query request was running for too long.",
        );
    }
    let monotone = table
        .synthetic
        .as_ref()
        .filter(|_| table.is_monotone(g.field));
    let mut days: std::collections::BTreeMap<Option<i32>, u64> = Default::default();
    for &i in rows {
        let day = match monotone {
            Some(s) => Some(s.stamp(i as u64).div_euclid(86_400_000) as i32),
            None => match table.row(i as usize)[g.field] {
                Cell::DateTime(ms) => Some(ms.div_euclid(86_400_000) as i32),
                Cell::Date(d) => Some(d),
                _ => None,
            },
        };
        *days.entry(day).or_default() += 1;
    }
    if days.len() > 2000 {
        return rest_error(
            st,
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            "Aggregate query does not support queryMore(), use LIMIT to restrict the results to a single batch",
        );
    }
    let records: Vec<serde_json::Value> = days
        .iter()
        .map(|(d, n)| {
            let day = d.and_then(|d| {
                chrono::DateTime::from_timestamp(d as i64 * 86_400, 0)
                    .map(|t| t.format("%Y-%m-%d").to_string())
            });
            let mut r = serde_json::Map::new();
            r.insert(
                "attributes".into(),
                serde_json::json!({"type": "AggregateResult"}),
            );
            r.insert(g.day_key.clone(), day.into());
            r.insert(g.count_key.clone(), (*n).into());
            serde_json::Value::Object(r)
        })
        .collect();
    json_ok(
        st,
        serde_json::json!({"totalSize": records.len(), "done": true, "records": records})
            .to_string(),
    )
}

/// Counts query requests; true for the first N when `slow_first_queries` is set.
fn is_slow(st: &Inner) -> bool {
    let n = st.query_requests.fetch_add(1, Ordering::Relaxed) + 1;
    matches!(st.cfg.faults.slow_first_queries, Some((k, _)) if n <= k)
}

/// Parses a query and finds the rows its WHERE clause selects (in table order, before any
/// ORDER BY, LIMIT or aggregation); `Err` is Salesforce's error answer.
fn select(
    st: &Inner,
    q: &str,
    all: bool,
    timeouts: bool,
) -> Result<(soql::Query, Arc<Table>, Vec<u32>), Response> {
    let data: Vec<Arc<Table>> = st.data.read().expect("dataset lock").tables.clone();
    let parsed = soql::parse(q, |name| {
        data.iter()
            .find(|t| t.def.name.eq_ignore_ascii_case(name))
            .map(|t| &t.def)
    });
    let (query, _) = match parsed {
        Ok(p) => p,
        Err(e) => return Err(rest_error(st, StatusCode::BAD_REQUEST, e.code, &e.message)),
    };
    let table = data
        .iter()
        .find(|t| t.def.name == query.object)
        .expect("parsed object exists")
        .clone();
    let record_query = timeouts && !query.count && query.group.is_none();
    if let (Some(h), Some(c), true) = (st.cfg.faults.query_timeout_hours, &query.cond, record_query)
    {
        if let Some((lo, hi)) = c.datetime_span() {
            if hi - lo > h as i64 * 3_600_000 {
                return Err(rest_error(
                    st,
                    StatusCode::BAD_REQUEST,
                    "QUERY_TIMEOUT",
                    "Your query request was running for too long.",
                ));
            }
        }
    }
    let deleted_col = table.def.field_index("IsDeleted");
    // A synthetic table answers a bare range on its cursor exactly by index arithmetic (its
    // records are never deleted); everything else goes through the row-by-row filter.
    let exact = match (&table.synthetic, &query.cond) {
        (Some(s), None) => Some(0..s.n as u32),
        (Some(s), Some(c)) => s.monotone_fields().iter().find_map(|&f| {
            let (lo, hi) = c.exact_range_on(f)?;
            let a = s.first_at_or_after(lo);
            Some(a as u32..s.first_at_or_after(hi).max(a) as u32)
        }),
        _ => None,
    };
    let answered = exact.is_some();
    // Candidates: a datetime range answered from a sorted index, else every row.
    let candidates: Vec<u32> = match (exact, query.cond.as_ref().and_then(|c| c.datetime_range())) {
        (Some(r), _) => r.collect(),
        (None, Some((field, lo, hi))) => {
            let idx = datetime_index(st, &table, field);
            let a = idx.partition_point(|(v, _)| *v < lo);
            let b = idx.partition_point(|(v, _)| *v < hi);
            idx[a..b].iter().map(|(_, r)| *r).collect()
        }
        (None, None) => (0..table.len() as u32).collect(),
    };
    let rows: Vec<u32> = if answered {
        candidates
    } else {
        candidates
            .into_iter()
            .filter(|&i| {
                let r = table.row(i as usize);
                if !all {
                    if let Some(d) = deleted_col {
                        if r[d] == Cell::Bool(true) {
                            return false;
                        }
                    }
                }
                query.cond.as_ref().map(|c| c.eval(&r)).unwrap_or(true)
            })
            .collect()
    };
    Ok((query, table, rows))
}

/// The selected rows in the query's ORDER BY, past its OFFSET, up to its LIMIT.
fn order_and_limit(query: &soql::Query, table: &Table, mut rows: Vec<u32>) -> Vec<u32> {
    let presorted = query
        .order
        .first()
        .is_some_and(|k| !k.desc && table.is_monotone(k.field));
    if !query.order.is_empty() && !presorted {
        rows.sort_by(|a, b| {
            soql::order_rows(
                &table.row(*a as usize),
                &table.row(*b as usize),
                &query.order,
            )
        });
    }
    rows.into_iter()
        .skip(query.offset)
        .take(query.limit.unwrap_or(usize::MAX))
        .collect()
}

fn start_query(st: &Arc<Inner>, q: &str, all: bool, batch: usize, version: &str) -> Response {
    let (query, table, rows) = match select(st, q, all, true) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(g) = &query.group {
        return aggregate_by_day(st, &table, g, &rows);
    }
    let rows = order_and_limit(&query, &table, rows);
    if query.count {
        return json_ok(
            st,
            format!(
                "{{\"totalSize\":{},\"done\":true,\"records\":[]}}",
                rows.len()
            ),
        );
    }
    let seq = st.seq.fetch_add(1, Ordering::Relaxed);
    let locator = format!("01g5g00000{:08X}", seq);
    let cursor = Cursor {
        table,
        rows,
        fields: query.fields.clone(),
        rels: query.rels.clone(),
        pos: 0,
        batch,
        last_used: Instant::now(),
        seq,
    };
    render_and_advance(st, locator, cursor, version)
}

fn render_cache(
    st: &Inner,
    table: &Arc<Table>,
    fields: &[usize],
) -> Arc<Vec<std::sync::OnceLock<Box<[u8]>>>> {
    let key = (table.def.name.clone(), fields.to_vec());
    let mut g = st.rendered.lock().expect("render cache");
    match g.get(&key) {
        Some((v, cache)) if *v == table.version && cache.len() == table.len() => cache.clone(),
        _ => {
            let cache: Arc<Vec<std::sync::OnceLock<Box<[u8]>>>> = Arc::new(
                (0..table.len())
                    .map(|_| std::sync::OnceLock::new())
                    .collect(),
            );
            g.insert(key, (table.version, cache.clone()));
            cache
        }
    }
}

/// The table's rows sorted by a datetime field (nulls left out), cached per table snapshot.
fn datetime_index(st: &Inner, table: &Arc<Table>, field: usize) -> Arc<Vec<(i64, u32)>> {
    let key = (table.def.name.clone(), field);
    let id = table.version as usize;
    if let Some((snap, idx)) = st.indexes.lock().expect("index cache").get(&key) {
        if *snap == id {
            return idx.clone();
        }
    }
    let mut v: Vec<(i64, u32)> = (0..table.len())
        .filter_map(|i| match table.row(i)[field] {
            Cell::DateTime(ms) => Some((ms, i as u32)),
            _ => None,
        })
        .collect();
    v.sort_unstable();
    let idx = Arc::new(v);
    st.indexes
        .lock()
        .expect("index cache")
        .insert(key, (id, idx.clone()));
    idx
}

fn next_page(st: &Arc<Inner>, loc: &str, version: &str) -> Response {
    let Some((id, offset)) = loc.rsplit_once('-') else {
        return rest_error(
            st,
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        );
    };
    let n = st.next_requests.fetch_add(1, Ordering::Relaxed) + 1;
    if st.cfg.faults.expire_locator_at == Some(n) {
        st.cursors.lock().expect("cursor map").remove(id);
        return rest_error(
            st,
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        );
    }
    let cursor = {
        let mut cs = st.cursors.lock().expect("cursor map");
        match cs.remove(id) {
            Some(c)
                if c.last_used.elapsed() <= st.cfg.locator_idle
                    && offset.parse::<usize>().ok() == Some(c.pos) =>
            {
                Some(c)
            }
            Some(c) if offset.parse::<usize>().ok() != Some(c.pos) => {
                // Re-reading an earlier page of a live cursor is allowed: rewind.
                match offset.parse::<usize>() {
                    Ok(o) if o < c.rows.len() && c.last_used.elapsed() <= st.cfg.locator_idle => {
                        Some(Cursor { pos: o, ..c })
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    };
    match cursor {
        Some(c) => render_and_advance(st, id.to_string(), c, version),
        None => rest_error(
            st,
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        ),
    }
}

fn render_and_advance(st: &Arc<Inner>, locator: String, mut c: Cursor, version: &str) -> Response {
    let table = c.table.clone();
    let end = (c.pos + c.batch).min(c.rows.len());
    let done = end >= c.rows.len();
    // Sized for the page up front (one allocation; synthetic records are ~1.3 KB).
    let per_record = if table.synthetic.is_some() { 1600 } else { 600 };
    let mut out = Vec::with_capacity((end - c.pos) * per_record + 200);
    out.extend_from_slice(format!("{{\"totalSize\":{},\"done\":{}", c.rows.len(), done).as_bytes());
    if !done {
        out.extend_from_slice(
            format!(",\"nextRecordsUrl\":\"/services/data/v{version}/query/{locator}-{end}\"")
                .as_bytes(),
        );
    }
    out.extend_from_slice(b",\"records\":[");
    let bad = st
        .cfg
        .faults
        .bad_value
        .as_ref()
        .filter(|(o, _)| o.eq_ignore_ascii_case(&table.def.name))
        .and_then(|(_, f)| table.def.field_index(f));
    // Records with relationships are rendered from the parents as they are now (no caches).
    let fast = bad.is_none() && version == "62.0" && c.rels.is_empty();
    let data = (!c.rels.is_empty()).then(|| st.data.read().expect("dataset lock").clone());
    let parents = data.as_ref().map(|data| Parents {
        data,
        rels: &c.rels,
    });
    let cache = if fast && table.synthetic.is_none() {
        Some(render_cache(st, &table, &c.fields))
    } else {
        None
    };
    let templates = match &table.synthetic {
        Some(s) if fast => Some((s, templates(st, &table, &c.fields))),
        _ => None,
    };
    for (k, &ri) in c.rows[c.pos..end].iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        if let Some((s, t)) = &templates {
            render_synthetic(&mut out, &table.def, s, t, ri as u64, &c.fields);
            continue;
        }
        match &cache {
            Some(cache) => {
                let r = cache[ri as usize].get_or_init(|| {
                    let mut one = Vec::with_capacity(1024);
                    render_record(
                        &mut one,
                        &table.def,
                        &table.rows[ri as usize],
                        &c.fields,
                        version,
                        None,
                        None,
                        None,
                    );
                    one.into_boxed_slice()
                });
                out.extend_from_slice(r);
            }
            None => render_record(
                &mut out,
                &table.def,
                &table.row(ri as usize),
                &c.fields,
                version,
                bad,
                None,
                parents.as_ref(),
            ),
        }
    }
    out.extend_from_slice(b"]}");
    c.pos = end;
    c.last_used = Instant::now();
    if !done {
        let mut cs = st.cursors.lock().expect("cursor map");
        cs.insert(locator, c);
        // At most 10 open cursors per user: the oldest is released.
        while cs.len() > 10 {
            if let Some(oldest) = cs.iter().min_by_key(|(_, v)| v.seq).map(|(k, _)| k.clone()) {
                cs.remove(&oldest);
            }
        }
    }
    let page_no = st.query_pages.fetch_add(1, Ordering::Relaxed) + 1;
    if let Some(k) = st.cfg.faults.truncate_every {
        if k > 0 && page_no % k == 0 {
            out.truncate(out.len() / 2);
        }
    }
    if let Some(k) = st.cfg.faults.drop_body_every {
        if k > 0 && page_no % k == 0 {
            // Send half the body, then fail the stream: the connection drops mid-body.
            let half = bytes::Bytes::from(out[..out.len() / 2].to_vec());
            let stream = futures::stream::iter(vec![
                Ok::<_, std::io::Error>(half),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "emulated connection drop",
                )),
            ]);
            return with_limit(
                st,
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
                    Body::from_stream(stream),
                )
                    .into_response(),
            );
        }
    }
    json_ok(st, out)
}

fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // serde_json escapes exactly as JSON requires; non-ASCII stays as UTF-8 like Salesforce sends it.
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// Where a pre-rendered synthetic record needs a per-record value: (byte offset, field).
type Slots = Vec<(usize, usize)>;
/// The slot field that stands for the raw Id inside `attributes.url`.
const URL_ID: usize = usize::MAX;

/// One pool record rendered without its per-record values, and where they go.
struct Template {
    bytes: Box<[u8]>,
    slots: Box<[(usize, usize)]>,
}

type Templates = Arc<Vec<std::sync::OnceLock<Template>>>;

fn templates(st: &Inner, table: &Table, fields: &[usize]) -> Templates {
    let key = (table.def.name.clone(), fields.to_vec());
    let n = table.synthetic.as_ref().map_or(0, |s| s.pool_len());
    st.templates
        .lock()
        .expect("template cache")
        .entry(key)
        .or_insert_with(|| Arc::new((0..n).map(|_| std::sync::OnceLock::new()).collect()))
        .clone()
}

/// The CSV counterpart of [`templates`] (Bulk API 2.0 results).
fn csv_templates(st: &Inner, table: &Table, fields: &[usize]) -> Templates {
    let key = (table.def.name.clone(), fields.to_vec());
    let n = table.synthetic.as_ref().map_or(0, |s| s.pool_len());
    st.csv_templates
        .lock()
        .expect("template cache")
        .entry(key)
        .or_insert_with(|| Arc::new((0..n).map(|_| std::sync::OnceLock::new()).collect()))
        .clone()
}

/// Renders synthetic record `i`: its pool record's bytes with Id and dates filled in.
fn render_synthetic(
    out: &mut Vec<u8>,
    def: &ObjectDef,
    s: &data::Synthetic,
    t: &[std::sync::OnceLock<Template>],
    i: u64,
    fields: &[usize],
) {
    let p = s.pool_index(i);
    let tpl = t[p].get_or_init(|| {
        let mut bytes = Vec::with_capacity(1024);
        let mut slots = Vec::new();
        let dynamic = (s, &mut slots);
        render_record(
            &mut bytes,
            def,
            s.pool_row(p),
            fields,
            "62.0",
            None,
            Some(dynamic),
            None,
        );
        Template {
            bytes: bytes.into_boxed_slice(),
            slots: slots.into_boxed_slice(),
        }
    });
    let mut at = 0;
    for &(off, fi) in tpl.slots.iter() {
        out.extend_from_slice(&tpl.bytes[at..off]);
        at = off;
        s.push_dynamic(out, i, fi, fi == URL_ID);
    }
    out.extend_from_slice(&tpl.bytes[at..]);
}

/// Renders one record; with `dynamic`, per-record fields of a synthetic table are left out
/// and their offsets recorded instead (see [`render_synthetic`]).
/// What a record's relationship objects are rendered from: the dataset (their parents) and
/// the relationships selected.
struct Parents<'a> {
    data: &'a Dataset,
    rels: &'a [(usize, soql::RelSelect)],
}

#[allow(clippy::too_many_arguments)]
fn render_record(
    out: &mut Vec<u8>,
    def: &ObjectDef,
    row: &[Cell],
    fields: &[usize],
    version: &str,
    bad: Option<usize>,
    mut dynamic: Option<(&data::Synthetic, &mut Slots)>,
    parents: Option<&Parents>,
) {
    out.extend_from_slice(b"{\"attributes\":{\"type\":\"");
    out.extend_from_slice(def.name.as_bytes());
    out.extend_from_slice(b"\",\"url\":\"/services/data/v");
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(b"/sobjects/");
    out.extend_from_slice(def.name.as_bytes());
    out.push(b'/');
    match (&mut dynamic, def.field_index("Id")) {
        (Some((s, slots)), Some(i)) if s.is_dynamic(i) => slots.push((out.len(), URL_ID)),
        _ => {
            if let Some(Cell::Str(id)) = def.field_index("Id").map(|i| &row[i]) {
                out.extend_from_slice(id.as_bytes());
            }
        }
    }
    out.extend_from_slice(b"\"}");
    // The relationship objects selected before plain field `k` (or after the last).
    let push_rels = |out: &mut Vec<u8>, k: usize| {
        if let Some(p) = parents {
            for (_, r) in p.rels.iter().filter(|(at, _)| *at == k) {
                out.push(b',');
                render_parent(out, p.data, row, r, version);
            }
        }
    };
    for (k, &fi) in fields.iter().enumerate() {
        push_rels(out, k);
        let f = &def.fields[fi];
        out.push(b',');
        push_json_str(out, &f.name);
        out.push(b':');
        if let Some((s, slots)) = &mut dynamic {
            if s.is_dynamic(fi) {
                slots.push((out.len(), fi));
                continue;
            }
        }
        if Some(fi) == bad && row[fi] != Cell::Null {
            if matches!(
                f.ftype,
                "string" | "textarea" | "picklist" | "id" | "reference" | "email" | "phone" | "url"
            ) {
                out.extend_from_slice(b"12345");
            } else {
                out.extend_from_slice(b"\"not-a-");
                out.extend_from_slice(f.ftype.as_bytes());
                out.push(b'"');
            }
            continue;
        }
        render_cell(out, f, &row[fi]);
    }
    push_rels(out, fields.len());
    out.push(b'}');
}

/// A relationship's JSON member: `"Owner":{"attributes":{…},"Name":…}`, or `null` for an
/// empty lookup. A polymorphic parent is typed `Name`; its fields the actual parent lacks are
/// null (`Type` is the parent's object).
fn render_parent(
    out: &mut Vec<u8>,
    data: &Dataset,
    row: &[Cell],
    rel: &soql::RelSelect,
    version: &str,
) {
    push_json_str(out, &rel.name);
    out.push(b':');
    let Some((table, prow)) = parent_record(data, row, rel) else {
        out.extend_from_slice(b"null");
        return;
    };
    let def = &table.def;
    let polymorphic = rel.targets.len() > 1;
    let id = def
        .field_index("Id")
        .and_then(|i| match &prow[i] {
            Cell::Str(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_default();
    out.extend_from_slice(b"{\"attributes\":{\"type\":");
    push_json_str(out, if polymorphic { "Name" } else { &def.name });
    out.extend_from_slice(
        format!(
            ",\"url\":\"/services/data/v{version}/sobjects/{}/{id}\"}}",
            def.name
        )
        .as_bytes(),
    );
    for item in &rel.items {
        out.push(b',');
        match item {
            soql::RelItem::Field(name) => {
                push_json_str(out, name);
                out.push(b':');
                match def.field_index(name) {
                    Some(fi) => render_cell(out, &def.fields[fi], &prow[fi]),
                    None if polymorphic && name == "Type" => push_json_str(out, &def.name),
                    None => out.extend_from_slice(b"null"),
                }
            }
            soql::RelItem::Rel(r) => render_parent(out, data, &prow, r, version),
        }
    }
    out.push(b'}');
}

/// The record a relationship's lookup points to, if it is set and exists.
pub(crate) fn parent_record(
    data: &Dataset,
    row: &[Cell],
    rel: &soql::RelSelect,
) -> Option<(Arc<Table>, data::Row)> {
    let Cell::Str(id) = &row[rel.fk] else {
        return None;
    };
    data.record(id, &rel.targets)
}

fn render_cell(out: &mut Vec<u8>, f: &FieldDef, c: &Cell) {
    match c {
        Cell::Null => out.extend_from_slice(b"null"),
        Cell::Str(s) => push_json_str(out, s),
        Cell::Num(v) => out.extend_from_slice(java_double(*v).as_bytes()),
        Cell::Cents(units) => {
            let v = *units as f64 / 10f64.powi(f.scale);
            out.extend_from_slice(java_double(v).as_bytes());
        }
        Cell::Int(v) => out.extend_from_slice(v.to_string().as_bytes()),
        Cell::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Cell::DateTime(ms) => push_json_str(out, &render::sf_datetime(*ms)),
        Cell::Date(d) => {
            let day = chrono::DateTime::from_timestamp(*d as i64 * 86_400, 0)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            push_json_str(out, &day);
        }
        Cell::Time(ms) => {
            let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
            push_json_str(out, &format!("{h:02}:{m:02}:{s:02}.{milli:03}Z"));
        }
        Cell::Address(a) => {
            let opt_s = |v: &Option<String>| {
                v.as_ref()
                    .map(|s| serde_json::to_string(s).expect("string"))
                    .unwrap_or_else(|| "null".into())
            };
            let opt_n = |v: &Option<f64>| v.map(java_double).unwrap_or_else(|| "null".into());
            let s = format!(
                "{{\"city\":{},\"country\":{},\"countryCode\":{},\"geocodeAccuracy\":{},\"latitude\":{},\"longitude\":{},\"postalCode\":{},\"state\":{},\"stateCode\":{},\"street\":{}}}",
                opt_s(&a.city), opt_s(&a.country), opt_s(&a.country_code), opt_s(&a.geocode_accuracy), opt_n(&a.latitude), opt_n(&a.longitude), opt_s(&a.postal_code), opt_s(&a.state), opt_s(&a.state_code), opt_s(&a.street)
            );
            out.extend_from_slice(s.as_bytes());
        }
        Cell::Location(lat, lon) => {
            out.extend_from_slice(
                format!(
                    "{{\"latitude\":{},\"longitude\":{}}}",
                    java_double(*lat),
                    java_double(*lon)
                )
                .as_bytes(),
            );
        }
    }
}

fn global_describe(data: &Dataset, version: &str) -> serde_json::Value {
    let sobjects: Vec<_> = data
        .tables
        .iter()
        .map(|t| {
            let n = &t.def.name;
            serde_json::json!({
                "activateable": false, "associateEntityType": null, "associateParentEntity": null,
                "createable": true, "custom": t.def.custom, "customSetting": false, "dataTranslationEnabled": false,
                "deepCloneable": false, "deletable": true, "deprecatedAndHidden": false, "feedEnabled": !t.def.custom,
                "hasSubtypes": false, "isInterface": false, "isSubtype": false, "keyPrefix": t.def.key_prefix,
                "label": t.def.label, "labelPlural": format!("{}s", t.def.label), "layoutable": true, "mergeable": n == "Account",
                "mruEnabled": true, "name": n, "queryable": true, "replicateable": true, "retrieveable": true,
                "searchable": true, "triggerable": true, "undeletable": true, "updateable": true,
                "urls": {
                    "sobject": format!("/services/data/v{version}/sobjects/{n}"),
                    "describe": format!("/services/data/v{version}/sobjects/{n}/describe"),
                    "rowTemplate": format!("/services/data/v{version}/sobjects/{n}/{{ID}}"),
                }
            })
        })
        .collect();
    serde_json::json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects})
}

fn soap_type(t: &str) -> &'static str {
    match t {
        "id" | "reference" => "tns:ID",
        "boolean" => "xsd:boolean",
        "int" => "xsd:int",
        "long" => "xsd:long",
        "double" | "currency" | "percent" => "xsd:double",
        "date" => "xsd:date",
        "datetime" => "xsd:dateTime",
        "time" => "xsd:time",
        "base64" => "xsd:base64Binary",
        "address" => "urn:address",
        "location" => "urn:location",
        "anyType" => "xsd:anyType",
        _ => "xsd:string",
    }
}

fn field_describe(f: &FieldDef) -> serde_json::Value {
    let text = matches!(
        f.ftype,
        "string"
            | "textarea"
            | "picklist"
            | "multipicklist"
            | "email"
            | "phone"
            | "url"
            | "combobox"
            | "encryptedstring"
    );
    let compound = matches!(f.ftype, "address" | "location");
    serde_json::json!({
        "aggregatable": !compound && f.ftype != "textarea", "aiPredictionField": false, "autoNumber": f.name == "CaseNumber",
        "byteLength": if text || matches!(f.ftype, "id" | "reference") { if f.ftype == "id" || f.ftype == "reference" { 18 } else { f.length * 3 } } else { 0 },
        "calculated": f.calculated, "calculatedFormula": if f.calculated { serde_json::json!("/* formula */ 0") } else { serde_json::Value::Null },
        "cascadeDelete": false, "caseSensitive": false, "compoundFieldName": f.compound,
        "controllerName": null, "createable": !f.calculated && !compound && f.ftype != "id", "custom": f.custom,
        "defaultValue": null, "defaultValueFormula": null, "defaultedOnCreate": f.ftype == "boolean",
        "dependentPicklist": false, "deprecatedAndHidden": false,
        "digits": if f.ftype == "int" { f.precision } else { 0 },
        "displayLocationInDecimal": false, "encrypted": false, "externalId": false,
        "extraTypeInfo": if f.ftype == "textarea" { serde_json::json!("plaintextarea") } else { serde_json::Value::Null },
        "filterable": !compound && f.ftype != "textarea", "filteredLookupInfo": null, "formulaTreatNullNumberAsZero": false,
        "groupable": matches!(f.ftype, "string" | "picklist" | "id" | "reference" | "boolean" | "date"),
        "highScaleNumber": false, "htmlFormatted": false, "idLookup": f.ftype == "id", "inlineHelpText": null,
        "label": f.label, "length": if compound { 0 } else { f.length }, "mask": null, "maskType": null,
        "name": f.name, "nameField": f.name == "Name", "namePointing": f.reference_to.len() > 1, "nillable": f.nillable,
        "permissionable": f.custom, "picklistValues": f.picklist.iter().map(|v| serde_json::json!({"active": true, "defaultValue": false, "label": v, "validFor": null, "value": v})).collect::<Vec<_>>(),
        "polymorphicForeignKey": f.reference_to.len() > 1,
        "precision": if matches!(f.ftype, "currency" | "double" | "percent") { f.precision } else { 0 },
        "queryByDistance": false, "referenceTargetField": null, "referenceTo": f.reference_to,
        "relationshipName": f.relationship_name(),
        "relationshipOrder": null, "restrictedDelete": false, "restrictedPicklist": false,
        "scale": if matches!(f.ftype, "currency" | "double" | "percent") { f.scale } else { 0 },
        "searchPrefilterable": false, "soapType": soap_type(f.ftype), "sortable": !compound && f.ftype != "textarea",
        "type": f.ftype, "unique": false, "updateable": !f.calculated && !compound && f.ftype != "id" && !f.name.starts_with("Created") && !f.name.starts_with("LastModified") && f.name != "SystemModstamp",
        "writeRequiresMasterRead": false,
    })
}

fn object_describe(def: &ObjectDef, version: &str) -> serde_json::Value {
    let n = &def.name;
    let u = |s: &str| format!("/services/data/v{version}/sobjects/{n}/{s}");
    serde_json::json!({
        "actionOverrides": [], "activateable": false, "associateEntityType": null, "associateParentEntity": null,
        "childRelationships": [], "compactLayoutable": true, "createable": true, "custom": def.custom, "customSetting": false,
        "dataTranslationEnabled": false, "deepCloneable": false, "defaultImplementation": null, "deletable": true,
        "deprecatedAndHidden": false, "extendedBy": null, "extendsInterfaces": null, "feedEnabled": !def.custom,
        "fields": def.fields.iter().map(field_describe).collect::<Vec<_>>(),
        "hasSubtypes": false, "implementedBy": null, "implementsInterfaces": null, "isInterface": false, "isSubtype": false,
        "keyPrefix": def.key_prefix, "label": def.label, "labelPlural": format!("{}s", def.label), "layoutable": true,
        "listviewable": null, "lookupLayoutable": null, "mergeable": n == "Account", "mruEnabled": true, "name": n,
        "namedLayoutInfos": [], "networkScopeFieldName": null, "queryable": true,
        "recordTypeInfos": [{"active": true, "available": true, "defaultRecordTypeMapping": true, "developerName": "Master", "master": true, "name": "Master", "recordTypeId": "012000000000000AAA", "urls": {"layout": u("describe/layouts/012000000000000AAA")}}],
        "replicateable": true, "retrieveable": true, "searchLayoutable": true, "searchable": true, "sobjectDescribeOption": "FULL",
        "supportedScopes": [{"label": "All", "name": "everything"}, {"label": "My", "name": "mine"}],
        "triggerable": true, "undeletable": true, "updateable": true,
        "urls": {
            "compactLayouts": u("describe/compactLayouts"), "rowTemplate": u("{ID}"), "approvalLayouts": u("describe/approvalLayouts"),
            "defaultValues": u("defaultValues?recordTypeId&fields"), "listviews": u("listviews"), "describe": u("describe"),
            "quickActions": u("quickActions"), "layouts": u("describe/layouts"), "sobject": format!("/services/data/v{version}/sobjects/{n}"),
        },
    })
}

/// Parses `Account=1000,Contact=500` (or a bare number for every object).
pub fn parse_rows(spec: &str) -> Result<(Option<usize>, HashMap<String, usize>), String> {
    let (default, pairs) = object_counts("--rows", spec)?;
    Ok((default, pairs.into_iter().collect()))
}

/// `OBJECT=N` pairs of a comma-separated flag value, and a bare `N` if one is given.
fn object_counts<N: std::str::FromStr>(
    flag: &str,
    spec: &str,
) -> Result<(Option<N>, Vec<(String, N)>), String> {
    let mut pairs = Vec::new();
    let mut default = None;
    for part in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match part.split_once('=') {
            Some((k, v)) => pairs.push((
                k.trim().to_string(),
                v.trim()
                    .parse()
                    .map_err(|_| format!("{flag} {part}: not a number"))?,
            )),
            None => {
                default = Some(
                    part.parse()
                        .map_err(|_| format!("{flag} {part}: expected OBJECT=N or N"))?,
                )
            }
        }
    }
    Ok((default, pairs))
}

/// Parses `--synthetic Account=10000000,...`: known objects, and at most one record per
/// millisecond of the `days` window (so cursor values stay distinct).
pub fn parse_synthetic(spec: &str, days: i64) -> Result<HashMap<String, u64>, String> {
    let (default, pairs) = object_counts::<u64>("--synthetic", spec)?;
    if default.is_some() {
        return Err(format!(
            "--synthetic {spec}: name the object, e.g. Account=10000000"
        ));
    }
    let names: Vec<String> = data::object_defs().into_iter().map(|d| d.name).collect();
    let max = (days.max(1) as u64 * 86_400_000).min(u32::MAX as u64);
    let mut map = HashMap::new();
    for (k, n) in pairs {
        let name = names
            .iter()
            .find(|n| n.eq_ignore_ascii_case(&k))
            .ok_or_else(|| {
                format!(
                    "--synthetic {k}: unknown object (one of {})",
                    names.join(", ")
                )
            })?;
        if n > max {
            return Err(format!(
                "--synthetic {k}={n}: at most {max} records over {days} days"
            ));
        }
        map.insert(name.clone(), n);
    }
    Ok(map)
}

/// Renders one REST query page exactly as the emulator serves it (for benchmarks and tests).
pub fn render_page(
    table: &data::Table,
    rows: &[u32],
    fields: &[usize],
    total_size: usize,
    next_records_url: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 800 + 200);
    out.extend_from_slice(
        format!(
            "{{\"totalSize\":{total_size},\"done\":{}",
            next_records_url.is_none()
        )
        .as_bytes(),
    );
    if let Some(u) = next_records_url {
        out.extend_from_slice(b",\"nextRecordsUrl\":");
        push_json_str(&mut out, u);
    }
    out.extend_from_slice(b",\"records\":[");
    for (k, &ri) in rows.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        render_record(
            &mut out,
            &table.def,
            &table.row(ri as usize),
            fields,
            "62.0",
            None,
            None,
            None,
        );
    }
    out.extend_from_slice(b"]}");
    out
}

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
