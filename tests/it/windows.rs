//! Query windows (issue 13): requests grow with records, not with days. One query per window
//! over many days, its stream cut at UTC midnights into day chunks committed as it passes.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use forcelake::emulator::data::Cell;
use forcelake::emulator::{EmulatorConfig, RunningEmulator};

use crate::util::*;

const ACCOUNT: &str = "[[objects]]\nname = \"Account\"\n";

/// Account only, `n` records over the `days` before ANCHOR.
fn accounts(n: usize, days: i64) -> EmulatorConfig {
    let mut cfg = emulator_config(0);
    cfg.gen.days = days;
    cfg.gen.rows.insert("Account".into(), n);
    cfg
}

/// Every Account of the truth once in the lake, each in its day, files as the manifests say.
fn assert_exact(emu: &RunningEmulator, p: &Pipeline) {
    let data = emu.dataset();
    let batches = read_object(&p.lake, "Account");
    let n = assert_matches_truth(&data, "Account", &batches, "LastModifiedDate");
    let unique: HashSet<String> = ids(&batches).into_iter().collect();
    assert_eq!(unique.len(), n, "duplicated records");
    assert_eq!(n, data.table("Account").unwrap().rows.len(), "lost records");
    assert_files_match_manifests(&p.lake, "Account");
}

