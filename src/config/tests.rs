use super::*;

const BASE: &str = r#"
[salesforce]
instance_url = "https://acme.my.salesforce.com"
client_id = "KEY"

[[objects]]
name = "Account"

[sync]
mode = "historical"

[destination]
url = "/tmp/lake"
"#;

fn load(extra: &[&str]) -> Result<Config, ConfigError> {
    let o: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    Config::from_toml_str(BASE, "test.toml", &o, Some("s3cr3t".into()))
}

#[test]
fn defaults_match_the_spec() {
    let c = load(&[]).unwrap();
    assert_eq!(c.sync.query_limit, 50);
    assert_eq!(c.sync.api_budget_percent, 80);
    assert_eq!(c.sync.lag_s, 300);
    assert_eq!(c.sync.rate_limit, 5);
    assert_eq!(c.sync.rate_limit_timeout_ms, 1000);
    assert_eq!(c.sync.request_timeout_s, 60);
    assert!(c.sync.include_deleted);
    assert_eq!(c.sync.concurrency, 4);
    assert_eq!(c.sync.cursor_field, "LastModifiedDate");
    assert_eq!(c.objects[0].cursor_field, "LastModifiedDate");
    assert_eq!(c.destination.compression, Compression::Zstd);
    assert_eq!(c.salesforce.api_version, DEFAULT_API_VERSION);
}

#[test]
fn secret_is_redacted_in_debug() {
    let c = load(&[]).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("s3cr3t"), "{dbg}");
    assert!(dbg.contains("redacted"));
}

