//! The Salesforce REST client: OAuth 2.0 client credentials against My Domain, describe,
//! query/queryAll with `nextRecordsUrl` paging, a process-wide rate limiter, retries with
//! backoff, token renewal on `INVALID_SESSION_ID`, and the `Sforce-Limit-Info` usage.

pub mod bulk;
pub mod deleted;
pub mod describe;
pub mod ident;
pub mod ids;
pub mod soql;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;

use crate::config::{SalesforceConfig, Secret, SyncConfig};
use describe::{GlobalDescribe, ObjectDescribe};

/// What went wrong talking to Salesforce.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SfError {
    /// The token request failed: the message says what to fix. Exit code 2.
    #[error("authentication failed: {fix} (Salesforce said {error}: {description})")]
    Auth {
        error: String,
        description: String,
        fix: String,
    },
    /// A REST error body `[{"errorCode", "message"}]`.
    #[error("Salesforce answered {status} {code} for {what}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
        what: String,
    },
    /// The daily API allowance is used up (`REQUEST_LIMIT_EXCEEDED`, `TotalRequests`).
    #[error("the org's daily API request limit is exhausted ({message}); the run stops here and the next run resumes")]
    DailyLimit { message: String },
    /// Connection, timeout or body errors.
    #[error("HTTP request for {what} failed: {message}")]
    Transport {
        what: String,
        message: String,
        retryable: bool,
    },
    /// A body that is not what the API documents.
    #[error("unexpected response for {what}: {message}")]
    Protocol { what: String, message: String },
    /// The server's TLS certificate is not trusted (or not for this host). Exit code 2.
    #[error("the TLS certificate of {host} is not trusted ({message}): if a corporate proxy or a private CA issues it, set salesforce.ca_file to the PEM file of the issuing CA; certificate checks are never switched off")]
    Certificate { host: String, message: String },
}

impl SfError {
    /// Errors worth another attempt: 5xx, 406/420/429, concurrency throttling, transport errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            SfError::Api { status, code, .. } => {
                *status >= 500
                    || matches!(*status, 406 | 420 | 429)
                    || (code == "REQUEST_LIMIT_EXCEEDED")
                    || code == "SERVER_UNAVAILABLE"
            }
            SfError::Transport { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// Errors that mean configuration or credentials are wrong (exit 2).
    pub fn is_user_error(&self) -> bool {
        match self {
            SfError::Auth { .. } | SfError::Certificate { .. } => true,
            SfError::Api { code, .. } => matches!(
                code.as_str(),
                "INVALID_TYPE"
                    | "INVALID_FIELD"
                    | "NOT_FOUND"
                    | "INVALID_SESSION_ID"
                    | "INVALID_AUTH_HEADER"
            ),
            _ => false,
        }
    }
}

