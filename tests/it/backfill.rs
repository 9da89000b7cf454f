//! Backfills: supersede-then-delete day partitions beside incremental runs, resume after
//! kills, one commit among racing workers, off-peak windows, status.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::datatypes::TimestampMillisecondType;
use chrono::Utc;
use forcelake::emulator::data::Cell;
use forcelake::emulator::EmulatorConfig;

use crate::util::*;

const ACCOUNT: &str = "[[objects]]\nname = \"Account\"\nfields = [\"Id\", \"Name\", \"IsDeleted\", \"NumberOfEmployees\", \"LastModifiedDate\"]\n";

fn recent(rows: usize) -> EmulatorConfig {
    crate::util::recent(5, rows, 20)
}

/// (day partition, Id, cursor ms) of every row.
fn rows(p: &Pipeline, object: &str) -> Vec<(String, String, i64)> {
    let mut v = vec![];
    for (d, b) in read_object(&p.lake, object) {
        let ids = b.column_by_name("Id").unwrap().as_string::<i32>().clone();
        let lmd = b
            .column_by_name("LastModifiedDate")
            .unwrap()
            .as_primitive::<TimestampMillisecondType>()
            .clone();
        for r in 0..b.num_rows() {
            v.push((d.clone(), ids.value(r).to_string(), lmd.value(r)));
        }
    }
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_beside_incremental_with_mutations_replaces_days_and_loses_nothing() {
    let emu = start(recent(300)).await;
    let p = pipeline(
        &emu.url,
        ACCOUNT,
        "mode = \"incremental\"\nlag_s = 1\nconcurrency = 2",
    );
    let s = json(
        &run_env(
            &p,
            &["sync", "--json"],
            &[(
                "FORCELAKE_NOW",
                forcelake::timefmt::rfc3339(Utc::now() - chrono::Duration::days(4)),
            )],
        )
        .await,
    );
    let start_point = s["objects"][0]["incremental_start"]
        .as_str()
        .unwrap()
        .to_string();
    json(
        &run(
            &p,
            &[
                "sync",
                "--json",
                "--set",
                "sync.mode=historical",
                "--set",
                &format!("sync.end_date={start_point}"),
            ],
        )
        .await,
    );
    let historical_ids: HashSet<String> = manifests(&p.lake, "Account")
        .iter()
        .filter(|m| m["kind"] == "historical")
        .map(|m| m["chunk_id"].as_str().unwrap().to_string())
        .collect();

    // Incremental and backfill at the same time, in two processes, while records change.
    let m = emu.start_mutations(
        &["Account"],
        Duration::from_millis(30),
        Duration::from_millis(300),
    );
    let (first, last) = (day(8), day(1));
    let bf_args = [
        "backfill",
        "--json",
        "--object",
        "Account",
        "--start",
        first.as_str(),
        "--end",
        last.as_str(),
    ];
    let (inc, bf) = tokio::join!(run(&p, &["sync", "--json"]), run(&p, &bf_args));
    let bf = json(&bf);
    json(&inc);
    assert_eq!(bf["status"], "complete", "{bf}");
    let inc2 = run(&p, &["sync", "--json"]);
    json(&inc2.await);
    m.stop().await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    json(&run(&p, &["sync", "--json"]).await);

    let truth = emu.dataset();
    let t = truth.table("Account").unwrap();
    let (id_i, lmd_i) = (
        t.def.field_index("Id").unwrap(),
        t.def.field_index("LastModifiedDate").unwrap(),
    );
    let lake = rows(&p, "Account");
    // Nothing lost: the latest version of every record equals the final truth.
    let mut latest: HashMap<&str, i64> = HashMap::new();
    for (_, id, ms) in &lake {
        let e = latest.entry(id.as_str()).or_insert(*ms);
        *e = (*e).max(*ms);
    }
    for r in &t.rows {
        let (Cell::Str(id), Cell::DateTime(ms)) = (&r[id_i], &r[lmd_i]) else {
            panic!()
        };
        assert_eq!(
            latest.get(id.as_str()),
            Some(ms),
            "Account {id}: latest version"
        );
    }
    // Backfilled days before today: only backfill rows remain, each version once, and every
    // record whose final cursor is in the day is there.
    let ms = manifests(&p.lake, "Account");
    let superseded: HashSet<String> = superseded(&ms);
    for d in 1..=8 {
        let dd = day(d);
        let in_day: Vec<&(String, String, i64)> = lake.iter().filter(|r| r.0 == dd).collect();
        let uniq: HashSet<(&str, i64)> = in_day.iter().map(|r| (r.1.as_str(), r.2)).collect();
        // Days before the incremental start point hold each version once. Later days may also
        // hold a version an incremental chunk committed while the backfill ran (kept, by design).
        if d >= 5 {
            assert_eq!(uniq.len(), in_day.len(), "{dd}: a version is written twice");
        }
        let live: Vec<_> = ms
            .iter()
            .filter(|m| {
                m["day"] == dd.as_str() && !superseded.contains(m["chunk_id"].as_str().unwrap())
            })
            .collect();
        assert!(
            live.iter().all(|m| m["kind"] == "backfill"
                || m["kind"] == "incremental"
                || m["kind"] == "deletes"),
            "{dd}: a historical chunk survived the backfill"
        );
        let final_in_day: HashSet<&str> = t
            .rows
            .iter()
            .filter_map(|r| match (&r[id_i], &r[lmd_i]) {
                (Cell::Str(id), Cell::DateTime(ms))
                    if chrono::DateTime::from_timestamp_millis(*ms)
                        .unwrap()
                        .format("%Y-%m-%d")
                        .to_string()
                        == dd =>
                {
                    Some(id.as_str())
                }
                _ => None,
            })
            .collect();
        let got: HashSet<&str> = in_day.iter().map(|r| r.1.as_str()).collect();
        assert!(
            final_in_day.is_subset(&got),
            "{dd}: records missing from the backfilled day"
        );
    }
    assert!(
        superseded.iter().any(|s| historical_ids.contains(s)),
        "the backfill superseded historical chunks"
    );
    assert_files_match_manifests(&p.lake, "Account");
    // The incremental position never moved because of the backfill: it is its own.
    let st = json(&run(&p, &["status", "--json"]).await);
    let b = &st["backfills"][0];
    assert_eq!(b["chunks"]["pending"], 0, "{b}");
    assert_eq!(b["chunks"]["committed"], 8);
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_backfills_resume_to_the_lake_of_an_uninterrupted_one() {
    let mut cfg = recent(600);
    cfg.faults.latency = Some(Duration::from_millis(10));
    let emu = start(cfg).await;
    let args = [
        "backfill",
        "--object",
        "Account",
        "--start",
        &day(15),
        "--end",
        &day(2),
    ]
    .map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let end = format!("sync.end_date={}", day(1));

    let reference = pipeline(&emu.url, ACCOUNT, "concurrency = 3\nwindow_records = 5");
    json(&run(&reference, &["sync", "--json", "--set", &end]).await);
    let s = run(&reference, &args).await;
    assert_eq!(s.status.code(), Some(0), "{}", text(&s));

    let p = pipeline(&emu.url, ACCOUNT, "concurrency = 3\nwindow_records = 5");
    json(&run(&p, &["sync", "--json", "--set", &end]).await);
    let count = |p: &Pipeline| {
        manifests(&p.lake, "Account")
            .iter()
            .filter(|m| m["kind"] == "backfill")
            .count()
    };
    // killed while a query answer is held (at most k − 1 answered each time: 11 of 14 chunks)
    for (i, k) in [2u64, 4, 3, 5].into_iter().enumerate() {
        kill_while_held(&emu, &p, &args, k, Duration::from_millis(3 + 9 * i as u64)).await;
        assert_delta_shows_only_committed(&p.lake, "Account");
    }
    let s = json(&run(&p, &[&args[..], &["--json"]].concat()).await);
    assert_eq!(s["status"], "complete", "{s}");
    assert_eq!(count(&p), 14);
    assert_eq!(
        rows(&p, "Account"),
        rows(&reference, "Account"),
        "the lake differs from an uninterrupted backfill's"
    );
    assert_files_match_manifests(&p.lake, "Account");
    // one plan, resumed each time
    assert_eq!(
        std::fs::read_dir(p.lake.join("_forcelake/backfills"))
            .unwrap()
            .count(),
        1
    );
    // rerun: nothing left; --force starts a new backfill that redoes the days
    let s = json(&run(&p, &[&args[..], &["--json"]].concat()).await);
    assert_eq!(s["objects"][0]["chunks_committed"], 0);
    let s = json(&run(&p, &[&args[..], &["--json", "--force"]].concat()).await);
    assert_eq!(s["objects"][0]["chunks_committed"], 14);
    assert_eq!(rows(&p, "Account"), rows(&reference, "Account"));
    assert_files_match_manifests(&p.lake, "Account");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_workers_on_one_chunk_commit_once() {
    let emu = start(recent(800)).await;
    let p = pipeline(&emu.url, ACCOUNT, "");
    let plan = json(
        &run(
            &p,
            &[
                "plan",
                "backfill",
                "--object",
                "Account",
                "--start",
                &day(5),
                "--end",
                &day(5),
                "--json",
            ],
        )
        .await,
    );
    let chunks = plan["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0]["kind"], "backfill");
    let spec = chunks[0]["chunk"].as_str().unwrap().to_string();
    let rc_args = ["run-chunk", spec.as_str(), "--json"];
    let outs = futures::future::join_all((0..4).map(|_| run(&p, &rc_args))).await;
    let outcomes: Vec<String> = outs
        .iter()
        .map(|o| json(o)["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| *o == "committed").count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| *o == "already_committed")
            .count(),
        3,
        "{outcomes:?}"
    );
    let truth = emu.dataset();
    let t = truth.table("Account").unwrap();
    let d = day(5);
    let from = forcelake::timefmt::DateOrTime::parse(&d).unwrap();
    let want = truth_rows(
        t,
        "LastModifiedDate",
        from.as_start().timestamp_millis(),
        from.as_end().timestamp_millis(),
    )
    .len();
    let got = rows(&p, "Account");
    assert_eq!(got.len(), want);
    assert_eq!(
        got.iter().map(|r| &r.1).collect::<HashSet<_>>().len(),
        want,
        "duplicates"
    );
    assert_files_match_manifests(&p.lake, "Account");
    // `plan backfill` again: the same plan, nothing left to do
    let again = json(
        &run(
            &p,
            &[
                "plan",
                "backfill",
                "--object",
                "Account",
                "--start",
                &day(5),
                "--end",
                &day(5),
                "--json",
            ],
        )
        .await,
    );
    assert_eq!(again["backfill_id"], plan["backfill_id"]);
    assert_eq!(again["chunks"].as_array().unwrap().len(), 0);
    // plan sync lists historical chunks as specs run-chunk accepts
    let ps = json(
        &run(
            &p,
            &[
                "plan",
                "sync",
                "--json",
                "--set",
                &format!("sync.start_date={}", day(3)),
                "--set",
                &format!("sync.end_date={}", day(2)),
            ],
        )
        .await,
    );
    let specs: Vec<&str> = ps["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["chunk"].as_str().unwrap())
        .collect();
    // two days with few records: one query window covering both
    assert_eq!(specs.len(), 1, "{ps}");
    assert_eq!(ps["chunks"][0]["days"].as_array().unwrap().len(), 2, "{ps}");
    let out = json(&run(&p, &["run-chunk", specs[0], "--json"]).await);
    assert_eq!(out["outcome"], "committed");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_during_and_after_a_backfill_and_a_closed_window_leaves_chunks_pending() {
    let mut cfg = recent(400);
    cfg.faults.latency = Some(Duration::from_millis(40));
    let emu = start(cfg).await;
    let p = pipeline(&emu.url, ACCOUNT, "concurrency = 1\nwindow_records = 5");

    // A window that is closed now: nothing runs, exit 0, all chunks pending, next opening given.
    let now = Utc::now();
    let (a, b) = (
        now + chrono::Duration::hours(2),
        now + chrono::Duration::hours(3),
    );
    let window = format!("{}-{}", a.format("%H:%M"), b.format("%H:%M"));
    let s = backfill_in_window(&p, 10, 1, &window, &[]).await;
    assert_eq!(s["status"], "paused", "{s}");
    assert_eq!(s["objects"][0]["chunks_pending"], 10);
    assert_eq!(s["window"]["open"], false);
    assert!(s["window"]["next_opens_at"].as_str().is_some());
    let st = json(&run(&p, &["status", "--json"]).await);
    assert_eq!(st["backfills"][0]["chunks"]["pending"], 10, "{st}");

    // Inside an open window (it crosses midnight in another zone): runs; status while it runs.
    let open = format!(
        "{}-{}",
        (now - chrono::Duration::hours(1)).format("%H:%M"),
        (now + chrono::Duration::hours(1)).format("%H:%M")
    );
    let held_before = emu.held_count();
    emu.hold_queries_from(4);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut child = spawn(
        &p,
        [
            "backfill",
            "--object",
            "Account",
            "--start",
            &day(10),
            "--end",
            &day(1),
            "--window",
            &open,
            "--tz",
            "UTC",
        ],
    );
    tokio::select! {
        _ = emu.wait_held(held_before) => {}
        s = child.wait() => panic!("the backfill ended ({s:?}) before its 4th query"),
    }
    // Status while it runs: the emulator holds the 4th query answer, so the backfill is
    // provably unfinished; the three answered chunks commit meanwhile.
    loop {
        let st = json(&run(&p, &["status", "--json"]).await);
        let b = &st["backfills"][0];
        let (c, pnd) = (
            b["chunks"]["committed"].as_u64().unwrap(),
            b["chunks"]["pending"].as_u64().unwrap(),
        );
        assert_eq!(c + pnd + b["chunks"]["failed"].as_u64().unwrap(), 10);
        assert!(
            matches!(child.try_wait(), Ok(None)),
            "the backfill ended while a request was held"
        );
        if c > 0 && pnd > 0 {
            assert!(b["progress"].as_f64().unwrap() > 0.0 && b["progress"].as_f64().unwrap() < 1.0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no chunk committed before the held request: {st}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    emu.release_held();
    assert_eq!(child.wait().await.unwrap().code(), Some(0));
    let st = json(&run(&p, &["status", "--json"]).await);
    let b = &st["backfills"][0];
    assert_eq!(b["chunks"]["committed"], 10);
    assert_eq!(b["chunks"]["pending"], 0);
    let per_day: u64 = b["rows_per_day"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(b["rows"].as_u64(), Some(per_day));
    assert_eq!(
        st["objects"][0]["rows"].as_u64(),
        Some(per_day),
        "rows per table"
    );
    assert_eq!(rows(&p, "Account").len() as u64, per_day);
    emu.stop().await;
}

/// `backfill --json` of Account from `from` to `to` days ago, inside a UTC off-peak `window`.
async fn backfill_in_window(
    p: &Pipeline,
    from: i64,
    to: i64,
    window: &str,
    extra: &[&str],
) -> serde_json::Value {
    let (start, end) = (day(from), day(to));
    let mut args = vec![
        "backfill", "--json", "--object", "Account", "--start", &start, "--end", &end, "--window",
        window, "--tz", "UTC",
    ];
    args.extend_from_slice(extra);
    json(&run(p, &args).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_sleeps_until_the_window_opens_then_runs_every_chunk() {
    use chrono::DurationRound;
    let emu = start(recent(120)).await;
    let p = pipeline(&emu.url, ACCOUNT, "concurrency = 2");
    // A window opening at a minute boundary at least 5 s away (windows are HH:MM).
    let now = Utc::now();
    let minute = chrono::Duration::minutes(1);
    let mut opens = (now + minute).duration_trunc(minute).unwrap();
    if opens - now < chrono::Duration::seconds(5) {
        opens += minute;
    }
    let window = format!(
        "{}-{}",
        opens.format("%H:%M"),
        (opens + chrono::Duration::hours(1)).format("%H:%M")
    );
    let s = backfill_in_window(&p, 3, 1, &window, &["--wait"]).await;
    assert!(
        Utc::now() >= opens,
        "returned before the window opened: {s}"
    );
    assert_eq!(s["status"], "complete", "{s}");
    assert_eq!(s["objects"][0]["chunks_committed"], 3, "{s}");
    assert_eq!(s["window"]["open"], true, "{s}");
    let backfilled: Vec<_> = manifests(&p.lake, "Account")
        .into_iter()
        .filter(|m| m["kind"] == "backfill")
        .collect();
    assert_eq!(backfilled.len(), 3);
    for m in &backfilled {
        let started = time_at(&m["started_at"]);
        assert!(
            started >= opens,
            "chunk {} started at {started}, before the window opened at {opens}",
            m["chunk_id"]
        );
    }
    emu.stop().await;
}
