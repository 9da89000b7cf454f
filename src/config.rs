//! The pipeline file (`forcelake.toml`): raw serde types with `deny_unknown_fields`,
//! command-line overrides (`--set key=value`), and validation into a typed [`Config`].
//!
//! Precedence is file < environment (`FORCELAKE_CLIENT_SECRET`) < command line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use url::Url;

use crate::salesforce::ident;
use crate::timefmt::DateOrTime;

/// The most records a query window is planned to hold (`sync.window_records`'s default): a
/// window's last partial page (at most one request) is then a small overhead, and a window is
/// redone within minutes if it fails.
pub const WINDOW_TARGET: u64 = 50_000;

/// The default REST API version.
pub const DEFAULT_API_VERSION: &str = "62.0";
/// Environment variable that holds the client secret.
pub const SECRET_ENV: &str = "FORCELAKE_CLIENT_SECRET";

/// Everything that can be wrong with a configuration. Messages name the key, the value and the rule.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}. Pass --config PATH, or run `forcelake demo` to try forcelake without one")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("`{key}` = {value}: {rule}")]
    Invalid {
        key: String,
        value: String,
        rule: String,
    },
    #[error("`{key}` is required: {hint}")]
    Missing { key: String, hint: String },
    #[error("--set {0}: expected KEY=VALUE, e.g. --set sync.concurrency=8")]
    BadOverride(String),
    /// A value of the wrong type (or an unknown key), with where it came from.
    #[error("`{key}` ({origin}): {message}")]
    Type {
        key: String,
        origin: String,
        message: String,
    },
}

fn invalid(key: &str, value: impl fmt::Display, rule: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        rule: rule.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Raw file shape

/// The file as written by the user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub salesforce: RawSalesforce,
    #[serde(default)]
    pub objects: Vec<RawObject>,
    pub sync: RawSync,
    pub destination: RawDestination,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSalesforce {
    pub instance_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub api_version: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub gzip: Option<bool>,
}

impl fmt::Debug for RawSalesforce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawSalesforce")
            .field("instance_url", &self.instance_url)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("api_version", &self.api_version)
            .field("ca_file", &self.ca_file)
            .field("gzip", &self.gzip)
            .finish()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawObject {
    pub name: String,
    pub fields: Option<Vec<String>>,
    pub cursor_field: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSync {
    pub mode: Option<String>,
    pub cursor_field: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub query_limit: Option<i64>,
    pub api_budget_percent: Option<i64>,
    pub lag_s: Option<i64>,
    pub rate_limit: Option<i64>,
    pub rate_limit_timeout_ms: Option<i64>,
    pub request_timeout_s: Option<i64>,
    pub include_deleted: Option<bool>,
    pub concurrency: Option<i64>,
    pub memory_limit_mb: Option<i64>,
    pub window_records: Option<i64>,
    pub api: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDestination {
    pub url: Option<String>,
    pub compression: Option<String>,
    pub table_format: Option<String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

impl fmt::Debug for RawDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawDestination")
            .field("url", &self.url)
            .field("compression", &self.compression)
            .field("table_format", &self.table_format)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Typed configuration

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret's text, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Historical,
    Incremental,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Historical => "historical",
            Mode::Incremental => "incremental",
        }
    }
}

/// What the object folders are besides Parquet files and manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// Each object folder is also a Delta Lake table (the default).
    Delta,
    /// Parquet and manifests only.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Zstd,
    Snappy,
    None,
}

#[derive(Debug, Clone)]
pub struct SalesforceConfig {
    pub instance_url: Url,
    pub client_id: String,
    pub client_secret: Secret,
    pub api_version: String,
    pub ca_file: Option<PathBuf>,
    /// Ask for gzip-compressed responses (`Accept-Encoding: gzip`).
    pub gzip: bool,
}

#[derive(Debug, Clone)]
pub struct ObjectConfig {
    pub name: String,
    /// `None`: the object's standard fields.
    pub fields: Option<Vec<String>>,
    pub cursor_field: String,
}