/// The fix a user needs for each token error (SPEC §6).
pub fn auth_fix(error: &str, description: &str) -> String {
    let d = description.to_ascii_lowercase();
    if error == "invalid_client_id" || error == "invalid_client" {
        "the Consumer Key or Secret is wrong: re-copy both (Settings > OAuth Settings > Consumer Key and Secret)".into()
    } else if d.contains("no client credentials user enabled") {
        "no Run-As user is set: set it in the app's Policies tab (Client Credentials Flow > Run As), select the user from the lookup".into()
    } else if d.contains("no valid scopes") {
        "the app has no OAuth scopes: add the `api` scope to the External Client App".into()
    } else if d.contains("not supported on this domain") {
        "use the My Domain URL (Setup > My Domain), e.g. https://acme.my.salesforce.com, as salesforce.instance_url".into()
    } else if error == "unsupported_grant_type" {
        "the Client Credentials flow is not enabled: tick \"Enable Client Credentials Flow\" in the app's OAuth settings".into()
    } else if error == "inactive_user" || error == "inactive_org" {
        "the Run-As user or the org is inactive: pick an active Run-As user".into()
    } else {
        "check the External Client App's OAuth settings".into()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    instance_url: Option<String>,
    /// The identity URL, `https://login.salesforce.com/id/<org id>/<user id>`.
    #[serde(default)]
    id: Option<String>,
}

/// The org id in a token response's identity URL (`…/id/<org id>/<user id>`).
pub fn org_id_of(identity_url: &str) -> Option<String> {
    let mut parts = identity_url.trim_end_matches('/').rsplit('/');
    let _user = parts.next()?;
    let org = parts.next()?;
    (parts.next()? == "id" && (org.len() == 15 || org.len() == 18) && org.starts_with("00D"))
        .then(|| org.to_string())
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

#[derive(Deserialize)]
struct RestError {
    #[serde(rename = "errorCode", default)]
    error_code: String,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CountResponse {
    total_size: u64,
}

/// Shared, process-wide request limiter: at most `limit` requests in any `interval` (a
/// sliding window over the send times of the last `limit` requests). When the limit is hit,
/// a request waits until the oldest of them is `interval` old.
pub struct RateLimiter {
    limit: usize,
    interval: Duration,
    sent: Mutex<std::collections::VecDeque<Instant>>,
}

impl RateLimiter {
    pub fn new(limit: u32, interval: Duration) -> Self {
        Self {
            limit: limit.max(1) as usize,
            interval,
            sent: Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// Waits until a request may be sent, and records it.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut q = self.sent.lock().await;
                let now = Instant::now();
                while q.len() >= self.limit {
                    match q.front() {
                        Some(t) if now.duration_since(*t) >= self.interval => {
                            q.pop_front();
                        }
                        _ => break,
                    }
                }
                if q.len() < self.limit {
                    q.push_back(now);
                    return;
                }
                self.interval
                    .saturating_sub(now.duration_since(*q.front().expect("full queue")))
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }
}

/// The org's API usage from the last `Sforce-Limit-Info` header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ApiUsage {
    pub used: u64,
    pub max: u64,
}

/// The whole body in one buffer sized from Content-Length when known (no collect-then-copy,
/// so a page costs its own size once).
async fn read_body(mut resp: reqwest::Response) -> Result<Bytes, reqwest::Error> {
    let hint = resp.content_length().unwrap_or(0).min(64 << 20) as usize;
    let mut buf = bytes::BytesMut::with_capacity(hint);
    while let Some(c) = resp.chunk().await? {
        buf.extend_from_slice(&c);
    }
    Ok(buf.freeze())
}

/// Parses `api-usage=18/15000`.
pub fn parse_limit_info(h: &str) -> Option<ApiUsage> {
    for part in h.split(',') {
        if let Some(v) = part.trim().strip_prefix("api-usage=") {
            let (a, b) = v.split_once('/')?;
            return Some(ApiUsage {
                used: a.trim().parse().ok()?,
                max: b.trim().parse().ok()?,
            });
        }
    }
    None
}

/// A Salesforce REST client, cheap to share behind an `Arc`.
pub struct Client {
    http: reqwest::Client,
    base: url::Url,
    api_version: String,
    client_id: String,
    secret: Secret,
    token: RwLock<Option<Arc<Secret>>>,
    limiter: RateLimiter,
    usage_used: AtomicU64,
    usage_max: AtomicU64,
    requests: AtomicU64,
    retry: ExponentialBuilder,
    /// The org id of the last token (its identity URL).
    org_id: std::sync::RwLock<Option<String>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("api_version", &self.api_version)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds the HTTP client (rustls, system roots plus `ca_file`, gzip, keep-alive).
    pub fn new(sf: &SalesforceConfig, sync: &SyncConfig) -> Result<Self, SfError> {
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_secs(sync.request_timeout_s))
            .connect_timeout(Duration::from_secs(sync.request_timeout_s.min(30)))
            .pool_idle_timeout(Duration::from_secs(90))
            .gzip(sf.gzip)
            .user_agent(concat!("forcelake/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &sf.ca_file {
            let pem = std::fs::read(ca).map_err(|e| SfError::Protocol {
                what: format!("salesforce.ca_file {}", ca.display()),
                message: e.to_string(),
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| SfError::Protocol {
                    what: format!("salesforce.ca_file {}", ca.display()),
                    message: e.to_string(),
                })?;
            b = b.tls_certs_merge(certs);
        }
        let http = b.build().map_err(|e| SfError::Transport {
            what: "client setup".into(),
            message: e.to_string(),
            retryable: false,
        })?;
        Ok(Self {
            http,
            base: sf.instance_url.clone(),
            api_version: sf.api_version.clone(),
            client_id: sf.client_id.clone(),
            secret: sf.client_secret.clone(),
            token: RwLock::new(None),
            limiter: RateLimiter::new(
                sync.rate_limit,
                Duration::from_millis(sync.rate_limit_timeout_ms),
            ),
            usage_used: AtomicU64::new(0),
            usage_max: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            retry: ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(100))
                .with_max_delay(Duration::from_secs(8))
                .with_max_times(6)
                .with_jitter(),
            org_id: std::sync::RwLock::new(None),
        })
    }

    /// The org id the token response named (after the first token).
    pub fn org_id(&self) -> Option<String> {
        self.org_id.read().ok()?.clone()
    }

    /// The org's API usage as last reported.
    pub fn api_usage(&self) -> Option<ApiUsage> {
        let max = self.usage_max.load(Ordering::Relaxed);
        (max > 0).then(|| ApiUsage {
            used: self.usage_used.load(Ordering::Relaxed),
            max,
        })
    }

    /// HTTP requests sent so far by this client (token requests included).
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub(crate) fn data_path(&self, rest: &str) -> String {
        format!("/services/data/v{}/{}", self.api_version, rest)
    }

    /// Requests a new access token with the client credentials flow; a refused or reset
    /// connection, a timeout or a 5xx is retried with the same backoff as every other request.
    pub async fn authenticate(&self) -> Result<(), SfError> {
        (|| self.authenticate_once())
            .retry(self.retry)
            .when(|e: &SfError| e.is_retryable())
            .notify(|e, d| {
                tracing::warn!(error = %e, retry_in_ms = d.as_millis() as u64, "token request failed; retrying")
            })
            .await
    }

    async fn authenticate_once(&self) -> Result<(), SfError> {
        let url = self
            .base
            .join("/services/oauth2/token")
            .map_err(|e| SfError::Protocol {
                what: "token URL".into(),
                message: e.to_string(),
            })?;
        self.limiter.acquire().await;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.secret.expose()),
        ];
        let resp = self
            .http
            .post(url)
            .form(&form)
            .send()
            .await
            .map_err(|e| self.transport("the token request", &e))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| transport("the token request", &e))?;
        if status.is_success() {
            let t: TokenResponse =
                serde_json::from_slice(&body).map_err(|e| SfError::Protocol {
                    what: "the token response".into(),
                    message: e.to_string(),
                })?;
            if let Some(iu) = &t.instance_url {
                tracing::debug!(instance_url = %iu, "token issued");
            }
            if let Some(org) = t.id.as_deref().and_then(org_id_of) {
                if let Ok(mut o) = self.org_id.write() {
                    *o = Some(org);
                }
            }
            *self.token.write().await = Some(Arc::new(Secret::new(t.access_token)));
            return Ok(());
        }
        match serde_json::from_slice::<OAuthError>(&body) {
            Ok(e) => Err(SfError::Auth {
                fix: auth_fix(&e.error, &e.error_description),
                error: e.error,
                description: e.error_description,
            }),
            Err(_) => Err(SfError::Api {
                status: status.as_u16(),
                code: "HTTP".into(),
                message: snippet(&body),
                what: "the token request".into(),
            }),
        }
    }

    async fn current_token(&self) -> Result<Arc<Secret>, SfError> {
        if let Some(t) = self.token.read().await.clone() {
            return Ok(t);
        }
        self.authenticate().await?;
        self.token
            .read()
            .await
            .clone()
            .ok_or_else(|| SfError::Protocol {
                what: "token".into(),
                message: "no token after authentication".into(),
            })
    }

    /// One GET with the bearer token; a 401 renews the token once and replays the request.
    /// One request with the session token (renewed once on a 401), the rate limiter and the
    /// `Sforce-Limit-Info` usage; a success is returned unread (bodies may be streamed), an
    /// error answer becomes an [`SfError`].
    pub(crate) async fn send_once(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        what: &str,
        json: Option<&serde_json::Value>,
        batch_size: Option<u32>,
    ) -> Result<reqwest::Response, SfError> {
        let url = self
            .base
            .join(path_and_query)
            .map_err(|e| SfError::Protocol {
                what: what.into(),
                message: e.to_string(),
            })?;
        let mut renewed = false;
        loop {
            let token = self.current_token().await?;
            self.limiter.acquire().await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token.expose());
            if let Some(n) = batch_size {
                req = req.header("Sforce-Query-Options", format!("batchSize={n}"));
            }
            if let Some(body) = json {
                req = req.json(body);
            }
            let sent = std::time::Instant::now();
            let resp = req.send().await.map_err(|e| self.transport(what, &e))?;
            let status = resp.status();
            tracing::trace!(what, %method, status = status.as_u16(), ms = sent.elapsed().as_millis() as u64, "answer");
            if let Some(u) = resp
                .headers()
                .get("sforce-limit-info")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_limit_info)
            {
                self.usage_used.store(u.used, Ordering::Relaxed);
                self.usage_max.store(u.max, Ordering::Relaxed);
            }
            if status.is_success() {
                return Ok(resp);
            }
            let body = read_body(resp).await.map_err(|e| transport(what, &e))?;
            let (code, message) = match serde_json::from_slice::<Vec<RestError>>(&body) {
                Ok(v) if !v.is_empty() => (v[0].error_code.clone(), v[0].message.clone()),
                _ => (format!("HTTP_{}", status.as_u16()), snippet(&body)),
            };
            if status.as_u16() == 401 && !renewed {
                tracing::info!(
                    what,
                    "access token expired or invalid; renewing it and replaying the request"
                );
                *self.token.write().await = None;
                self.authenticate().await?;
                renewed = true;
                continue;
            }
            if status.as_u16() == 401 {
                return Err(SfError::Auth {
                    error: code,
                    description: message,
                    fix: "the session is still invalid after a token renewal: the Run-As user lost API access or the app was revoked".into(),
                });
            }
            if status.as_u16() == 403
                && code == "REQUEST_LIMIT_EXCEEDED"
                && message.contains("TotalRequests")
            {
                return Err(SfError::DailyLimit { message });
            }
            return Err(SfError::Api {
                status: status.as_u16(),
                code,
                message,
                what: what.to_string(),
            });
        }
    }

    async fn get_once(
        &self,
        path_and_query: &str,
        what: &str,
        batch_size: Option<u32>,
    ) -> Result<Bytes, SfError> {
        let resp = self
            .send_once(reqwest::Method::GET, path_and_query, what, None, batch_size)
            .await?;
        read_body(resp).await.map_err(|e| transport(what, &e))
    }

    pub async fn get(
        &self,
        path_and_query: &str,
        what: &str,
        batch_size: Option<u32>,
    ) -> Result<Bytes, SfError> {
        self.retried(|| self.get_once(path_and_query, what, batch_size))
            .await
    }

    /// `request` again, with backoff, while it fails with a retryable error.
    pub(crate) async fn retried<T, F, Fut>(&self, request: F) -> Result<T, SfError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, SfError>>,
    {
        request
            .retry(self.retry)
            .when(|e: &SfError| e.is_retryable())
            .notify(
                |e, d| tracing::warn!(error = %e, retry_in_ms = d.as_millis() as u64, "retrying"),
            )
            .await
    }

    /// Global describe.
    pub async fn describe_global(&self) -> Result<GlobalDescribe, SfError> {
        let body = self
            .get(&self.data_path("sobjects"), "global describe", None)
            .await?;
        serde_json::from_slice(&body).map_err(|e| SfError::Protocol {
            what: "global describe".into(),
            message: e.to_string(),
        })
    }

    /// Describe of one object; an unknown object is `NOT_FOUND`.
    pub async fn describe(&self, object: &str) -> Result<ObjectDescribe, SfError> {
        let what = format!("describe of {object}");
        let body = self
            .get(
                &self.data_path(&format!("sobjects/{object}/describe")),
                &what,
                None,
            )
            .await?;
        serde_json::from_slice(&body).map_err(|e| SfError::Protocol {
            what,
            message: e.to_string(),
        })
    }

    /// Length of the request URI of a query (Salesforce caps URI plus headers at 16,384 bytes).
    pub fn query_uri_len(&self, soql: &str, all: bool) -> usize {
        let encoded: usize = url::form_urlencoded::byte_serialize(soql.as_bytes())
            .map(str::len)
            .sum();
        self.data_path(if all { "queryAll?q=" } else { "query?q=" })
            .len()
            + encoded
    }

    /// First page of a query: `query` or `queryAll`.
    pub async fn query_first(&self, soql: &str, all: bool, what: &str) -> Result<Bytes, SfError> {
        let encoded: String = url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();
        let path = self.data_path(&format!(
            "{}?q={}",
            if all { "queryAll" } else { "query" },
            encoded
        ));
        self.get(&path, what, Some(2000)).await
    }

    /// A following page from `nextRecordsUrl`.
    pub async fn query_next(&self, next_records_url: &str, what: &str) -> Result<Bytes, SfError> {
        if !next_records_url.starts_with("/services/data/") {
            return Err(SfError::Protocol {
                what: what.into(),
                message: format!(
                    "nextRecordsUrl {next_records_url:?} is not a /services/data path"
                ),
            });
        }
        self.get(next_records_url, what, Some(2000)).await
    }

    /// `SELECT COUNT() ...` → totalSize.
    pub async fn count(&self, soql: &str, all: bool, what: &str) -> Result<u64, SfError> {
        let body = self.query_first(soql, all, what).await?;
        let c: CountResponse = serde_json::from_slice(&body).map_err(|e| SfError::Protocol {
            what: what.into(),
            message: e.to_string(),
        })?;
        Ok(c.total_size)
    }

    /// `GET /limits` (also a cheap "does the API answer" call).
    pub async fn limits(&self) -> Result<serde_json::Value, SfError> {
        let body = self.get(&self.data_path("limits"), "limits", None).await?;
        serde_json::from_slice(&body).map_err(|e| SfError::Protocol {
            what: "limits".into(),
            message: e.to_string(),
        })
    }
}

