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
    pub capture_deletes: Option<bool>,
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
    pub current_table: Option<bool>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

impl fmt::Debug for RawDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawDestination")
            .field("url", &self.url)
            .field("compression", &self.compression)
            .field("table_format", &self.table_format)
            .field("current_table", &self.current_table)
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
    /// Incremental runs ask getDeleted which records were deleted in their range and write
    /// them as tombstone rows (`deletes` chunks).
    pub capture_deletes: bool,
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
    /// Keep a current-state table per object (`<dest>/_current/<Object>/`); only with
    /// `table_format = "delta"`.
    pub current_table: bool,
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

mod validate;
pub use self::validate::validate_instance_url;

#[cfg(test)]
mod tests;