#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub mode: Mode,
    pub cursor_field: String,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub query_limit: u32,
    pub api_budget_percent: u32,
    pub lag_s: u64,
    pub rate_limit: u32,
    pub rate_limit_timeout_ms: u64,
    pub request_timeout_s: u64,
    pub include_deleted: bool,
    pub concurrency: usize,
    /// Budget for the data a run holds (pages in flight, batches, row groups being built).
    pub memory_limit_mb: usize,
    /// The most records a query window is planned to hold.
    pub window_records: u64,
    /// Which Salesforce API fetches a window's records.
    pub api: Api,
}

/// `sync.api`: which Salesforce API fetches a window's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// Bulk API 2.0 for windows of at least `crate::plan::windows::BULK_MIN_RECORDS`, REST below.
    Auto,
    Rest,
    Bulk,
}

#[derive(Clone)]
pub struct DestinationConfig {
    pub url: String,
    pub compression: Compression,
    pub table_format: TableFormat,
    pub options: BTreeMap<String, String>,
}

impl fmt::Debug for DestinationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options: BTreeMap<&str, &str> = self
            .options
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    if crate::sink::store::is_secret_option(k) {
                        "<redacted>"
                    } else {
                        v.as_str()
                    },
                )
            })
            .collect();
        f.debug_struct("DestinationConfig")
            .field("url", &self.url)
            .field("compression", &self.compression)
            .field("table_format", &self.table_format)
            .field("options", &options)
            .finish()
    }
}

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct Config {
    pub salesforce: SalesforceConfig,
    pub objects: Vec<ObjectConfig>,
    pub sync: SyncConfig,
    pub destination: DestinationConfig,
}

impl Config {
    /// Reads `path`, applies `--set` overrides and the environment, and validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let secret_env = std::env::var(SECRET_ENV).ok().filter(|s| !s.is_empty());
        Self::from_toml_str(&text, &path.display().to_string(), overrides, secret_env)
    }

    /// Parses and validates configuration text (pure: the environment is passed in).
    ///
    /// Precedence: file < environment (`FORCELAKE_CLIENT_SECRET`) < `--set`.
    pub fn from_toml_str(
        text: &str,
        origin: &str,
        overrides: &[String],
        secret_env: Option<String>,
    ) -> Result<Self, ConfigError> {
        let file: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        let mut value = file.clone();
        let mut set: Vec<(String, String)> = Vec::new();
        for o in overrides {
            set.push(apply_override(&mut value, o)?);
        }
        let raw = typed(value, &set, |key| {
            // A key wrong in the file alone: name its line.
            match serde_path_to_error::deserialize::<_, RawConfig>(toml::Value::Table(file.clone()))
            {
                Err(e) if e.path().to_string() == key => file_line(text)
                    .map(|n| format!("{origin} line {n}"))
                    .unwrap_or_else(|| origin.to_string()),
                _ => origin.to_string(),
            }
        })?;
        let secret_set = set.iter().any(|(k, _)| k == SECRET_KEY);
        raw.validate(secret_env, secret_set)
    }
}

const SECRET_KEY: &str = "salesforce.client_secret";

/// Deserializes the merged table; a `--set` value read as TOML that does not fit its key's type
/// is taken again as a string (`--set salesforce.api_version=61.0`). Errors name the key and
/// where its value came from (`--set`, or what `file_origin` says for the key).
fn typed(
    mut value: toml::Table,
    set: &[(String, String)],
    file_origin: impl Fn(&str) -> String,
) -> Result<RawConfig, ConfigError> {
    let mut retried: Vec<String> = Vec::new();
    loop {
        match serde_path_to_error::deserialize::<_, RawConfig>(toml::Value::Table(value.clone())) {
            Ok(raw) => return Ok(raw),
            Err(e) => {
                let key = e.path().to_string();
                let message = if key == SECRET_KEY {
                    "must be a string (value not shown)".to_string()
                } else {
                    e.inner().message().trim().to_string()
                };
                let from_set = set.iter().rev().find(|(k, _)| *k == key);
                match from_set {
                    Some((k, raw)) if !retried.contains(k) => {
                        retried.push(k.clone());
                        insert(&mut value, k, toml::Value::String(raw.clone()));
                    }
                    Some(_) => {
                        return Err(ConfigError::Type {
                            key,
                            origin: "from --set".into(),
                            message,
                        })
                    }
                    None => {
                        return Err(ConfigError::Type {
                            origin: file_origin(&key),
                            key,
                            message,
                        })
                    }
                }
            }
        }
    }
}

