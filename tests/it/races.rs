//! Overlapping runs (SPEC §4 "What may run at once"): two processes of the real binary started
//! together — a cron overlap, two Airflow plans, two forced backfills, a backfill beside an
//! incremental run, a backfill after an outage, a backfill after a compaction — leave no
//! (Id, SystemModstamp) twice in the manifests' files, the Parquet glob or the Delta table,
//! and the lake equal to the emulator's truth. Each pair is run in both orders of finishing
//! (the run that starts first is throttled in one round, the one that starts second in the
//! other).

use std::collections::HashSet;
use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::TimestampMillisecondType;
use forcelake::emulator::data::Cell;

use crate::util::*;

pub const ACCOUNT: &str = "[[objects]]\nname = \"Account\"\nfields = [\"Id\", \"Name\", \"IsDeleted\", \"LastModifiedDate\", \"SystemModstamp\"]\n";

/// A run that sends at most 3 requests a second: it finishes after its rival.
pub const SLOW: [&str; 4] = ["--set", "sync.rate_limit=3", "--set", "sync.concurrency=1"];

/// Checks the lake's one-truth promise for `object`: the Parquet glob, the live manifests'
/// files and the Delta table hold the same files, and no (Id, SystemModstamp) is in them
/// twice. Returns every (Id, LastModifiedDate) version.
fn assert_each_version_once(lake: &std::path::Path, object: &str) -> HashSet<(String, i64)> {
    assert_files_match_manifests(lake, object);
    let mut versions = HashSet::new();
    let mut seen = std::collections::HashMap::new();
    for f in parquet_files(lake, object) {
        let file = std::fs::File::open(&f).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            let b = b.unwrap();
            let ids = b.column_by_name("Id").unwrap().as_string::<i32>().clone();
            let ms = |name: &str| {
                b.column_by_name(name)
                    .unwrap()
                    .as_primitive::<TimestampMillisecondType>()
                    .clone()
            };
            let (sm, lmd) = (ms("SystemModstamp"), ms("LastModifiedDate"));
            for r in 0..b.num_rows() {
                let id = ids.value(r).to_string();
                if let Some(other) = seen.insert((id.clone(), sm.value(r)), f.clone()) {
                    let chunks: Vec<String> = manifests(lake, object)
                        .iter()
                        .map(|m| {
                            format!(
                                "{} supersedes {} committed {}",
                                m["chunk_id"], m["supersedes"], m["committed_at"]
                            )
                        })
                        .collect();
                    panic!(
                        "{object} {id} version SystemModstamp={} is in the lake twice: {} and {}\nmanifests:\n{}",
                        sm.value(r),
                        other.display(),
                        f.display(),
                        chunks.join("\n")
                    );
                }
                versions.insert((id, lmd.value(r)));
            }
        }
    }
    versions
}

/// Every record the emulator has whose cursor lies in `[from, to)` is in the lake at that
/// version.
fn assert_truth_in(
    emu: &forcelake::emulator::RunningEmulator,
    versions: &HashSet<(String, i64)>,
    from_ms: i64,
    to_ms: i64,
) -> usize {
    let data = emu.dataset();
    let rows = truth_rows(
        data.table("Account").unwrap(),
        "LastModifiedDate",
        from_ms,
        to_ms,
    );
    let t = data.table("Account").unwrap();
    let (id_i, lmd_i) = (
        t.def.field_index("Id").unwrap(),
        t.def.field_index("LastModifiedDate").unwrap(),
    );
    for r in &rows {
        let (Cell::Str(id), Cell::DateTime(ms)) = (&r[id_i], &r[lmd_i]) else {
            panic!("emulator row without Id or LastModifiedDate")
        };
        assert!(
            versions.contains(&(id.clone(), *ms)),
            "Account {id} at LastModifiedDate {ms} is missing from the lake"
        );
    }
    rows.len()
}

/// Records of Account edited, deleted, created and committed late every 20 ms while a race
/// runs.
fn edits(emu: &forcelake::emulator::RunningEmulator) -> forcelake::emulator::MutationHandle {
    emu.start_mutations(
        &["Account"],
        Duration::from_millis(20),
        Duration::from_millis(300),
    )
}

fn ms(v: &serde_json::Value) -> i64 {
    time_at(v).timestamp_millis()
}

pub fn args<'a>(base: &[&'a str], slow: bool) -> Vec<&'a str> {
    let mut v = base.to_vec();
    if slow {
        v.extend(SLOW);
    }
    v
}