impl Client {
    /// A transport error; an untrusted certificate is told apart (not retried, exit 2).
    fn transport(&self, what: &str, e: &reqwest::Error) -> SfError {
        let err = transport(what, e);
        match err {
            SfError::Transport { message, .. } if is_certificate_problem(&message) => {
                SfError::Certificate {
                    host: self.base.host_str().unwrap_or("the server").to_string(),
                    message: message
                        .rsplit(": ")
                        .find(|m| m.contains("certificate") || m.contains("Issuer"))
                        .unwrap_or(&message)
                        .to_string(),
                }
            }
            other => other,
        }
    }
}

/// rustls' certificate verification failures (`invalid peer certificate: UnknownIssuer`, …).
fn is_certificate_problem(message: &str) -> bool {
    message.contains("invalid peer certificate")
        || message.contains("UnknownIssuer")
        || message.contains("certificate verify failed")
}

/// A transport error, described without the request URL.
pub(crate) fn transport(what: &str, e: &reqwest::Error) -> SfError {
    let mut message = String::from(if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the response body was cut or malformed"
    } else {
        "request error"
    });
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        src = inner.source();
    }
    SfError::Transport {
        what: what.to_string(),
        message,
        retryable: true,
    }
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    if s.len() > 300 {
        format!(
            "{}…",
            &s[..s
                .char_indices()
                .take_while(|(i, _)| *i < 300)
                .last()
                .map(|(i, c)| i + c.len_utf8())
                .unwrap_or(0)]
        )
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod org_tests {
    #[test]
    fn the_org_id_is_read_from_the_identity_url() {
        assert_eq!(
            super::org_id_of(
                "https://login.salesforce.com/id/00D5g000004EMULEAA/0055g00000EMULAAA"
            )
            .as_deref(),
            Some("00D5g000004EMULEAA")
        );
        assert_eq!(super::org_id_of("https://x/id/nope/005"), None);
        assert_eq!(super::org_id_of(""), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_info_parses() {
        assert_eq!(
            parse_limit_info("api-usage=18/15000"),
            Some(ApiUsage {
                used: 18,
                max: 15000
            })
        );
        assert_eq!(
            parse_limit_info("per-app-api-usage=1/2, api-usage=5/10"),
            Some(ApiUsage { used: 5, max: 10 })
        );
        assert_eq!(parse_limit_info("nonsense"), None);
    }

    #[test]
    fn auth_fixes_match_the_spec() {
        assert!(auth_fix("invalid_client", "invalid client credentials")
            .contains("Consumer Key or Secret"));
        assert!(auth_fix("invalid_grant", "no client credentials user enabled").contains("Run-As"));
        assert!(auth_fix("invalid_grant", "no valid scopes defined").contains("`api` scope"));
        assert!(
            auth_fix("invalid_grant", "request not supported on this domain").contains("My Domain")
        );
    }

    /// 8 concurrent tasks never send more than `limit` requests in any window of `interval`
    /// (measured; 10 ms of tolerance for the time between acquiring and recording).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rate_limiter_never_exceeds_the_limit_in_any_interval() {
        let l = std::sync::Arc::new(RateLimiter::new(5, Duration::from_millis(200)));
        let times = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (l, times) = (l.clone(), times.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..5 {
                    l.acquire().await;
                    times
                        .lock()
                        .unwrap()
                        .push(Instant::now().duration_since(start));
                    tokio::time::sleep(Duration::from_millis(7)).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut v = times.lock().unwrap().clone();
        v.sort();
        assert_eq!(v.len(), 40);
        for (i, t) in v.iter().enumerate() {
            let in_window = v[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_millis(190))
                .count();
            assert!(
                in_window <= 5,
                "{in_window} requests within 200 ms starting at {t:?}"
            );
        }
        // and it is not much slower than it must be: 40 requests at 5 per 200 ms take about 1.4 s
        assert!(
            *v.last().unwrap() >= Duration::from_millis(1_390),
            "{:?}",
            v.last()
        );
        assert!(
            *v.last().unwrap() < Duration::from_millis(3_000),
            "{:?}",
            v.last()
        );
    }
}