/// The REST requests one run of `args` costs, as the emulator counts them (all kinds).
async fn requests_of(
    emu: &RunningEmulator,
    p: &Pipeline,
    args: &[&str],
) -> (u64, serde_json::Value) {
    let before = emu.requests();
    let s = json(&run(p, args).await);
    (emu.requests() - before, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_follow_records_for_dense_sparse_and_empty_objects() {
    // sparse: 25 records over two years
    let emu = start(accounts(25, 730)).await;
    let p = pipeline(&emu.url, ACCOUNT, "");
    let (n, s) = requests_of(&emu, &p, &["sync", "--json"]).await;
    assert!(n <= 5, "25 records over two years took {n} requests: {s}");
    assert_eq!(s["objects"][0]["windows_planned"], 1, "{s}");
    assert_exact(&emu, &p);
    // every day of the range is covered: no gap in status
    let st = json(&run(&p, &["status", "--json"]).await);
    assert_eq!(
        st["objects"][0]["coverage_gaps"].as_array().unwrap().len(),
        0,
        "{st}"
    );
    // a rerun plans nothing and fetches nothing
    let (n, _) = requests_of(&emu, &p, &["sync", "--json"]).await;
    assert!(n <= 2, "a rerun of a complete range took {n} requests");
    emu.stop().await;

    // empty: a year without a record costs no query at all beyond describe and one count
    let emu = start(accounts(0, 365)).await;
    let p = pipeline(&emu.url, ACCOUNT, "start_date = \"2025-01-01\"");
    let (n, s) = requests_of(&emu, &p, &["sync", "--json"]).await;
    assert!(n <= 2, "an empty year took {n} requests: {s}");
    let st = json(&run(&p, &["status", "--json"]).await);
    assert_eq!(
        st["objects"][0]["coverage_gaps"].as_array().unwrap().len(),
        0,
        "{st}"
    );
    assert!(
        manifests(&p.lake, "Account").len() <= 2,
        "empty days are covered by few manifests"
    );
    emu.stop().await;

    // dense: 24,000 records over 30 days (800 a day), concurrency 4
    let emu = start(accounts(0, 30)).await;
    let first = forcelake::timefmt::DateOrTime::parse("2025-12-02")
        .unwrap()
        .as_start();
    for d in 0..30 {
        let at = first + chrono::Duration::days(d) + chrono::Duration::hours(12);
        emu.insert_records("Account", 800, at.timestamp_millis());
    }
    let p = pipeline(&emu.url, ACCOUNT, "concurrency = 4");
    let (n, s) = requests_of(&emu, &p, &["sync", "--json"]).await;
    let windows = s["objects"][0]["windows_planned"].as_u64().unwrap();
    assert!(windows >= 4, "at least concurrency windows: {s}");
    let bound = (1.1 * 24_000f64 / 2000.0).ceil() as u64 + windows + 5;
    assert!(n <= bound, "{n} requests > {bound}: {s}");
    assert_exact(&emu, &p);
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_aggregate_falls_back_to_count_bisection() {
    let mut cfg = accounts(3_000, 60);
    cfg.faults.refuse_aggregates = true;
    let emu = start(cfg).await;
    let p = pipeline(&emu.url, ACCOUNT, "window_records = 1000");
    let out = run_env(
        &p,
        &["sync", "--json"],
        &[("RUST_LOG", "forcelake=info".into())],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("COUNT() bisection"), "{}", text(&out));
    assert_exact(&emu, &p);
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_killed_mid_stream_resumes_to_the_same_lake() {
    let mut cfg = accounts(9_000, 20);
    cfg.faults.latency = Some(Duration::from_millis(5));
    let emu = start(cfg).await;
    // one window over 20 days: five pages
    let toml = "concurrency = 1\nwindow_records = 50000";
    let reference = pipeline(&emu.url, ACCOUNT, toml);
    let s = json(&run(&reference, &["sync", "--json"]).await);
    assert_eq!(s["objects"][0]["windows_planned"], 1, "{s}");
    let p = pipeline(&emu.url, ACCOUNT, toml);
    // Query requests of a run: earliest value, the count, then pages 1..5. First, the second
    // page is held: the days the first page passed get committed while the run waits (the
    // test waits for that progress, not for a time), then the run is killed.
    let before = emu.held_count();
    emu.hold_queries_from(4);
    let mut child = spawn(&p, ["sync"]);
    tokio::select! {
        _ = emu.wait_held(before) => {}
        s = child.wait() => panic!("the sync ended ({s:?}) before its second page"),
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while manifests(&p.lake, "Account").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no day was committed while a page was held"
        );
        assert!(
            matches!(child.try_wait(), Ok(None)),
            "the sync ended while a page was held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
    emu.release_held();
    // whatever is committed is whole: every committed day holds all its records
    let data = emu.dataset();
    let per_day = truth_per_day(data.table("Account").unwrap(), "LastModifiedDate");
    let ms = manifests(&p.lake, "Account");
    assert!(!ms.is_empty());
    for m in &ms {
        let rows = m["rows"].as_u64().unwrap() as usize;
        if rows > 0 {
            assert_eq!(rows, per_day[m["day"].as_str().unwrap()], "{m}");
        }
    }
    // killed again while its (shorter) window waits for a page
    kill_while_held(&emu, &p, &["sync"], 3, Duration::from_millis(30)).await;
    let s = json(&run(&p, &["sync", "--json"]).await);
    assert_eq!(s["status"], "complete", "{s}");
    assert_exact(&emu, &p);
    let rows = |p: &Pipeline| {
        let mut v = ids(&read_object(&p.lake, "Account"));
        v.sort();
        v
    };
    assert_eq!(rows(&p), rows(&reference));
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_timestamps_across_page_and_day_boundaries_arrive_once_in_their_day() {
    let emu = start(accounts(50, 10)).await;
    let midnight = forcelake::timefmt::DateOrTime::parse("2025-12-28")
        .unwrap()
        .as_start()
        .timestamp_millis();
    emu.insert_records("Account", 2_500, midnight - 1_000); // 23:59:59 of the 27th
    emu.insert_records("Account", 2_500, midnight); // 00:00:00 of the 28th
    let p = pipeline(&emu.url, ACCOUNT, "concurrency = 2");
    json(&run(&p, &["sync", "--json"]).await);
    assert_exact(&emu, &p);
    let mut per_day: BTreeMap<String, usize> = BTreeMap::new();
    for (d, b) in read_object(&p.lake, "Account") {
        *per_day.entry(d).or_default() += b.num_rows();
    }
    let data = emu.dataset();
    let truth = truth_per_day(data.table("Account").unwrap(), "LastModifiedDate");
    assert_eq!(per_day.get("2025-12-27"), truth.get("2025-12-27"));
    assert_eq!(per_day.get("2025-12-28"), truth.get("2025-12-28"));
    assert!(truth["2025-12-27"] >= 2_500 && truth["2025-12-28"] >= 2_500);
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_of_days_inside_one_window_replaces_just_those_days() {
    let emu = start(accounts(600, 30)).await;
    let p = pipeline(&emu.url, ACCOUNT, "");
    let s = json(&run(&p, &["sync", "--json"]).await);
    assert_eq!(s["objects"][0]["windows_planned"], 1, "{s}");
    let before: HashSet<String> = manifests(&p.lake, "Account")
        .iter()
        .map(|m| m["chunk_id"].as_str().unwrap().to_string())
        .collect();
    // records change on the backfilled days (as after a data correction)
    emu.mutate(|d| {
        let t = d.table_mut("Account").unwrap();
        let lmd = t.def.field_index("LastModifiedDate").unwrap();
        let name = t.def.field_index("Name").unwrap();
        for r in t.rows.iter_mut() {
            if let Cell::DateTime(ms) = r[lmd] {
                let day = chrono::DateTime::from_timestamp_millis(ms)
                    .unwrap()
                    .format("%Y-%m-%d")
                    .to_string();
                if ("2025-12-10".."2025-12-13").contains(&day.as_str()) {
                    std::sync::Arc::make_mut(r)[name] = Cell::Str(format!("corrected {day}"));
                }
            }
        }
    });
    let b = json(
        &run(
            &p,
            &[
                "backfill",
                "--json",
                "--object",
                "Account",
                "--start",
                "2025-12-10",
                "--end",
                "2025-12-12",
            ],
        )
        .await,
    );
    assert_eq!(b["status"], "complete", "{b}");
    let ms = manifests(&p.lake, "Account");
    let gone = superseded(&ms);
    for m in ms.iter().filter(|m| m["kind"] == "backfill") {
        assert!(
            ["2025-12-10", "2025-12-11", "2025-12-12"].contains(&m["day"].as_str().unwrap()),
            "{m}"
        );
    }
    assert_eq!(
        gone.len(),
        3,
        "exactly the three days' historical chunks: {gone:?}"
    );
    assert!(gone.iter().all(|g| before.contains(g)));
    assert_exact(&emu, &p);
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_windows_run_by_racing_workers_commit_each_day_once() {
    let emu = start(accounts(8_000, 40)).await;
    let p = pipeline(&emu.url, ACCOUNT, "concurrency = 4");
    let plan = json(&run(&p, &["plan", "sync", "--json"]).await);
    let windows = plan["chunks"].as_array().unwrap().clone();
    assert!(windows.len() >= 4, "{plan}");
    let records: u64 = windows.iter().map(|w| w["records"].as_u64().unwrap()).sum();
    assert_eq!(records, 8_000, "{plan}");
    for w in &windows {
        assert!(!w["days"].as_array().unwrap().is_empty(), "{w}");
    }
    // three workers per window, all at once
    let specs: Vec<String> = windows
        .iter()
        .map(|w| w["chunk"].as_str().unwrap().to_string())
        .collect();
    let runs = specs.iter().flat_map(|s| (0..3).map(move |_| s.clone()));
    let outs = futures::future::join_all(runs.map(|s| {
        let p = &p;
        async move { run(p, &["run-chunk", &s, "--json"]).await }
    }))
    .await;
    for o in &outs {
        let v = json(o);
        assert!(
            ["committed", "already_committed"].contains(&v["outcome"].as_str().unwrap()),
            "{v}"
        );
    }
    let ms = manifests(&p.lake, "Account");
    let days: Vec<&str> = ms.iter().map(|m| m["chunk_id"].as_str().unwrap()).collect();
    let unique: HashSet<&&str> = days.iter().collect();
    assert_eq!(days.len(), unique.len(), "a day committed twice");
    assert_exact(&emu, &p);
    // the plan is now empty
    let plan = json(&run(&p, &["plan", "sync", "--json"]).await);
    assert_eq!(plan["chunks"].as_array().unwrap().len(), 0, "{plan}");
    emu.stop().await;
}