/// The line (1-based) of the first value in `text` that does not fit the configuration's types.
fn file_line(text: &str) -> Option<usize> {
    let e = toml::from_str::<RawConfig>(text).err()?;
    let span = e.span()?;
    Some(text.get(..span.start)?.matches('\n').count() + 1)
}

fn insert(table: &mut toml::Table, key: &str, value: toml::Value) {
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = table;
    for p in &parts[..parts.len() - 1] {
        match cur.get_mut(*p).and_then(|v| v.as_table_mut()) {
            Some(t) => cur = t,
            None => return,
        }
    }
    cur.insert(parts[parts.len() - 1].to_string(), value);
}

/// Applies `a.b.c=value` to a TOML table. The value is parsed as TOML (number, bool, array,
/// quoted string) and taken as a plain string otherwise. Returns the key and the raw value.
pub fn apply_override(
    table: &mut toml::Table,
    assignment: &str,
) -> Result<(String, String), ConfigError> {
    let (key, raw_value) = assignment
        .split_once('=')
        .ok_or_else(|| ConfigError::BadOverride(assignment.to_string()))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(ConfigError::BadOverride(assignment.to_string()));
    }
    let value = match toml::from_str::<toml::Table>(&format!("v = {raw_value}")) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or(toml::Value::String(raw_value.to_string())),
        Err(_) => toml::Value::String(raw_value.to_string()),
    };
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = table;
    for p in &parts[..parts.len() - 1] {
        let entry = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        cur = entry.as_table_mut().ok_or_else(|| {
            ConfigError::BadOverride(format!("{assignment} ({p} is not a table)"))
        })?;
    }
    cur.insert(parts[parts.len() - 1].to_string(), value);
    Ok((key.to_string(), raw_value.to_string()))
}

/// Checks `instance_url`: https (http only on loopback) and not a login host.
pub fn validate_instance_url(s: &str) -> Result<Url, ConfigError> {
    const KEY: &str = "salesforce.instance_url";
    let url = Url::parse(s.trim()).map_err(|e| {
        invalid(
            KEY,
            format!("{s:?}"),
            format!("not a URL ({e}); use your My Domain URL, e.g. https://acme.my.salesforce.com"),
        )
    })?;
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    if host == "login.salesforce.com" || host == "test.salesforce.com" {
        return Err(invalid(
            KEY,
            format!("{s:?}"),
            "the Client Credentials flow must use the org's My Domain URL, not login.salesforce.com or test.salesforce.com. \
             Find it in Setup > My Domain (e.g. https://acme.my.salesforce.com)",
        ));
    }
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
        || host == "[::1]";
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(invalid(
                KEY,
                format!("{s:?}"),
                "must be https:// (plain http is allowed only for a loopback emulator such as http://127.0.0.1:PORT)",
            ))
        }
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(invalid(
            KEY,
            format!("{s:?}"),
            "give the bare My Domain URL without a path, e.g. https://acme.my.salesforce.com",
        ));
    }
    Ok(url)
}

fn range_i64(
    key: &str,
    v: Option<i64>,
    default: i64,
    min: i64,
    max: i64,
    rule: &str,
) -> Result<i64, ConfigError> {
    let v = v.unwrap_or(default);
    if v < min || v > max {
        return Err(invalid(key, v, rule));
    }
    Ok(v)
}

impl RawConfig {
    /// Validates every key, section by section, returning the first error with its key, value
    /// and rule.
    pub fn validate(
        self,
        secret_env: Option<String>,
        secret_from_command_line: bool,
    ) -> Result<Config, ConfigError> {
        let salesforce = self
            .salesforce
            .validate(secret_env, secret_from_command_line)?;
        let sync = self.sync.validate()?;
        let objects = validate_objects(self.objects, &sync.cursor_field)?;
        let destination = self.destination.validate()?;
        Ok(Config {
            salesforce,
            objects,
            sync,
            destination,
        })
    }
}