/// Runs `a` now and `b` 150 ms later, both to the end; each must exit 0.
pub async fn race(p: &Pipeline, a: &[&str], b: &[&str]) -> (serde_json::Value, serde_json::Value) {
    let second = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        run(p, b).await
    };
    let (x, y) = tokio::join!(run(p, a), second);
    (json(&x), json(&y))
}

async fn incremental_pipeline(
    latency_ms: u64,
) -> (forcelake::emulator::RunningEmulator, Pipeline, i64) {
    let mut cfg = recent(31, 400, 4);
    cfg.faults.latency = Some(Duration::from_millis(latency_ms));
    let emu = start(cfg).await;
    let p = pipeline(&emu.url, ACCOUNT, "mode = \"incremental\"\nlag_s = 1");
    let s = json(
        &run_env(
            &p,
            &["sync", "--json"],
            &[("FORCELAKE_NOW", ago(chrono::Duration::days(2)))],
        )
        .await,
    );
    let start_point = ms(&s["objects"][0]["incremental_start"]);
    (emu, p, start_point)
}

/// Ends the test: stops edits, waits out the lag, runs one more sync, checks the lake.
async fn settle_and_check(
    emu: forcelake::emulator::RunningEmulator,
    p: &Pipeline,
    start_point: i64,
) {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = json(&run(p, &["sync", "--json"]).await);
    let v = assert_each_version_once(&p.lake, "Account");
    let pos = ms(&s["objects"][0]["position_after"]);
    let n = assert_truth_in(&emu, &v, start_point, pos);
    assert!(n > 50, "only {n} records in the synced range");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_incremental_syncs_started_together_write_each_version_once() {
    let (emu, p, start_point) = incremental_pipeline(300).await;
    let edits = edits(&emu);
    for slow_first in [true, false] {
        let (a, b) = race(
            &p,
            &args(&["sync", "--json"], slow_first),
            &args(&["sync", "--json"], !slow_first),
        )
        .await;
        assert_eq!(a["status"], "complete", "{a}");
        assert_eq!(b["status"], "complete", "{b}");
        assert_each_version_once(&p.lake, "Account");
    }
    edits.stop().await;
    settle_and_check(emu, &p, start_point).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_airflow_plans_of_one_state_run_together_write_each_version_once() {
    let (emu, p, start_point) = incremental_pipeline(30).await;
    let edits = edits(&emu);
    for _ in 0..2 {
        let plan1 = json(&run(&p, &["plan", "sync", "--json"]).await);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let plan2 = json(&run(&p, &["plan", "sync", "--json"]).await);
        let specs: Vec<String> = [&plan1, &plan2]
            .iter()
            .flat_map(|p| p["chunks"].as_array().unwrap().clone())
            .map(|c| c["chunk"].as_str().unwrap().to_string())
            .collect();
        assert!(specs.len() >= 2, "{plan1} {plan2}");
        let runs = specs.iter().map(|s| {
            let p = &p;
            async move { run(p, &["run-chunk", "--json", s]).await }
        });
        for out in futures::future::join_all(runs).await {
            let code = out.status.code();
            assert!(
                code == Some(0) || code == Some(3),
                "run-chunk: {}",
                text(&out)
            );
        }
        assert_each_version_once(&p.lake, "Account");
    }
    edits.stop().await;
    settle_and_check(emu, &p, start_point).await;
}

/// A historical lake of the anchored test data (60 days to 2025-12-31).
async fn historical_lake() -> (forcelake::emulator::RunningEmulator, Pipeline) {
    let mut cfg = emulator_config(600);
    cfg.faults.latency = Some(Duration::from_millis(20));
    let emu = start(cfg).await;
    let p = pipeline(&emu.url, ACCOUNT, "");
    json(&run(&p, &["sync", "--json"]).await);
    (emu, p)
}

fn assert_whole_truth(emu: &forcelake::emulator::RunningEmulator, p: &Pipeline) {
    let v = assert_each_version_once(&p.lake, "Account");
    let end = forcelake::timefmt::day_start("2026-01-01".parse().unwrap()).timestamp_millis();
    let n = assert_truth_in(emu, &v, i64::MIN, end);
    assert_eq!(v.len(), n, "the lake holds versions the emulator does not");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_forced_backfills_of_one_range_at_once_replace_each_day_once() {
    let (emu, p) = historical_lake().await;
    let bf = [
        "backfill",
        "--object",
        "Account",
        "--start",
        "2025-12-01",
        "--end",
        "2025-12-11",
        "--force",
        "--json",
    ];
    for slow_first in [true, false] {
        let (a, b) = race(&p, &args(&bf, slow_first), &args(&bf, !slow_first)).await;
        assert_ne!(a["backfill_id"], b["backfill_id"]);
        assert_whole_truth(&emu, &p);
    }
    // the days hold one backfill's chunks each, and status sees no gap
    let st = json(&run(&p, &["status", "--json"]).await);
    assert_eq!(
        st["objects"][0]["coverage_gaps"].as_array().unwrap().len(),
        0,
        "{st}"
    );
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_of_today_beside_incremental_runs_leaves_each_version_once() {
    let (emu, p, start_point) = incremental_pipeline(40).await;
    let edits = edits(&emu);
    let today = day(0);
    let yesterday = day(1);
    let bf = [
        "backfill",
        "--object",
        "Account",
        "--start",
        yesterday.as_str(),
        "--end",
        today.as_str(),
        "--force",
        "--json",
    ];
    for slow_first in [true, false] {
        let (_, _) = race(
            &p,
            &args(&["sync", "--json"], slow_first),
            &args(&bf, !slow_first),
        )
        .await;
        assert_each_version_once(&p.lake, "Account");
        let (_, _) = race(
            &p,
            &args(&bf, slow_first),
            &args(&["sync", "--json"], !slow_first),
        )
        .await;
        assert_each_version_once(&p.lake, "Account");
    }
    edits.stop().await;
    settle_and_check(emu, &p, start_point).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_past_the_incremental_position_is_not_fetched_again() {
    // an outage: the position stays two days back; the on-call engineer backfills the two
    // days (today's part included), then the schedule resumes
    let (emu, p, start_point) = incremental_pipeline(10).await;
    let today = day(0);
    let bf = json(
        &run(
            &p,
            &[
                "backfill",
                "--object",
                "Account",
                "--start",
                day(2).as_str(),
                "--end",
                today.as_str(),
                "--json",
            ],
        )
        .await,
    );
    let backfilled_to = ms(&bf["objects"][0]["range_end"]);
    let st = json(&run(&p, &["status", "--json"]).await);
    let pos = ms(&st["objects"][0]["incremental_position"]);
    assert!(
        pos >= backfilled_to,
        "status: position {} before the backfill's end {}",
        st["objects"][0]["incremental_position"],
        bf["objects"][0]["range_end"]
    );
    let s = json(&run(&p, &["sync", "--json"]).await);
    assert!(
        ms(&s["objects"][0]["position_before"]) >= backfilled_to,
        "{s}"
    );
    assert_each_version_once(&p.lake, "Account");
    // the same recovery while the schedule already runs: a forced backfill of the days and
    // an incremental run at once, both orders of finishing, under edits
    let edits = edits(&emu);
    let start = day(2);
    let bf = [
        "backfill",
        "--object",
        "Account",
        "--start",
        start.as_str(),
        "--end",
        today.as_str(),
        "--force",
        "--json",
    ];
    for slow_first in [true, false] {
        race(
            &p,
            &args(&bf, slow_first),
            &args(&["sync", "--json"], !slow_first),
        )
        .await;
        assert_each_version_once(&p.lake, "Account");
    }
    edits.stop().await;
    settle_and_check(emu, &p, start_point).await;
}

/// What a user's `deltalake` `optimize.compact()` does to one day: one new file with the day's
/// rows (a name forcelake never writes) added, the day's files removed, in one Delta commit.
fn compact_day(lake: &std::path::Path, object: &str, day: &str) -> String {
    let table = lake.join(object);
    let dir = table.join(format!("date={day}"));
    let live = delta_files(lake, object).unwrap();
    let olds: Vec<String> = live
        .iter()
        .filter(|f| f.starts_with(&format!("{object}/date={day}/")))
        .cloned()
        .collect();
    assert!(!olds.is_empty(), "no files in {day} to compact");
    let mut batches = vec![];
    for f in &olds {
        let file = std::fs::File::open(lake.join(f)).unwrap();
        let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        batches.extend(r.map(|b| b.unwrap()));
    }
    let name = "part-00000-5b1c0a3e-compacted-c000.zstd.parquet";
    let out = std::fs::File::create(dir.join(name)).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(out, batches[0].schema(), None).unwrap();
    for b in &batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
    let size = std::fs::metadata(dir.join(name)).unwrap().len();
    let log = table.join("_delta_log");
    let next = std::fs::read_dir(&log)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.strip_suffix(".json")?.parse::<u64>().ok()
        })
        .max()
        .unwrap()
        + 1;
    let now = chrono::Utc::now().timestamp_millis();
    let mut lines = vec![serde_json::json!({"add": {
        "path": format!("date={day}/{name}"), "partitionValues": {"date": day},
        "size": size, "modificationTime": now, "dataChange": false}})];
    for f in &olds {
        let rel = f.strip_prefix(&format!("{object}/")).unwrap();
        lines.push(serde_json::json!({"remove": {
            "path": rel, "deletionTimestamp": now, "dataChange": false,
            "extendedFileMetadata": false, "partitionValues": {"date": day}}}));
    }
    lines.push(serde_json::json!({"commitInfo": {"timestamp": now, "operation": "OPTIMIZE"}}));
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(log.join(format!("{next:020}.json")), body).unwrap();
    format!("{object}/date={day}/{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_replaces_a_compacted_day_whole() {
    let (emu, p) = historical_lake().await;
    let compacted = compact_day(&p.lake, "Account", "2025-12-05");
    // status sees the file no manifest names
    let st = json(&run(&p, &["status", "--json"]).await);
    let delta = &st["objects"][0]["delta"];
    assert_eq!(delta["unmanaged_files"], 1, "{st}");
    let out = run(&p, &["status"]).await;
    assert!(
        text(&out).contains("no manifest names"),
        "status says nothing of the compacted file: {}",
        text(&out)
    );
    // racing backfills of the day, both orders
    let bf = [
        "backfill",
        "--object",
        "Account",
        "--start",
        "2025-12-05",
        "--end",
        "2025-12-05",
        "--force",
        "--json",
    ];
    let (_, _) = race(&p, &args(&bf, true), &args(&bf, false)).await;
    assert!(
        !p.lake.join(&compacted).exists(),
        "the compacted file is still in the day's folder"
    );
    assert!(!delta_files(&p.lake, "Account")
        .unwrap()
        .contains(&compacted));
    assert_whole_truth(&emu, &p);
    // compacted again, then the other order of finishing
    let compacted = compact_day(&p.lake, "Account", "2025-12-05");
    let (_, _) = race(&p, &args(&bf, false), &args(&bf, true)).await;
    assert!(!p.lake.join(&compacted).exists());
    assert_whole_truth(&emu, &p);
    let st = json(&run(&p, &["status", "--json"]).await);
    assert_eq!(st["objects"][0]["delta"]["unmanaged_files"], 0, "{st}");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_refuses_another_orgs_run_before_writing() {
    let (emu, p) = historical_lake().await;
    for m in manifests(&p.lake, "Account") {
        assert_eq!(
            m["org_id"],
            forcelake::emulator::DEMO_ORG_ID,
            "manifest without its org: {m}"
        );
    }
    let mut sandbox = emulator_config(50);
    sandbox.org_id = "00D7x000000SBOXEAA".into();
    let sandbox = start(sandbox).await;
    let lake = p.lake.display().to_string();
    let q = pipeline_at(&sandbox.url, ACCOUNT, "", Some(&lake), &[]);
    let before = walk(&p.lake).len();
    for cmd in [
        vec!["sync", "--json"],
        vec![
            "backfill",
            "--object",
            "Account",
            "--start",
            "2025-12-01",
            "--end",
            "2025-12-02",
        ],
    ] {
        let out = run(&q, &cmd).await;
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let t = text(&out);
        assert!(
            t.contains("00D7x000000SBOXEAA") && t.contains(forcelake::emulator::DEMO_ORG_ID),
            "{t}"
        );
    }
    assert_eq!(walk(&p.lake).len(), before, "the refused runs wrote files");
    sandbox.stop().await;
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_chunk_shows_in_status_until_it_is_rerun() {
    let emu = start(emulator_config(400)).await;
    let p = pipeline(&emu.url, ACCOUNT, "");
    let plan = json(&run(&p, &["plan", "sync", "--json"]).await);
    let spec = plan["chunks"][0]["chunk"].as_str().unwrap().to_string();
    kill_while_held(
        &emu,
        &p,
        &["run-chunk", spec.as_str()],
        1,
        Duration::from_millis(200),
    )
    .await;
    let st = json(&run(&p, &["status", "--json"]).await);
    assert_eq!(st["objects"][0]["chunks"]["failed"], 1, "{st}");
    json(&run(&p, &["run-chunk", "--json", spec.as_str()]).await);
    let st = json(&run(&p, &["status", "--json"]).await);
    assert_eq!(st["objects"][0]["chunks"]["failed"], 0, "{st}");
    emu.stop().await;
}
