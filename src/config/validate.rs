//! Validation of the raw file into a typed [`Config`](super::Config), one validator per section.

use super::*;

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
        let mode = s.mode()?;
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
        let query_limit = s.query_limit()?;
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
        let capture_deletes = s.capture_deletes.unwrap_or(true);
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

        let api = s.api()?;
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
            capture_deletes,
            concurrency,
            memory_limit_mb,
            window_records,
            api,
        })
    }

    /// `sync.mode`.
    fn mode(&self) -> Result<Mode, ConfigError> {
        Ok(match self.mode.as_deref() {
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
        })
    }

    /// `sync.query_limit`: the most query requests one run may send per object.
    fn query_limit(&self) -> Result<u32, ConfigError> {
        Ok(match self.query_limit {
            Some(0) => return Err(invalid("sync.query_limit", 0, "query_limit cannot be 0: it is the most query requests one run may send per object (at least 1; default 50)")),
            Some(v) if v < 0 => return Err(invalid("sync.query_limit", v, "query_limit cannot be negative: it is the most query requests one run may send per object (at least 1; default 50)")),
            Some(v) => u32::try_from(v).map_err(|_| invalid("sync.query_limit", v, "at most 4294967295"))?,
            None => 50,
        })
    }

    /// `sync.api`.
    fn api(&self) -> Result<Api, ConfigError> {
        Ok(match self.api.as_deref().unwrap_or("auto") {
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
        let current_table = match (d.current_table, table_format) {
            (Some(true), TableFormat::None) => {
                return Err(invalid(
                    "destination.current_table",
                    "true".to_string(),
                    "needs destination.table_format = \"delta\" (the current table is a Delta table); set table_format = \"delta\" or current_table = false",
                ))
            }
            (Some(on), TableFormat::Delta) => on,
            (None, TableFormat::Delta) => true,
            (_, TableFormat::None) => false,
        };
        Ok(DestinationConfig {
            url,
            compression,
            table_format,
            current_table,
            options: d.options,
        })
    }
}