impl RawSalesforce {
    /// `[salesforce]`; the secret comes from the file, the environment or `--set` (in that order
    /// of precedence, the last winning).
    fn validate(
        self,
        secret_env: Option<String>,
        secret_from_command_line: bool,
    ) -> Result<SalesforceConfig, ConfigError> {
        let sf = self;
        let instance_url = validate_instance_url(sf.instance_url.as_deref().ok_or_else(|| {
            ConfigError::Missing {
                key: "salesforce.instance_url".into(),
                hint: "the org's My Domain URL, e.g. https://acme.my.salesforce.com".into(),
            }
        })?)?;
        let client_id = sf.client_id.filter(|s| !s.trim().is_empty()).ok_or_else(|| ConfigError::Missing {
            key: "salesforce.client_id".into(),
            hint: "the External Client App's Consumer Key (Settings > OAuth Settings > Consumer Key and Secret)".into(),
        })?;
        // file < environment < --set
        let client_secret = if secret_from_command_line {
            sf.client_secret.or(secret_env)
        } else {
            secret_env.or(sf.client_secret)
        }
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ConfigError::Missing {
            key: "salesforce.client_secret".into(),
            hint: format!("set the environment variable {SECRET_ENV} to the app's Consumer Secret"),
        })?;
        let api_version = sf
            .api_version
            .unwrap_or_else(|| DEFAULT_API_VERSION.to_string());
        let ok_version = api_version
            .split_once('.')
            .map(|(a, b)| !a.is_empty() && a.chars().all(|c| c.is_ascii_digit()) && b == "0")
            .unwrap_or(false);
        if !ok_version {
            return Err(invalid(
                "salesforce.api_version",
                format!("{api_version:?}"),
                "a version string such as \"62.0\"",
            ));
        }
        if let Some(ca) = &sf.ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                invalid(
                    "salesforce.ca_file",
                    ca.display(),
                    format!("must be a readable PEM file ({e})"),
                )
            })?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(invalid(
                    "salesforce.ca_file",
                    ca.display(),
                    "holds no certificate: give the PEM file of the issuing CA (one or more -----BEGIN CERTIFICATE----- blocks)",
                ));
            }
        }
        Ok(SalesforceConfig {
            instance_url,
            client_id,
            client_secret: Secret::new(client_secret),
            api_version,
            ca_file: sf.ca_file,
            gzip: sf.gzip.unwrap_or(true),
        })
    }
}