#[test]
fn unknown_key_is_rejected_with_its_name() {
    let text = BASE.replace(
        "mode = \"historical\"",
        "mode = \"historical\"\nconcurency = 3",
    );
    let e = Config::from_toml_str(&text, "t.toml", &[], Some("x".into()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("concurency"), "{e}");
}

#[test]
fn query_limit_zero_is_rejected() {
    let e = load(&["sync.query_limit=0"]).unwrap_err().to_string();
    assert!(e.contains("query_limit cannot be 0"), "{e}");
}

#[test]
fn login_host_is_rejected() {
    let e = load(&["salesforce.instance_url=https://login.salesforce.com"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("My Domain"), "{e}");
    let e = load(&["salesforce.instance_url=http://acme.my.salesforce.com"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("https"), "{e}");
    assert!(load(&["salesforce.instance_url=http://127.0.0.1:8080"]).is_ok());
}

#[test]
fn start_date_with_incremental_is_explained() {
    let e = load(&["sync.mode=incremental", "sync.start_date=2024-01-01"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("incremental never looks back"), "{e}");
}

#[test]
fn ranges_are_checked() {
    assert!(load(&["sync.concurrency=11"])
        .unwrap_err()
        .to_string()
        .contains("between 1 and 10"));
    assert!(load(&["sync.api_budget_percent=0"]).is_err());
    assert!(load(&["sync.rate_limit=0"]).is_err());
    assert!(load(&["sync.lag_s=-1"]).is_err());
    assert_eq!(
        load(&[]).unwrap().destination.table_format,
        TableFormat::Delta
    );
    assert!(load(&["destination.table_format=iceberg"])
        .unwrap_err()
        .to_string()
        .contains("destination.table_format"));
    assert!(load(&["destination.compression=lz4"])
        .unwrap_err()
        .to_string()
        .contains("zstd"));
    let e = load(&["sync.start_date=2024-02-01", "sync.end_date=2024-01-01"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("after sync.start_date"), "{e}");
}

#[test]
fn hostile_names_are_rejected() {
    let text = BASE.replace(
        "name = \"Account\"",
        "name = \"Account\"\nfields = [\"Id\", \"Name FROM User --\"]",
    );
    let e = Config::from_toml_str(&text, "t", &[], Some("x".into()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("field API name"), "{e}");
    let text = BASE.replace("name = \"Account\"", "name = \"../etc\"");
    assert!(Config::from_toml_str(&text, "t", &[], Some("x".into())).is_err());
}

#[test]
fn missing_secret_names_the_env_var() {
    let e = Config::from_toml_str(BASE, "t", &[], None)
        .unwrap_err()
        .to_string();
    assert!(e.contains(SECRET_ENV), "{e}");
}

#[test]
fn type_errors_name_the_key_and_where_the_value_came_from() {
    let text = BASE.replace(
        "mode = \"historical\"",
        "mode = \"historical\"\nconcurrency = \"4\"",
    );
    let e = Config::from_toml_str(&text, "forcelake.toml", &[], Some("x".into()))
        .unwrap_err()
        .to_string();
    let line = text
        .lines()
        .position(|l| l.starts_with("concurrency"))
        .unwrap()
        + 1;
    assert!(
        e.starts_with(&format!(
            "`sync.concurrency` (forcelake.toml line {line}): invalid type: string \"4\""
        )),
        "{e}"
    );
    let e = load(&["sync.concurrency=abc"]).unwrap_err().to_string();
    assert!(e.starts_with("`sync.concurrency` (from --set)"), "{e}");
    let e = load(&["objects=3"]).unwrap_err().to_string();
    assert!(e.contains("`objects` (from --set)"), "{e}");
    // a secret of the wrong type is named, its value is not shown
    let text = BASE.replace(
        "client_id = \"KEY\"",
        "client_id = \"KEY\"\nclient_secret = 123456",
    );
    let e = Config::from_toml_str(&text, "f.toml", &[], None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("salesforce.client_secret") && !e.contains("123456"),
        "{e}"
    );
}

#[test]
fn set_values_fall_back_to_strings_and_win_over_the_environment() {
    let c = load(&["salesforce.api_version=61.0"]).unwrap();
    assert_eq!(c.salesforce.api_version, "61.0");
    // file < environment < --set
    let c = load(&["salesforce.client_secret=from-set"]).unwrap();
    assert_eq!(c.salesforce.client_secret.expose(), "from-set");
    let text = BASE.replace(
        "client_id = \"KEY\"",
        "client_id = \"KEY\"\nclient_secret = \"from-file\"",
    );
    let c = Config::from_toml_str(&text, "f", &[], Some("from-env".into())).unwrap();
    assert_eq!(c.salesforce.client_secret.expose(), "from-env");
    let c = Config::from_toml_str(&text, "f", &[], None).unwrap();
    assert_eq!(c.salesforce.client_secret.expose(), "from-file");
}

#[test]
fn a_ca_file_without_a_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ca.pem");
    std::fs::write(&f, "hello").unwrap();
    let e = load(&[&format!("salesforce.ca_file={}", f.display())])
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds no certificate"), "{e}");
    std::fs::write(
        &f,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    assert!(load(&[&format!("salesforce.ca_file={}", f.display())]).is_ok());
}

#[test]
fn overrides_parse_values() {
    let c = load(&[
        "sync.concurrency=7",
        "sync.include_deleted=false",
        "sync.start_date=2024-01-01",
    ])
    .unwrap();
    assert_eq!(c.sync.concurrency, 7);
    assert!(!c.sync.include_deleted);
    assert!(c.sync.start.is_some());
}

/// Every ```toml block of the README with a [salesforce] table parses and validates.
#[test]
fn readme_examples_are_valid_configs() {
    let readme = include_str!("../../README.md");
    let mut n = 0;
    for block in readme.split("```toml\n").skip(1) {
        let body = block.split("```").next().unwrap_or("");
        if body.contains("[salesforce]") {
            Config::from_toml_str(body, "README.md", &[], Some("x".into()))
                .unwrap_or_else(|e| panic!("README example invalid: {e}\n{body}"));
            n += 1;
        }
    }
    assert!(n >= 1);
}

/// The JSON Schema names exactly the keys the code accepts.
#[test]
fn config_schema_is_in_step_with_the_code() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../schemas/config.schema.json")).unwrap();
    let props = |ptr: &str| -> Vec<String> {
        let mut v: Vec<String> = schema
            .pointer(ptr)
            .and_then(|p| p.as_object())
            .unwrap()
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    };
    let sf = props("/properties/salesforce/properties");
    let sync = props("/properties/sync/properties");
    let dest = props("/properties/destination/properties");
    let obj = props("/properties/objects/items/properties");
    // A file that sets every key the schema knows must be accepted (no unknown keys)…
    let text = format!(
        "[salesforce]\ninstance_url = \"https://a.my.salesforce.com\"\nclient_id = \"k\"\nclient_secret = \"s\"\napi_version = \"62.0\"\ngzip = false\n\
         [[objects]]\nname = \"Account\"\nfields = [\"Id\"]\ncursor_field = \"SystemModstamp\"\n\
         [sync]\nmode = \"historical\"\ncursor_field = \"LastModifiedDate\"\nstart_date = \"2024-01-01\"\nend_date = \"2024-02-01\"\nquery_limit = 5\napi_budget_percent = 50\nlag_s = 10\nrate_limit = 3\nrate_limit_timeout_ms = 500\nrequest_timeout_s = 30\ninclude_deleted = false\ncapture_deletes = false\nconcurrency = 2\nmemory_limit_mb = 64\nwindow_records = 1000\napi = \"rest\"\n\
         [destination]\nurl = \"/tmp/x\"\ncompression = \"snappy\"\ntable_format = \"delta\"\ncurrent_table = false\n"
    );
    Config::from_toml_str(&text, "t", &[], None).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    let keys = |t: &str| -> Vec<String> {
        let mut v: Vec<String> = table[t].as_table().unwrap().keys().cloned().collect();
        v.sort();
        v
    };
    // …and the file above uses every schema key except ca_file and options (files/tables).
    let mut sf_used = keys("salesforce");
    sf_used.push("ca_file".into());
    sf_used.sort();
    assert_eq!(sf_used, sf);
    assert_eq!(keys("sync"), sync);
    let mut d = keys("destination");
    d.push("options".into());
    d.sort();
    assert_eq!(d, dest);
    let mut o: Vec<String> = table["objects"].as_array().unwrap()[0]
        .as_table()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    o.sort();
    assert_eq!(o, obj);
    // A key the schema does not know is rejected by the code.
    assert!(Config::from_toml_str(
        &text.replace("lag_s = 10", "lag_seconds = 10"),
        "t",
        &[],
        None
    )
    .is_err());
}
