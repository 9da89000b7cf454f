//! Historical sync end to end: typed values, day partitions, manifests, resume, status.

use arrow::datatypes::{DataType, TimeUnit};

use crate::util::*;

const OBJECTS: &str = r#"
[[objects]]
name = "Account"
fields = ["Id", "Name", "IsDeleted", "AnnualRevenue", "Credit_Limit__c", "Discount__c", "NumberOfEmployees", "Global_Employees__c",
          "Regions__c", "Support_Cutoff__c", "BillingAddress", "HQ_Location__c", "LastActivityDate", "Health_Score__c",
          "Description", "Website", "Phone", "LastModifiedDate", "SystemModstamp"]

[[objects]]
name = "Contact"

[[objects]]
name = "Invoice__c"
fields = ["Id", "Name", "Amount__c", "Tax_Rate__c", "Due_Date__c", "Paid__c", "Units__c", "Line_Items__c", "Status__c",
          "Tags__c", "Cutoff_Time__c", "Notes__c", "Ship_To__c", "Document__c", "Contact_Email__c"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn historical_sync_writes_exact_typed_values_and_resumes() {
    let emu = start(emulator_config(400)).await;
    let data = emu.dataset();
    let p = pipeline(
        &emu.url,
        OBJECTS,
        "end_date = \"2025-12-31\"\nconcurrency = 4",
    );
    let out = run(&p, &["sync", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("summary JSON on stdout");
    assert_eq!(summary["status"], "complete");

    for object in ["Account", "Contact", "Invoice__c"] {
        let t = data.table(object).unwrap();
        let batches = read_object(&p.lake, object);
        // every record once, every value equal to what the emulator served
        let checked = assert_matches_truth(&data, object, &batches, "LastModifiedDate");
        assert_eq!(checked, t.rows.len(), "{object}: rows in the lake");
        let mut ids: Vec<String> = batches
            .iter()
            .flat_map(|(_, b)| {
                let c = b
                    .column_by_name("Id")
                    .unwrap()
                    .as_any()
                    .downcast_ref::<arrow::array::StringArray>()
                    .unwrap()
                    .clone();
                c.iter().map(|s| s.unwrap().to_string()).collect::<Vec<_>>()
            })
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), t.rows.len(), "{object}: duplicate Ids");
        // rows per day equal the emulator's
        let mut per_day = std::collections::BTreeMap::new();
        for (d, b) in &batches {
            *per_day.entry(d.clone()).or_insert(0usize) += b.num_rows();
        }
        assert_eq!(
            per_day,
            truth_per_day(t, "LastModifiedDate"),
            "{object}: rows per day"
        );
        let s = summary["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["object"] == object)
            .unwrap();
        assert_eq!(s["rows"].as_u64(), Some(t.rows.len() as u64));
        assert_files_match_manifests(&p.lake, object);
    }

    // Arrow / Parquet types and metadata.
    let batches = read_object(&p.lake, "Account");
    let schema = batches[0].1.schema();
    let ty = |n: &str| schema.field_with_name(n).unwrap().data_type().clone();
    assert_eq!(ty("AnnualRevenue"), DataType::Decimal128(18, 0));
    assert_eq!(ty("Credit_Limit__c"), DataType::Decimal128(18, 2));
    assert_eq!(ty("Discount__c"), DataType::Float64);
    assert_eq!(ty("NumberOfEmployees"), DataType::Int32);
    assert_eq!(
        ty("LastModifiedDate"),
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    assert_eq!(ty("LastActivityDate"), DataType::Date32);
    // a time is text HH:MM:SS.sss (Spark and Delta read no Parquet TIME(MILLIS))
    assert_eq!(ty("Support_Cutoff__c"), DataType::Utf8);
    assert!(matches!(ty("Regions__c"), DataType::List(f) if f.data_type() == &DataType::Utf8));
    assert!(
        matches!(ty("BillingAddress"), DataType::Struct(f) if f.len() == 10 && f[0].name() == "street")
    );
    assert!(matches!(ty("HQ_Location__c"), DataType::Struct(f) if f.len() == 2));
    assert!(ty("IsDeleted") == DataType::Boolean);
    assert!(!schema.field_with_name("Id").unwrap().is_nullable());
    assert!(schema.field_with_name("Name").unwrap().is_nullable());
    let hs = schema
        .field_with_name("Health_Score__c")
        .unwrap()
        .metadata();
    assert_eq!(
        hs.get("salesforce.calculated").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        hs.get("salesforce.type").map(String::as_str),
        Some("double")
    );
    // the field list gives exactly those columns, in order
    assert_eq!(schema.fields().len(), 19);
    let inv = read_object(&p.lake, "Invoice__c");
    let inv_schema = inv[0].1.schema();
    assert_eq!(
        inv_schema.field_with_name("Amount__c").unwrap().data_type(),
        &DataType::Decimal128(16, 2)
    );
    assert!(
        inv_schema.field_with_name("LastModifiedDate").is_err(),
        "cursor queried but not written"
    );
    // default field set: standard fields only, no compound or custom
    let c = read_object(&p.lake, "Contact");
    let cs = c[0].1.schema();
    assert!(cs.field_with_name("MailingCity").is_ok());
    assert!(cs.field_with_name("MailingAddress").is_err());
    assert!(cs.field_with_name("Languages__c").is_err());

    // Manifests.
    let ms = manifests(&p.lake, "Account");
    let total: u64 = ms.iter().map(|m| m["rows"].as_u64().unwrap()).sum();
    assert_eq!(total, data.table("Account").unwrap().rows.len() as u64);
    let m = ms.iter().find(|m| m["rows"].as_u64().unwrap() > 0).unwrap();
    for key in [
        "format_version",
        "object",
        "day",
        "chunk_id",
        "kind",
        "cursor_field",
        "window_start",
        "window_end",
        "files",
        "rows",
        "schema_hash",
        "api_requests",
        "started_at",
        "committed_at",
        "tool_version",
        "supersedes",
    ] {
        assert!(m.get(key).is_some(), "manifest lacks {key}: {m}");
    }
    assert_eq!(m["kind"], "historical");
    assert_eq!(m["object"], "Account");
    assert_eq!(m["cursor_field"], "LastModifiedDate");
    assert_eq!(m["total_size"], m["rows"]);
    let day = m["day"].as_str().unwrap();
    assert_eq!(
        m["window_start"].as_str().unwrap(),
        format!("{day}T00:00:00Z")
    );
    assert!(m["files"][0]["path"]
        .as_str()
        .unwrap()
        .starts_with(&format!(
            "Account/date={day}/{}-",
            m["chunk_id"].as_str().unwrap()
        )));
    assert!(m["files"][0]["bytes"].as_u64().unwrap() > 0);
    let hash = m["schema_hash"].as_str().unwrap();
    assert!(p
        .lake
        .join(format!("_forcelake/schemas/Account/{hash}.json"))
        .is_file());

    // Rerun: everything is committed, nothing is fetched again.
    let before = emu.requests();
    let out = run(&p, &["sync", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s2: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for o in s2["objects"].as_array().unwrap() {
        assert_eq!(o["chunks_committed"], 0, "{o}");
        assert_eq!(o["rows"], 0);
    }
    assert!(
        emu.requests() - before <= 10,
        "a rerun re-queried data: {} requests",
        emu.requests() - before
    );
    assert_eq!(
        read_object(&p.lake, "Account")
            .iter()
            .map(|(_, b)| b.num_rows())
            .sum::<usize>(),
        data.table("Account").unwrap().rows.len()
    );

    // Status from the manifests.
    let out = run(&p, &["status", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let acc = st["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == "Account")
        .unwrap();
    assert_eq!(
        acc["rows"].as_u64(),
        Some(data.table("Account").unwrap().rows.len() as u64)
    );
    assert_eq!(acc["chunks"]["committed"].as_u64(), Some(ms.len() as u64));
    assert_eq!(acc["coverage_gaps"].as_array().unwrap().len(), 0);
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn date_and_datetime_bounds_and_a_later_run_completes_the_partial_day() {
    let emu = start(emulator_config(600)).await;
    let data = emu.dataset();
    let t = data.table("Opportunity").unwrap();
    let objects = "[[objects]]\nname = \"Opportunity\"\n";
    let p = pipeline(
        &emu.url,
        objects,
        "start_date = \"2025-12-01\"\nend_date = \"2025-12-10T12:00:00Z\"",
    );
    let out = run(&p, &["sync", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ms = |s: &str| {
        forcelake::timefmt::DateOrTime::parse(s)
            .unwrap()
            .as_start()
            .timestamp_millis()
    };
    let want = truth_rows(
        t,
        "LastModifiedDate",
        ms("2025-12-01"),
        ms("2025-12-10T12:00:00Z"),
    )
    .len();
    let got: usize = read_object(&p.lake, "Opportunity")
        .iter()
        .map(|(_, b)| b.num_rows())
        .sum();
    assert_eq!(got, want);
    assert!(manifests(&p.lake, "Opportunity")
        .iter()
        .any(|m| m["chunk_id"] == "historical-20251210T000000Z-20251210T120000Z"));

    // Extend the range: only the rest of Dec 10 and Dec 11 are fetched.
    let text_cfg = std::fs::read_to_string(&p.config)
        .unwrap()
        .replace("2025-12-10T12:00:00Z", "2025-12-11");
    std::fs::write(&p.config, text_cfg).unwrap();
    let out = run(&p, &["sync", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["objects"][0]["chunks_committed"], 2, "{s}");
    let want = truth_rows(t, "LastModifiedDate", ms("2025-12-01"), ms("2025-12-12")).len();
    let batches = read_object(&p.lake, "Opportunity");
    assert_eq!(
        batches.iter().map(|(_, b)| b.num_rows()).sum::<usize>(),
        want
    );
    assert_matches_truth(&data, "Opportunity", &batches, "LastModifiedDate");
    assert_files_match_manifests(&p.lake, "Opportunity");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_deleted_false_uses_query_and_skips_soft_deleted_rows() {
    let emu = start(emulator_config(500)).await;
    let data = emu.dataset();
    let t = data.table("Case").unwrap();
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Case\"\ncursor_field = \"SystemModstamp\"\n",
        "include_deleted = false",
    );
    let out = run(&p, &["sync"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let del = t.def.field_index("IsDeleted").unwrap();
    let live = t
        .rows
        .iter()
        .filter(|r| r[del] != forcelake::emulator::data::Cell::Bool(true))
        .count();
    assert!(
        live < t.rows.len(),
        "the emulator generates some soft-deleted rows"
    );
    let batches = read_object(&p.lake, "Case");
    assert_eq!(
        batches.iter().map(|(_, b)| b.num_rows()).sum::<usize>(),
        live
    );
    assert_matches_truth(&data, "Case", &batches, "SystemModstamp");
    assert!(manifests(&p.lake, "Case")
        .iter()
        .all(|m| m["endpoint"] == "query" && m["cursor_field"] == "SystemModstamp"));
    emu.stop().await;
}

/// The benchmark's emulator mode: a synthetic table (records generated on demand, constant
/// memory) served with gzip when asked; forcelake asks for gzip by default and the lake must
/// equal the generated truth either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_table_synced_with_and_without_gzip() {
    let mut cfg = emulator_config(0);
    cfg.gen.days = 20;
    cfg.gen.synthetic.insert("Account".into(), 30_000);
    let emu = start(cfg).await;
    let data = emu.dataset();

    // The emulator compresses a query page when the request accepts gzip, and only then.
    let http = reqwest::Client::builder().gzip(false).build().unwrap();
    let token = &token(&http, &emu).await;
    let url = format!(
        "{}/services/data/v62.0/query?q=SELECT+Id,Name+FROM+Account",
        emu.url
    );
    let page = |enc: &'static str| {
        http.get(&url)
            .bearer_auth(token)
            .header("Accept-Encoding", enc)
            .send()
    };
    let gz = page("gzip").await.unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let gz = gz.bytes().await.unwrap();
    let plain = page("identity").await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.unwrap();
    let mut inflated = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut inflated).unwrap();
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_slice(&inflated).unwrap(),
        serde_json::from_slice(&plain).unwrap(),
    );
    assert_eq!(a["totalSize"], 30_000);
    assert_eq!(a["records"], b["records"]);
    assert!(
        gz.len() * 3 < plain.len(),
        "{} vs {} bytes",
        gz.len(),
        plain.len()
    );

    for gzip in ["true", "false"] {
        let p = pipeline(
            &emu.url,
            "[[objects]]\nname = \"Account\"\n",
            "end_date = \"2099-01-01\"\nconcurrency = 3\nmemory_limit_mb = 16",
        );
        let out = run(&p, &["--set", &format!("salesforce.gzip={gzip}"), "sync"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let batches = read_object(&p.lake, "Account");
        let checked = assert_matches_truth(&data, "Account", &batches, "LastModifiedDate");
        assert_eq!(checked, 30_000, "gzip = {gzip}");
        let days: std::collections::HashSet<&str> =
            batches.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(
            days.len(),
            20,
            "one partition per day of the synthetic window"
        );
    }
    emu.stop().await;
}

/// A lake whose last schema wrote a Salesforce time as Parquet TIME (before times became text)
/// is told what changed; manifests and `--json` summaries are one JSON object on one line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_are_text_a_lake_written_with_time_is_told_and_json_is_one_line_per_object() {
    let emu = start(emulator_config(60)).await;
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Account\"\nfields = [\"Id\", \"Support_Cutoff__c\", \"LastModifiedDate\"]\n",
        "end_date = \"2025-12-31\"",
    );
    let old = p
        .lake
        .join("_forcelake/schemas/Account/00000000000000aa.json");
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    std::fs::write(
        &old,
        r#"{"object":"Account","schema_hash":"00000000000000aa","created_at":"2025-01-01T00:00:00Z","fields":[{"name":"Id","arrow_type":"Utf8"},{"name":"Support_Cutoff__c","arrow_type":"Time32(ms)"},{"name":"LastModifiedDate","arrow_type":"Timestamp(ms, \"UTC\")"}]}
"#,
    )
    .unwrap();
    let out = run(&p, &["sync", "--json"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(stdout.trim_end().lines().count(), 1, "one line: {stdout}");
    let s = json(&out);
    assert_eq!(s["status"], "complete", "{}", text(&out));
    let warnings = s["objects"][0]["warnings"].to_string();
    assert!(
        warnings.contains("Account.Support_Cutoff__c (a Salesforce time) is now written as text HH:MM:SS.sss instead of Parquet TIME"),
        "{warnings}"
    );
    let files = walk(&p.lake.join("_forcelake"));
    assert!(files.len() > 3);
    for f in files {
        let body = std::fs::read_to_string(&f).unwrap();
        assert!(
            body.ends_with('\n') && body.trim_end().lines().count() == 1,
            "{} is one JSON line: {body}",
            f.display()
        );
        serde_json::from_str::<serde_json::Value>(&body).unwrap();
    }
    // `plan --json` too
    let plan = run(&p, &["plan", "sync", "--json"]).await;
    assert_eq!(
        String::from_utf8_lossy(&plan.stdout)
            .trim_end()
            .lines()
            .count(),
        1
    );
}