impl RawSync {
    /// `[sync]`.
    fn validate(self) -> Result<SyncConfig, ConfigError> {
        let s = self;
        let mode = match s.mode.as_deref() {
            Some("historical") => Mode::Historical,
            Some("incremental") => Mode::Incremental,
            Some(other) => {
                return Err(invalid(
                    "sync.mode",
                    format!("{other:?}"),
                    "must be \"historical\" or \"incremental\"",
                ))
            }
            None => {
                return Err(ConfigError::Missing {
                    key: "sync.mode".into(),
                    hint: "\"historical\" or \"incremental\"".into(),
                })
            }
        };
        let cursor_field = s
            .cursor_field
            .clone()
            .unwrap_or_else(|| "LastModifiedDate".to_string());
        if !ident::is_field_name(&cursor_field) {
            return Err(invalid(
                "sync.cursor_field",
                format!("{cursor_field:?}"),
                "must be a Salesforce field API name such as LastModifiedDate or SystemModstamp",
            ));
        }
        let (start, end) = s.date_range(mode)?;
        let query_limit = match s.query_limit {
            Some(0) => return Err(invalid("sync.query_limit", 0, "query_limit cannot be 0: it is the most query requests one run may send per object (at least 1; default 50)")),
            Some(v) if v < 0 => return Err(invalid("sync.query_limit", v, "query_limit cannot be negative: it is the most query requests one run may send per object (at least 1; default 50)")),
            Some(v) => u32::try_from(v).map_err(|_| invalid("sync.query_limit", v, "at most 4294967295"))?,
            None => 50,
        };
        let api_budget_percent = range_i64(
            "sync.api_budget_percent",
            s.api_budget_percent,
            80,
            1,
            100,
            "must be between 1 and 100 (percent of the org's daily API allowance)",
        )? as u32;
        let lag_s = range_i64(
            "sync.lag_s",
            s.lag_s,
            300,
            0,
            i64::MAX,
            "must be 0 or more seconds",
        )? as u64;
        let rate_limit = range_i64(
            "sync.rate_limit",
            s.rate_limit,
            5,
            1,
            u32::MAX as i64,
            "must be at least 1 request per interval",
        )? as u32;
        let rate_limit_timeout_ms = range_i64(
            "sync.rate_limit_timeout_ms",
            s.rate_limit_timeout_ms,
            1000,
            1,
            i64::MAX,
            "must be at least 1 ms",
        )? as u64;
        let request_timeout_s = range_i64(
            "sync.request_timeout_s",
            s.request_timeout_s,
            60,
            1,
            86_400,
            "must be between 1 and 86400 seconds",
        )? as u64;
        let concurrency = range_i64(
            "sync.concurrency",
            s.concurrency,
            4,
            1,
            10,
            "must be between 1 and 10 (Salesforce allows 10 open query cursors per user)",
        )? as usize;
        let include_deleted = s.include_deleted.unwrap_or(true);
        let memory_limit_mb = range_i64(
            "sync.memory_limit_mb",
            s.memory_limit_mb,
            256,
            1,
            1 << 20,
            "must be at least 1 (MiB)",
        )? as usize;

        let window_records = range_i64(
            "sync.window_records",
            s.window_records,
            WINDOW_TARGET as i64,
            1,
            100_000_000,
            "must be between 1 and 100000000 records per query window",
        )? as u64;

        let api = match s.api.as_deref().unwrap_or("auto") {
            "auto" => Api::Auto,
            "rest" => Api::Rest,
            "bulk" => Api::Bulk,
            other => {
                return Err(invalid(
                    "sync.api",
                    format!("{other:?}"),
                    "must be \"auto\", \"rest\" or \"bulk\"",
                ))
            }
        };
        Ok(SyncConfig {
            mode,
            cursor_field,
            start,
            end,
            query_limit,
            api_budget_percent,
            lag_s,
            rate_limit,
            rate_limit_timeout_ms,
            request_timeout_s,
            include_deleted,
            concurrency,
            memory_limit_mb,
            window_records,
            api,
        })
    }

    /// `sync.start_date` and `sync.end_date` (historical mode only) as instants.
    #[allow(clippy::type_complexity)]
    fn date_range(
        &self,
        mode: Mode,
    ) -> Result<(Option<DateTime<Utc>>, Option<DateTime<Utc>>), ConfigError> {
        let s = self;
        let start = match &s.start_date {
            None => None,
            Some(v) => {
                if mode == Mode::Incremental {
                    return Err(invalid(
                        "sync.start_date",
                        format!("{v:?}"),
                        "only applies to historical mode: incremental never looks back, it starts from the moment of its first run. \
                         Remove start_date, and run a historical sync (or `forcelake backfill`) for the past",
                    ));
                }
                Some(DateOrTime::parse(v).ok_or_else(|| {
                    invalid(
                        "sync.start_date",
                        format!("{v:?}"),
                        "an ISO date (2024-01-01) or datetime (2024-01-01T00:00:00Z)",
                    )
                })?)
            }
        };
        let end = match &s.end_date {
            None => None,
            Some(v) => {
                if mode == Mode::Incremental {
                    return Err(invalid(
                        "sync.end_date",
                        format!("{v:?}"),
                        "only applies to historical mode; incremental runs up to now − sync.lag_s",
                    ));
                }
                Some(DateOrTime::parse(v).ok_or_else(|| {
                    invalid("sync.end_date", format!("{v:?}"), "an ISO date (2024-12-31, inclusive) or datetime (2024-12-31T12:00:00Z, exclusive)")
                })?)
            }
        };
        let start = start.map(DateOrTime::as_start);
        let end = end.map(DateOrTime::as_end);
        if let (Some(a), Some(b)) = (start, end) {
            if b <= a {
                return Err(invalid(
                    "sync.end_date",
                    s.end_date.as_deref().unwrap_or(""),
                    format!(
                        "must be after sync.start_date ({})",
                        s.start_date.as_deref().unwrap_or("")
                    ),
                ));
            }
        }
        Ok((start, end))
    }
}

