//! What an admin configures in the first hour must never lose data silently (issue 12): an
//! end date in the future, a date cursor, a nullable cursor, a changed cursor, and the errors
//! of a first day — each names the culprit and the fix.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::Date32Type;
use chrono::Utc;
use forcelake::emulator;
use forcelake::emulator::data::Cell;

use crate::util::*;

const ACCOUNT: &str = "[[objects]]\nname = \"Account\"\n";

fn stdout_lines(out: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// No manifest covers time that had not happened when it was committed.
fn assert_no_window_in_the_future(p: &Pipeline, object: &str) {
    for m in manifests(&p.lake, object) {
        assert!(
            time_at(&m["window_end"]) <= time_at(&m["committed_at"]),
            "{object}: a chunk covers time after its commit: {m}"
        );
    }
}

/// Each record of the truth with a cursor in `[from, to)` once in the lake, nothing else.
fn assert_lake_is_truth(
    emu: &emulator::RunningEmulator,
    p: &Pipeline,
    object: &str,
    from: i64,
    to: i64,
) {
    let data = emu.dataset();
    let t = data.table(object).unwrap();
    let want: HashSet<String> = truth_rows(t, "LastModifiedDate", from, to)
        .iter()
        .map(|r| match &r[0] {
            Cell::Str(s) => s.clone(),
            _ => String::new(),
        })
        .collect();
    let batches = read_object(&p.lake, object);
    let got = ids(&batches);
    let unique: HashSet<String> = got.iter().cloned().collect();
    assert_eq!(got.len(), unique.len(), "{object}: duplicated records");
    assert_eq!(unique, want, "{object}: lost or extra records");
    assert_matches_truth(&data, object, &batches, "LastModifiedDate");
    assert_files_match_manifests(&p.lake, object);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_in_the_future_is_cut_at_now_minus_lag_and_a_later_run_pulls_the_rest() {
    let emu = start(recent(12, 300, 6)).await;
    let today = day(0);
    let p = pipeline(
        &emu.url,
        ACCOUNT,
        &format!(
            "start_date = \"{}\"\nend_date = \"{today}\"\nlag_s = 1\nconcurrency = 3",
            day(5)
        ),
    );
    let s = json(&run(&p, &["sync", "--json"]).await);
    assert_eq!(s["status"], "complete", "{s}");
    assert!(
        s["objects"][0]["notes"].to_string().contains("cut at"),
        "the summary says the end was cut: {s}"
    );
    assert!(time_at(&s["objects"][0]["range_end"]) <= Utc::now());
    assert_no_window_in_the_future(&p, "Account");
    // Edits made after the first run, today: the second run with the same end brings them.
    emu.insert_records("Account", 7, Utc::now().timestamp_millis());
    emu.mutate(|d| {
        let t = d.table_mut("Account").unwrap();
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(5);
        for i in [3, 30, 90] {
            t.update(i, Utc::now().timestamp_millis(), &mut rng);
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await; // past the lag
    let s = json(&run(&p, &["sync", "--json"]).await);
    assert!(
        s["objects"][0]["chunks_committed"].as_u64().unwrap() >= 1,
        "{s}"
    );
    assert_no_window_in_the_future(&p, "Account");
    let start_ms =
        forcelake::timefmt::day_start((Utc::now() - chrono::Duration::days(5)).date_naive())
            .timestamp_millis();
    // the three edited records moved into today: their latest versions are there, the old
    // ones too (a historical sync keeps what it wrote), so compare Ids of today's partition
    let batches = read_object(&p.lake, "Account");
    let today_ids: HashSet<String> = batches
        .iter()
        .filter(|(d, _)| *d == today)
        .flat_map(|(d, b)| ids(&[(d.clone(), b.clone())]))
        .collect();
    let data = emu.dataset();
    let t = data.table("Account").unwrap();
    let now_ms = Utc::now().timestamp_millis();
    let today_ms = forcelake::timefmt::day_start(Utc::now().date_naive()).timestamp_millis();
    let want_today: HashSet<String> = truth_rows(t, "LastModifiedDate", today_ms, now_ms)
        .iter()
        .map(|r| match &r[0] {
            Cell::Str(s) => s.clone(),
            _ => String::new(),
        })
        .collect();
    assert_eq!(want_today.len(), 10, "7 new and 3 edited records today");
    assert_eq!(
        today_ids, want_today,
        "today's edits arrive with the second run"
    );
    assert!(start_ms < today_ms);

    // An end three days ahead: no day that has not happened is committed or covered.
    let ahead = (Utc::now() + chrono::Duration::days(3))
        .format("%Y-%m-%d")
        .to_string();
    let q = pipeline(
        &emu.url,
        ACCOUNT,
        &format!(
            "start_date = \"{}\"\nend_date = \"{ahead}\"\nlag_s = 1",
            day(3)
        ),
    );
    let s = json(&run(&q, &["sync", "--json"]).await);
    assert!(
        s["objects"][0]["notes"]
            .to_string()
            .contains("in the future"),
        "{s}"
    );
    assert_no_window_in_the_future(&q, "Account");
    assert!(manifests(&q.lake, "Account")
        .iter()
        .all(|m| m["day"].as_str().unwrap() <= today.as_str()));
    let from = forcelake::timefmt::day_start((Utc::now() - chrono::Duration::days(3)).date_naive())
        .timestamp_millis();
    let cut = time_at(&s["objects"][0]["range_end"]).timestamp_millis();
    assert_lake_is_truth(&emu, &q, "Account", from, cut);

    // A backfill and its plan with --end in the future: nothing after now − lag.
    let plan = json(
        &run(
            &q,
            &[
                "plan",
                "backfill",
                "--json",
                "--object",
                "Account",
                "--start",
                &day(2),
                "--end",
                &ahead,
            ],
        )
        .await,
    );
    assert!(plan["waiting"].as_u64().unwrap() >= 3, "{plan}");
    for c in plan["chunks"].as_array().unwrap() {
        for d in c["days"].as_array().unwrap() {
            assert!(d.as_str().unwrap() <= today.as_str(), "{c}");
        }
    }
    let b = run(
        &q,
        &[
            "backfill",
            "--json",
            "--object",
            "Account",
            "--start",
            &day(2),
            "--end",
            &ahead,
        ],
    )
    .await;
    let b = json(&b);
    assert_eq!(b["status"], "paused", "{b}");
    assert!(
        b["objects"][0]["paused_reason"]
            .to_string()
            .contains("in the future"),
        "{b}"
    );
    assert!(
        b["objects"][0]["chunks_pending"].as_u64().unwrap() >= 3,
        "{b}"
    );
    assert_no_window_in_the_future(&q, "Account");
    let st = json(&run(&q, &["status", "--json"]).await);
    assert!(
        st["backfills"][0]["chunks"]["pending"].as_u64().unwrap() >= 3,
        "{st}"
    );
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_date_cursor_is_queried_with_date_literals_in_historical_and_incremental_runs() {
    let emu = start(recent(21, 400, 40)).await;
    let objects = "[[objects]]\nname = \"Opportunity\"\ncursor_field = \"CloseDate\"\n";
    let date_days = |p: &Pipeline| -> Vec<(String, i32)> {
        let mut v = vec![];
        for (day, b) in read_object(&p.lake, "Opportunity") {
            let ids = b.column_by_name("Id").unwrap().as_string::<i32>().clone();
            let close = b
                .column_by_name("CloseDate")
                .unwrap()
                .as_primitive::<Date32Type>();
            for r in 0..b.num_rows() {
                let d =
                    chrono::NaiveDate::from_num_days_from_ce_opt(close.value(r) + 719_163).unwrap();
                assert_eq!(
                    d.format("%Y-%m-%d").to_string(),
                    day,
                    "the day partition is the date itself"
                );
                v.push((ids.value(r).to_string(), close.value(r)));
            }
        }
        v
    };
    let truth = |from_day: i32, to_day: i32| -> HashSet<String> {
        let data = emu.dataset();
        let t = data.table("Opportunity").unwrap();
        let ci = t.def.field_index("CloseDate").unwrap();
        t.rows
            .iter()
            .filter(|r| matches!(r[ci], Cell::Date(d) if d >= from_day && d < to_day))
            .map(|r| match &r[0] {
                Cell::Str(s) => s.clone(),
                _ => String::new(),
            })
            .collect()
    };
    let today = (Utc::now().timestamp_millis() / 86_400_000) as i32;

    // historical: every record dated before today, in the partition of its date
    let p = pipeline(&emu.url, objects, "end_date = \"2099-12-31\"\nlag_s = 1");
    let c = json(&run(&p, &["check", "--json"]).await);
    assert_eq!(c["objects"][0]["cursor_type"], "date", "{c}");
    let s = json(&run(&p, &["sync", "--json"]).await);
    assert_eq!(s["status"], "complete", "{s}");
    for m in manifests(&p.lake, "Opportunity") {
        assert!(
            m["soql"].as_str().unwrap().contains("CloseDate >= 20"),
            "{m}"
        );
        assert!(
            !m["soql"].as_str().unwrap().contains("T00:00:00Z"),
            "date literals: {m}"
        );
    }
    let got = date_days(&p);
    let got_ids: HashSet<String> = got.iter().map(|(i, _)| i.clone()).collect();
    assert_eq!(got.len(), got_ids.len(), "duplicates");
    assert_eq!(got_ids, truth(i32::MIN, today), "historical on CloseDate");
    assert!(!got_ids.is_empty());

    // incremental: a start point ten days ago (whole days), then a run now
    let q = pipeline(&emu.url, objects, "mode = \"incremental\"\nlag_s = 1");
    let s = json(
        &run_env(
            &q,
            &["sync", "--json"],
            &[("FORCELAKE_NOW", ago(chrono::Duration::days(10)))],
        )
        .await,
    );
    let start = time_at(&s["objects"][0]["incremental_start"]);
    assert_eq!(
        start.timestamp() % 86_400,
        0,
        "a date cursor's start point is a midnight"
    );
    let s = json(&run(&q, &["sync", "--json"]).await);
    assert_eq!(s["status"], "complete", "{s}");
    let got: HashSet<String> = date_days(&q).into_iter().map(|(i, _)| i).collect();
    assert_eq!(
        got,
        truth((start.timestamp() / 86_400) as i32, today),
        "incremental on CloseDate"
    );
    assert!(!got.is_empty());
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nullable_cursor_says_how_many_records_it_cannot_sync_and_what_to_use() {
    let emu = start(emulator_config(300)).await;
    let data = emu.dataset();
    let t = data.table("Case").unwrap();
    let ci = t.def.field_index("ClosedDate").unwrap();
    let nulls = t
        .rows
        .iter()
        .filter(|r| matches!(r[ci], Cell::Null))
        .count() as u64;
    assert!(
        nulls > 50,
        "the emulator leaves ClosedDate null on some Cases"
    );
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Case\"\ncursor_field = \"ClosedDate\"\n",
        "",
    );
    for cmd in ["check", "sync"] {
        let out = run(&p, &[cmd, "--json"]).await;
        let s = json(&out);
        let o = &s["objects"][0];
        assert_eq!(o["null_cursor_records"].as_u64(), Some(nulls), "{cmd}: {s}");
        let w = o["warnings"].to_string();
        assert!(
            w.contains("never synced") && w.contains(&nulls.to_string()),
            "{cmd}: {w}"
        );
        assert!(
            w.contains("LastModifiedDate") && w.contains("cursor_field = "),
            "{cmd}: {w}"
        );
    }
    // and in the human log
    let out = run(&p, &["sync"]).await;
    assert!(text(&out).contains("never synced"), "{}", text(&out));
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_cursor_on_an_existing_lake_is_refused_naming_both() {
    let emu = start(emulator_config(100)).await;
    let p = pipeline(&emu.url, ACCOUNT, "");
    json(&run(&p, &["sync", "--json"]).await);
    let before = walk(&p.lake);
    for args in [
        vec!["sync", "--set", "sync.cursor_field=SystemModstamp"],
        vec![
            "backfill",
            "--object",
            "Account",
            "--start",
            "2025-12-01",
            "--end",
            "2025-12-02",
            "--set",
            "sync.cursor_field=SystemModstamp",
        ],
        vec!["check", "--set", "sync.cursor_field=CreatedDate"],
    ] {
        let out = run(&p, &args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let t = text(&out);
        assert!(
            t.contains("LastModifiedDate") && t.contains("new destination.url"),
            "{t}"
        );
        assert!(
            t.contains("SystemModstamp") || t.contains("CreatedDate"),
            "{t}"
        );
    }
    assert_eq!(walk(&p.lake), before, "nothing was written");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_errors_name_the_key_and_where_the_value_came_from() {
    let emu = start(emulator_config(20)).await;
    let p = pipeline(&emu.url, ACCOUNT, "concurrency = \"4\"");
    let line = std::fs::read_to_string(&p.config)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("concurrency"))
        .unwrap()
        + 1;
    let out = run(&p, &["check"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("`sync.concurrency`") && t.contains(&format!("line {line}")),
        "{t}"
    );
    assert!(t.contains("\"4\""), "{t}");

    let p = pipeline(&emu.url, ACCOUNT, "");
    let out = run(&p, &["check", "--set", "sync.concurrency=abc"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("`sync.concurrency` (from --set)"),
        "{}",
        text(&out)
    );
    // a value TOML reads as a number is taken as the string the key wants
    let out = run(&p, &["check", "--set", "salesforce.api_version=61.0"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // --set wins over the environment for the secret
    let out = run(
        &p,
        &[
            "check",
            "--set",
            "salesforce.client_secret=wrong-secret-123",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("Consumer Key or Secret is wrong"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("wrong-secret-123"));
    let out = run(
        &p,
        &[
            "check",
            "--set",
            &format!("salesforce.client_secret={}", emulator::DEMO_CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_cannot_be_a_lake_is_a_configuration_error() {
    let emu = start(emulator_config(20)).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"keep me").unwrap();
    for (dest, needle) in [
        (file.clone(), "is a file, not a folder"),
        (file.join("lake"), "which is a file"),
        (
            PathBuf::from("/proc/forcelake-cannot-be-here"),
            "cannot create the folder",
        ),
    ] {
        let p = pipeline_at(&emu.url, ACCOUNT, "", Some(dest.to_str().unwrap()), &[]);
        for cmd in ["check", "sync"] {
            let out = run(&p, &[cmd]).await;
            assert_eq!(
                out.status.code(),
                Some(2),
                "{cmd} {}: {}",
                dest.display(),
                text(&out)
            );
            let t = text(&out);
            assert!(t.contains("destination.url") && t.contains(needle), "{t}");
        }
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    emu.stop().await;
}

/// A TLS server on 127.0.0.1 with a self-signed certificate (openssl s_server).
struct TlsServer {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_server() -> TlsServer {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl (Debian's openssl package) makes a test certificate");
    assert!(ok.success());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    TlsServer {
        child,
        port,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_and_an_empty_ca_file_are_configuration_errors() {
    let server = tls_server();
    let p = pipeline(
        &format!("https://127.0.0.1:{}", server.port),
        ACCOUNT,
        "request_timeout_s = 5",
    );
    let out = run(&p, &["check"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("salesforce.ca_file") && t.contains("not trusted"),
        "{t}"
    );
    assert!(
        t.contains("UnknownIssuer") || t.contains("certificate"),
        "{t}"
    );
    assert!(
        !t.contains("retrying"),
        "a certificate error is not retried: {t}"
    );
    // a ca_file without a certificate is refused when the file is read
    let empty = p._dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let out = run(
        &p,
        &[
            "check",
            "--set",
            &format!("salesforce.ca_file={}", empty.display()),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("holds no certificate"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_without_last_modified_date_is_told_the_fields_it_has() {
    let emu = start(emulator_config(20)).await;
    let p = pipeline(&emu.url, "[[objects]]\nname = \"AccountHistory\"\n", "");
    let out = run(&p, &["check"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("cursor_field = \"CreatedDate\"") && t.contains("AccountHistory"),
        "{t}"
    );
    assert!(
        !t.contains("SystemModstamp"),
        "suggests only fields the object has: {t}"
    );
    // with the suggested line it works
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"AccountHistory\"\ncursor_field = \"CreatedDate\"\n",
        "",
    );
    let out = run(&p, &["check"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_lists_every_field_of_one_object_and_needs_nothing_else() {
    let emu = start(emulator_config(20)).await;
    // a broken cursor and a broken second object do not matter to `discover Invoice__c`
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Invoice__c\"\ncursor_field = \"No_Such__c\"\n\n[[objects]]\nname = \"Nope__c\"\n",
        "",
    );
    let out = run(&p, &["discover", "Invoice__c", "--json"]).await;
    let d = json(&out);
    let data = emu.dataset();
    let def = &data.table("Invoice__c").unwrap().def;
    let fields = d["fields"].as_array().unwrap();
    assert_eq!(
        fields.len(),
        def.fields.len(),
        "every field, not just the default set"
    );
    let f = |n: &str| {
        fields
            .iter()
            .find(|f| f["name"] == n)
            .unwrap_or_else(|| panic!("{n} in {d}"))
    };
    assert_eq!(f("Amount__c")["type"], "currency");
    assert_eq!(f("Amount__c")["arrow_type"], "Decimal128(16, 2)");
    assert_eq!(
        f("Amount__c")["default"],
        false,
        "custom fields are not in the default set"
    );
    assert_eq!(f("Name")["default"], true);
    assert_eq!(f("Ship_To__c")["type"], "location");
    assert_eq!(f("Document__c")["type"], "base64");
    assert_eq!(f("Account__c")["relationship_name"], "Account__r");
    assert_eq!(f("Account__c")["reference_to"][0], "Account");
    let p2 = pipeline(&emu.url, ACCOUNT, "");
    let a = json(&run(&p2, &["discover", "Account", "--json"]).await);
    let hs = a["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Health_Score__c")
        .unwrap()
        .clone();
    assert_eq!(hs["calculated"], true);
    let owner = a["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "OwnerId")
        .unwrap()
        .clone();
    assert_eq!(owner["relationship_name"], "Owner");
    // the human listing too
    let out = run(&p, &["discover", "Invoice__c"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        t.contains("Account__r (Account)") && t.contains("Decimal128(16, 2)"),
        "{t}"
    );
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_chunk_stopped_by_a_budget_exits_3_and_finishes_later() {
    let mut cfg = emulator_config(0);
    cfg.gen.rows.insert("Case".into(), 10);
    let emu = start(cfg).await;
    let busy = forcelake::timefmt::DateOrTime::parse("2025-12-10T08:00:00Z")
        .unwrap()
        .as_start()
        .timestamp_millis();
    emu.insert_records("Case", 4500, busy); // three pages
    let p = pipeline(&emu.url, "[[objects]]\nname = \"Case\"\n", "");
    let chunk = "Case/historical-20251210";
    // Exit 3 with the reason: not done, retry later.
    let retry_later = |set: &'static str, needle: &'static str| {
        let p = &p;
        async move {
            let out = run(p, &["run-chunk", chunk, "--json", "--set", set]).await;
            assert_eq!(out.status.code(), Some(3), "{}", text(&out));
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["outcome"], "paused", "{v}");
            assert!(v["reason"].as_str().unwrap().contains(needle), "{v}");
        }
    };
    // the query budget
    retry_later("sync.query_limit=2", "query_limit").await;
    assert!(manifests(&p.lake, "Case").is_empty());
    // the org's daily limit (describe and one page pass, the second page meets the limit)
    emu.set_daily_limit(emu.requests() + 2);
    retry_later("sync.api_budget_percent=100", "daily API limit").await;
    // the API budget guard (usage near the daily maximum)
    emu.set_daily_limit(emu.requests() + 3);
    retry_later("sync.api_budget_percent=1", "api_budget_percent").await;
    emu.set_daily_limit(1_000_000);
    // then it completes, and again is a no-op
    let v = json(&run(&p, &["run-chunk", chunk, "--json"]).await);
    assert_eq!(v["outcome"], "committed", "{v}");
    let v = json(&run(&p, &["run-chunk", chunk, "--json"]).await);
    assert_eq!(v["outcome"], "already_committed", "{v}");
    // a chunk of today is not done until the day has passed (minus the lag)
    let today = Utc::now().format("%Y%m%d").to_string();
    let out = run(
        &p,
        &[
            "run-chunk",
            &format!("Case/historical-{today}"),
            "--json",
            "--set",
            "sync.lag_s=1",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "waiting", "{v}");
    assert_no_window_in_the_future(&p, "Case");
    emu.stop().await;
}

/// A TCP forwarder to `target` that resets the first `refuse` connections.
async fn resetting_proxy(
    target: std::net::SocketAddr,
    refuse: usize,
) -> (String, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut n = 0;
        loop {
            let Ok((mut c, _)) = l.accept().await else {
                return;
            };
            n += 1;
            if n <= refuse {
                #[allow(deprecated)]
                let _ = c.set_linger(Some(Duration::ZERO)); // close with RST
                drop(c);
                continue;
            }
            tokio::spawn(async move {
                if let Ok(mut up) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut up).await;
                }
            });
        }
    });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_token_request_is_retried() {
    let emu = start(emulator_config(30)).await;
    let (url, proxy) = resetting_proxy(emu.addr, 2).await;
    let p = pipeline(&url, ACCOUNT, "");
    let out = run(&p, &["check"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("token request failed; retrying"),
        "{}",
        text(&out)
    );
    proxy.abort();
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_day_details_warnings_status_nothing_written_early_and_machine_output() {
    let emu = start(emulator_config(60)).await;
    // a start_date in the future gets a word
    let p = pipeline(
        &emu.url,
        ACCOUNT,
        "start_date = \"2099-01-01\"\nend_date = \"2099-02-01\"",
    );
    let c = json(&run(&p, &["check", "--json"]).await);
    assert!(
        c["objects"][0]["warnings"]
            .to_string()
            .contains("in the future"),
        "{c}"
    );
    let s = json(&run(&p, &["sync", "--json"]).await);
    assert!(
        s["objects"][0]["warnings"]
            .to_string()
            .contains("in the future"),
        "{s}"
    );

    // status of an object that is not configured is an error with suggestions
    let p = pipeline(&emu.url, ACCOUNT, "");
    let out = run(&p, &["status", "--object", "Acount"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("did you mean Account"),
        "{}",
        text(&out)
    );

    // a configuration error on a later object: nothing at all is written
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Account\"\n\n[[objects]]\nname = \"Invoice__c\"\nfields = [\"Id\", \"Amout__c\"]\n",
        "",
    );
    let out = run(&p, &["sync"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("Amount__c"), "{}", text(&out));
    assert!(
        walk(&p.lake).is_empty(),
        "written before validation: {:?}",
        walk(&p.lake)
    );
    // `plan` writes nothing
    let p = pipeline(&emu.url, ACCOUNT, "");
    let out = run(&p, &["plan", "sync", "--json"]).await;
    json(&out);
    assert!(walk(&p.lake).is_empty(), "plan wrote {:?}", walk(&p.lake));

    // --json: one JSON object on one line; a failure prints {"error", "exit_code"} there
    let out = run(&p, &["sync", "--json"]).await;
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["status"], "complete");
    let out = run(&p, &["sync", "--json", "--set", "sync.concurrency=0"]).await;
    assert_eq!(out.status.code(), Some(2));
    let last: serde_json::Value = serde_json::from_str(stdout_lines(&out).last().unwrap()).unwrap();
    assert_eq!(last["exit_code"], 2);
    assert!(
        last["error"].as_str().unwrap().contains("sync.concurrency"),
        "{last}"
    );

    // --log-format json: every stderr line is a JSON object, on success and on failure
    for args in [
        vec!["sync", "--log-format", "json"],
        vec!["plan", "sync", "--log-format", "json"],
        vec![
            "sync",
            "--log-format",
            "json",
            "--set",
            "sync.concurrency=0",
        ],
    ] {
        let out = run(&p, &args).await;
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!err.trim().is_empty(), "{args:?}");
        for l in err.lines() {
            assert!(
                serde_json::from_str::<serde_json::Value>(l).is_ok(),
                "{args:?}: not JSON: {l}"
            );
        }
    }
    emu.stop().await;
}
