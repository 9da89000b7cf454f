//! The fault matrix: every case ends with the lake equal to the emulator's truth — 0 records
//! lost, 0 duplicated — and the SPEC's exit code.

use std::collections::HashSet;
use std::time::Duration;

use forcelake::emulator::data::Dataset;
use forcelake::emulator::{EmulatorConfig, DEMO_CLIENT_SECRET};
use rand::{Rng, SeedableRng};

use crate::util::*;

const OBJECTS: &str = "[[objects]]\nname = \"Account\"\n\n[[objects]]\nname = \"Invoice__c\"\n";

/// Every record of `object` in the lake exactly once, with exactly the emulator's values.
fn assert_exact(p: &Pipeline, data: &Dataset, object: &str) {
    let batches = read_object(&p.lake, object);
    let n = assert_matches_truth(data, object, &batches, "LastModifiedDate");
    let unique: HashSet<String> = ids(&batches).into_iter().collect();
    assert_eq!(unique.len(), n, "{object}: duplicated records");
    assert_eq!(
        n,
        data.table(object).unwrap().rows.len(),
        "{object}: lost records"
    );
    assert_files_match_manifests(&p.lake, object);
}

async fn case(
    cfg: EmulatorConfig,
    sync_toml: &str,
) -> (forcelake::emulator::RunningEmulator, Pipeline) {
    let emu = start(cfg).await;
    let p = pipeline(&emu.url, OBJECTS, sync_toml);
    (emu, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_dropped_connections_and_a_slow_answer_are_retried() {
    for (name, tweak) in [
        (
            "5xx on every 3rd request",
            Box::new(|c: &mut EmulatorConfig| c.faults.fail_every = Some(3))
                as Box<dyn Fn(&mut EmulatorConfig)>,
        ),
        (
            "connection dropped mid-body",
            Box::new(|c: &mut EmulatorConfig| c.faults.drop_body_every = Some(4)),
        ),
        (
            "an answer slower than request_timeout_s",
            Box::new(|c: &mut EmulatorConfig| {
                c.faults.slow_first_queries = Some((1, Duration::from_millis(2500)))
            }),
        ),
        (
            "tokens expiring every 250 ms",
            Box::new(|c: &mut EmulatorConfig| {
                c.faults.token_ttl = Some(Duration::from_millis(250));
                c.faults.latency = Some(Duration::from_millis(3));
            }),
        ),
    ] {
        let mut cfg = emulator_config(250);
        tweak(&mut cfg);
        let (emu, p) = case(cfg, "request_timeout_s = 1\nconcurrency = 3").await;
        let out = run(&p, &["sync", "--json"]).await;
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out));
        let data = emu.dataset();
        assert_exact(&p, &data, "Account");
        assert_exact(&p, &data, "Invoice__c");
        emu.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_limit_and_api_budget_stop_cleanly_and_the_rerun_completes() {
    // The daily limit is reached mid-sync: exit 0, paused with the reason, nothing partial.
    let mut cfg = emulator_config(150);
    cfg.daily_limit = 40;
    let (emu, p) = case(
        cfg,
        "api_budget_percent = 100\nconcurrency = 2\nwindow_records = 5",
    )
    .await;
    let out = run(&p, &["sync", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["status"], "paused", "{s}");
    assert!(s.to_string().contains("daily API limit"), "{s}");
    let pending: u64 = s["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["chunks_pending"].as_u64().unwrap())
        .sum();
    assert!(pending > 0);
    assert_files_match_manifests(&p.lake, "Account");
    emu.set_daily_limit(1_000_000);
    let out = run(&p, &["sync", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let data = emu.dataset();
    assert_exact(&p, &data, "Account");
    assert_exact(&p, &data, "Invoice__c");
    emu.stop().await;

    // The API budget guard: stop once usage passes sync.api_budget_percent.
    let mut cfg = emulator_config(150);
    cfg.daily_limit = 200;
    let (emu, p) = case(
        cfg,
        "api_budget_percent = 20\nconcurrency = 1\nwindow_records = 5",
    )
    .await;
    let out = run(&p, &["sync", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["status"], "paused");
    assert!(s.to_string().contains("api_budget_percent = 20%"), "{s}");
    assert!(
        s["api_usage"]["used"].as_u64().unwrap() <= 50,
        "the guard stopped late: {s}"
    );
    let out = run(
        &p,
        &["sync", "--json", "--set", "sync.api_budget_percent=100"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let data = emu.dataset();
    assert_exact(&p, &data, "Account");
    emu.stop().await;

    // The query budget: sync.query_limit requests per object per run, resumed next run.
    let (emu, p) = case(emulator_config(150), "window_records = 5").await;
    // check and plan estimate the requests from the planned windows and warn that the limit
    // splits the sync
    let out = run(&p, &["check", "--json", "--set", "sync.query_limit=10"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let acc = &c["objects"][0];
    assert!(acc["estimate"]["requests"].as_u64().unwrap() >= 25, "{acc}");
    assert!(acc["estimate"]["runs"].as_u64().unwrap() >= 3, "{acc}");
    assert!(
        acc["warnings"].to_string().contains("splits it over about"),
        "{acc}"
    );
    let out = run(
        &p,
        &["plan", "sync", "--json", "--set", "sync.query_limit=10"],
    )
    .await;
    let pl: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(pl["estimates"][0]["runs"].as_u64().unwrap() >= 3, "{pl}");
    // one estimate: check prints what plan prints, from the same planned windows
    let mut planned = pl["estimates"][0].clone();
    planned.as_object_mut().unwrap().remove("object");
    assert_eq!(acc["estimate"], planned, "check and plan disagree");
    let mut runs = 0;
    loop {
        runs += 1;
        let out = run(&p, &["sync", "--json", "--set", "sync.query_limit=10"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for o in s["objects"].as_array().unwrap() {
            assert!(o["requests"].as_u64().unwrap() <= 10, "{o}");
        }
        if s["status"] == "complete" {
            break;
        }
        assert!(s.to_string().contains("sync.query_limit = 10"), "{s}");
        assert!(runs < 10);
    }
    assert!(runs >= 3, "30 windows need several runs of 10 requests");
    let data = emu.dataset();
    assert_exact(&p, &data, "Account");
    assert_exact(&p, &data, "Invoice__c");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_timeouts_split_the_window_and_the_manifests_record_the_halves() {
    let mut cfg = emulator_config(300);
    cfg.faults.query_timeout_hours = Some(6);
    let (emu, p) = case(cfg, "").await;
    let out = run(&p, &["sync", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let data = emu.dataset();
    assert_exact(&p, &data, "Account");
    assert_exact(&p, &data, "Invoice__c");
    for m in manifests(&p.lake, "Account") {
        let (a, b) = (time_at(&m["window_start"]), time_at(&m["window_end"]));
        assert!(b - a <= chrono::Duration::hours(6), "{m}");
    }
    // a backfill of the same days splits the same way and replaces every historical chunk
    let out = run(
        &p,
        &[
            "backfill",
            "--json",
            "--object",
            "Account",
            "--start",
            "2025-12-01",
            "--end",
            "2025-12-03",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let st: serde_json::Value =
        serde_json::from_slice(&run(&p, &["status", "--json"]).await.stdout).unwrap();
    assert_eq!(st["backfills"][0]["chunks"]["committed"], 3, "{st}");
    assert_exact(&p, &data, "Account");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_destination_fails_the_chunk_cleanly_and_the_rerun_completes() {
    let (emu, p) = case(emulator_config(200), "").await;
    // A file where a day partition's folder must go: every write there fails.
    std::fs::create_dir_all(p.lake.join("Account")).unwrap();
    std::fs::write(p.lake.join("Account/date=2025-12-15"), b"not a folder").unwrap();
    let out = run(&p, &["sync", "--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let acc = s["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == "Account")
        .unwrap();
    assert_eq!(acc["chunks_failed"], 1, "{acc}");
    assert!(
        acc["errors"][0].as_str().unwrap().contains("destination"),
        "{acc}"
    );
    assert!(manifests(&p.lake, "Account")
        .iter()
        .all(|m| m["day"] != "2025-12-15"));
    let failures = walk(&p.lake.join("_forcelake/failures/Account"));
    assert_eq!(failures.len(), 1, "one failure record: {failures:?}");
    let st: serde_json::Value =
        serde_json::from_slice(&run(&p, &["status", "--json"]).await.stdout).unwrap();
    assert_eq!(
        st["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["object"] == "Account")
            .unwrap()["chunks"]["failed"],
        1
    );
    std::fs::remove_file(p.lake.join("Account/date=2025-12-15")).unwrap();
    let out = run(&p, &["sync", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let data = emu.dataset();
    assert_exact(&p, &data, "Account");
    assert!(walk(&p.lake.join("_forcelake/failures/Account")).is_empty());
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_across_historical_incremental_and_backfill() {
    let mut cfg = EmulatorConfig::default();
    cfg.gen.seed = 9;
    cfg.gen.default_rows = 300;
    cfg.gen.days = 60;
    cfg.faults.latency = Some(Duration::from_millis(10));
    let emu = start(cfg).await;
    let objects = "[[objects]]\nname = \"Account\"\n";
    let p = pipeline(
        &emu.url,
        objects,
        "mode = \"incremental\"\nlag_s = 1\nconcurrency = 3\nwindow_records = 5",
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261127);
    let start_at = forcelake::timefmt::rfc3339(chrono::Utc::now() - chrono::Duration::days(30));
    let marker = run_env(&p, &["sync", "--json"], &[("FORCELAKE_NOW", start_at)]).await;
    let s: serde_json::Value = serde_json::from_slice(&marker.stdout).unwrap();
    let sp = s["objects"][0]["incremental_start"]
        .as_str()
        .unwrap()
        .to_string();
    let runs: Vec<Vec<String>> = vec![
        vec![
            "sync".into(),
            "--set".into(),
            "sync.mode=historical".into(),
            "--set".into(),
            format!("sync.end_date={sp}"),
        ],
        vec!["sync".into()],
        vec![
            "backfill".into(),
            "--object".into(),
            "Account".into(),
            "--start".into(),
            day(28),
            "--end".into(),
            day(2),
        ],
    ];
    // Each kill lands while the emulator holds one of the run's query requests open (the
    // k-th, 1 ≤ k ≤ 4) and a random moment after it: the run is provably still going, and
    // answered at most 3 requests, so 8 kills cannot finish the 27–30 chunks of a mode.
    let mut kills = 0;
    for args in &runs {
        for _ in 0..8 {
            let k = rng.random_range(1..=4);
            let settle = Duration::from_millis(rng.random_range(0..60));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            kill_while_held(&emu, &p, &args, k, settle).await;
            kills += 1;
        }
        let out = run(&p, &args.iter().map(String::as_str).collect::<Vec<_>>()).await;
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    }
    // Everything up to the incremental position is in the lake exactly once (per version).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let s: serde_json::Value =
        serde_json::from_slice(&run(&p, &["sync", "--json"]).await.stdout).unwrap();
    let pos = time_at(&s["objects"][0]["position_after"]).timestamp_millis();
    let data = emu.dataset();
    let t = data.table("Account").unwrap();
    let want: HashSet<String> = truth_rows(t, "LastModifiedDate", 0, pos)
        .iter()
        .map(|r| match &r[0] {
            forcelake::emulator::data::Cell::Str(s) => s.clone(),
            _ => String::new(),
        })
        .collect();
    let batches = read_object(&p.lake, "Account");
    let ids: Vec<String> = ids(&batches).into_iter().collect();
    let got: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), got.len(), "duplicates after {kills} kills");
    assert_eq!(got, want, "lost or extra records after {kills} kills");
    assert_matches_truth(&data, "Account", &batches, "LastModifiedDate");
    assert_files_match_manifests(&p.lake, "Account");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_and_tokens_never_appear_anywhere_even_at_trace_level() {
    let mut cfg = emulator_config(100);
    cfg.faults.token_ttl = Some(Duration::from_millis(200));
    cfg.faults.fail_every = Some(7);
    let (emu, p) = case(cfg, "").await;
    let mut all = String::new();
    for args in [
        vec!["sync", "--json", "-vv"],
        vec!["check", "-vv"],
        vec!["status", "--json"],
        vec!["discover", "Account", "-vv"],
    ] {
        let out = run_env(&p, &args, &[("RUST_LOG", "trace".to_string())]).await;
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        all.push_str(&text(&out));
    }
    let out = run_with_secret(&p, &["sync", "-vv"], "a-wrong-secret-0000").await;
    all.push_str(&text(&out));
    assert!(all.len() > 10_000, "trace logging produced output");
    for needle in [
        DEMO_CLIENT_SECRET,
        "a-wrong-secret-0000",
        "00D5g000004EMUL!",
    ] {
        assert!(!all.contains(needle), "{needle} leaked into the output");
    }
    for entry in walk(&p.lake) {
        let bytes = std::fs::read(&entry).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(DEMO_CLIENT_SECRET) && !text.contains("00D5g000004EMUL!"),
            "secret in {}",
            entry.display()
        );
    }
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_600_field_object_is_fetched_with_split_queries_joined_by_id() {
    let mut cfg = emulator_config(0);
    cfg.gen.rows.insert("Wide__c".into(), 300);
    let emu = start(cfg).await;
    // 2,100 records on one day: the groups are read in lockstep across page boundaries.
    let busy = forcelake::timefmt::DateOrTime::parse("2025-12-10T08:00:00Z")
        .unwrap()
        .as_start()
        .timestamp_millis();
    emu.insert_records("Wide__c", 2100, busy);
    let data = emu.dataset();
    let t = data.table("Wide__c").unwrap();
    let fields: Vec<String> = t
        .def
        .fields
        .iter()
        .map(|f| format!("\"{}\"", f.name))
        .collect();
    assert_eq!(fields.len(), 609);
    let objects = format!(
        "[[objects]]\nname = \"Wide__c\"\nfields = [{}]\n",
        fields.join(", ")
    );
    let p = pipeline(&emu.url, &objects, "");
    let out = run_env(
        &p,
        &["sync", "--json"],
        &[("RUST_LOG", "forcelake=debug".into())],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("split query joined by Id"),
        "the query was not split"
    );
    let batches = read_object(&p.lake, "Wide__c");
    assert_eq!(batches[0].1.num_columns(), 609);
    assert_exact(&p, &data, "Wide__c");
    // every chunk needed one request per field group (at least 2)
    let ms = manifests(&p.lake, "Wide__c");
    let windows: HashSet<&str> = ms.iter().map(|m| m["soql"].as_str().unwrap()).collect();
    let requests: u64 = ms.iter().map(|m| m["api_requests"].as_u64().unwrap()).sum();
    assert!(
        requests >= 2 * windows.len() as u64,
        "{requests} requests for {} windows",
        windows.len()
    );
    let busy_day = ms.iter().find(|m| m["day"] == "2025-12-10").unwrap();
    assert!(busy_day["rows"].as_u64().unwrap() > 2100);
    assert!(
        busy_day["api_requests"].as_u64().unwrap() >= 4,
        "{busy_day}"
    );
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_query_locator_restarts_the_chunk_without_duplicates() {
    let mut cfg = emulator_config(0);
    cfg.gen.rows.insert("Case".into(), 40);
    cfg.faults.expire_locator_at = Some(2);
    let emu = start(cfg).await;
    let busy = forcelake::timefmt::DateOrTime::parse("2025-12-10T08:00:00Z")
        .unwrap()
        .as_start()
        .timestamp_millis();
    emu.insert_records("Case", 4500, busy); // one chunk of 3 pages
    let p = pipeline(&emu.url, "[[objects]]\nname = \"Case\"\n", "");
    let out = run(&p, &["sync", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("INVALID_QUERY_LOCATOR"),
        "the locator never expired: {}",
        text(&out)
    );
    let data = emu.dataset();
    assert_exact(&p, &data, "Case");
    emu.stop().await;
}