/// `[[objects]]`: each name and field list well-formed and listed once; `cursor_field` is
/// the `[sync]` default for objects that do not set their own.
fn validate_objects(
    raw: Vec<RawObject>,
    cursor_field: &str,
) -> Result<Vec<ObjectConfig>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::Missing {
            key: "objects".into(),
            hint: "add at least one [[objects]] table with name = \"Account\"".into(),
        });
    }
    let mut objects = Vec::with_capacity(raw.len());
    let mut seen = std::collections::HashSet::new();
    for (i, o) in raw.into_iter().enumerate() {
        let key = format!("objects[{i}].name");
        if !ident::is_object_name(&o.name) {
            return Err(invalid(&key, format!("{:?}", o.name), "must be a Salesforce object API name (letters, digits and single underscores, starting with a letter, e.g. Account or ns__Invoice__c)"));
        }
        if !seen.insert(o.name.to_ascii_lowercase()) {
            return Err(invalid(&key, format!("{:?}", o.name), "is listed twice"));
        }
        if let Some(fields) = &o.fields {
            if fields.is_empty() {
                return Err(invalid(
                    &format!("objects[{i}].fields"),
                    "[]",
                    "list at least one field, or omit `fields` for the object's standard fields",
                ));
            }
            let mut fseen = std::collections::HashSet::new();
            for f in fields {
                if !ident::is_field_path(f) {
                    let why = if f.split('.').count() > crate::schema::path::MAX_HOPS + 1 {
                        "follows more than 5 relationships; SOQL allows at most 5 in one path (e.g. Account.Owner.Manager.Name follows 3)"
                    } else {
                        "must be a Salesforce field API name (letters, digits and single underscores, e.g. Name or Amount__c) or a relationship path of such names (e.g. Owner.Name or Account__r.Name)"
                    };
                    return Err(invalid(
                        &format!("objects[{i}].fields ({})", o.name),
                        format!("{f:?}"),
                        why,
                    ));
                }
                if !fseen.insert(f.to_ascii_lowercase()) {
                    return Err(invalid(
                        &format!("objects[{i}].fields ({})", o.name),
                        format!("{f:?}"),
                        "is listed twice",
                    ));
                }
            }
        }
        let cursor = o.cursor_field.unwrap_or_else(|| cursor_field.to_string());
        if !ident::is_field_name(&cursor) {
            return Err(invalid(
                &format!("objects[{i}].cursor_field"),
                format!("{cursor:?}"),
                "must be a Salesforce field API name",
            ));
        }
        objects.push(ObjectConfig {
            name: o.name,
            fields: o.fields,
            cursor_field: cursor,
        });
    }
    Ok(objects)
}

impl RawDestination {
    /// `[destination]`: the URL and its store options, compression, table format.
    fn validate(self) -> Result<DestinationConfig, ConfigError> {
        let d = self;
        let url = d.url.filter(|u| !u.trim().is_empty()).ok_or_else(|| ConfigError::Missing {
            key: "destination.url".into(),
            hint: "a local folder, file:///abs/path, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix".into(),
        })?;
        let compression = match d.compression.as_deref().unwrap_or("zstd") {
            "zstd" => Compression::Zstd,
            "snappy" => Compression::Snappy,
            "none" => Compression::None,
            other => {
                return Err(invalid(
                    "destination.compression",
                    format!("{other:?}"),
                    "must be \"zstd\", \"snappy\" or \"none\"",
                ))
            }
        };
        let table_format = match d.table_format.as_deref().unwrap_or("delta") {
            "delta" => TableFormat::Delta,
            "none" => TableFormat::None,
            other => {
                return Err(invalid(
                    "destination.table_format",
                    format!("{other:?}"),
                    "must be \"delta\" (each object folder is also a Delta Lake table) or \"none\" (Parquet and manifests only)",
                ))
            }
        };
        crate::sink::store::check_url_and_options(&url, &d.options)
            .map_err(|b| invalid(&b.key, b.value, b.rule))?;
        Ok(DestinationConfig {
            url,
            compression,
            table_format,
            options: d.options,
        })
    }
}

#[cfg(test)]
mod tests;
