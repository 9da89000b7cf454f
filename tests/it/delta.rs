//! The Delta table of each object (SPEC §3 "The Delta table"): equal to the live manifests
//! after every kind of run, made good by the next run when a commit is missing, shared by
//! racing workers, checkpointed, and a field named `Date` next to the `date` partition column.

use crate::util::*;

const ACCOUNT: &str = "[[objects]]\nname = \"Account\"\n";

/// The commits of the log, in order (no gaps): per version, the chunks whose files it adds
/// (from the file names) and the chunk ids it records as `txn` app ids.
fn log_versions(lake: &std::path::Path, object: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let log = lake.join(object).join("_delta_log");
    let mut v = vec![];
    for n in 0.. {
        let Ok(text) = std::fs::read_to_string(log.join(format!("{n:020}.json"))) else {
            break;
        };
        let actions: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let mut added: Vec<String> = actions
            .iter()
            .filter_map(|a| a["add"]["path"].as_str())
            .map(|p| {
                let name = p.rsplit('/').next().unwrap().trim_end_matches(".parquet");
                let (rest, _) = name.rsplit_once('-').unwrap();
                rest.rsplit_once('-').unwrap().0.to_string()
            })
            .collect();
        added.dedup();
        let apps = actions
            .iter()
            .filter_map(|a| a["txn"]["appId"].as_str().map(str::to_string))
            .collect();
        v.push((added, apps));
    }
    v
}

/// The chunks whose files each commit added, over the whole log.
fn committed_chunks(lake: &std::path::Path, object: &str) -> Vec<String> {
    log_versions(lake, object)
        .into_iter()
        .flat_map(|(a, _)| a)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_without_its_delta_commits_is_caught_up_once_and_never_twice() {
    let emu = start(recent(11, 300, 40)).await;
    let p = pipeline(
        &emu.url,
        ACCOUNT,
        &format!(
            "end_date = \"{}\"\nconcurrency = 3\nwindow_records = 40",
            day(-1)
        ),
    );
    // Parquet and manifests only: as if every Delta commit had been prevented by a crash.
    let none = ["--set", "destination.table_format=none"];
    let o = run(&p, &[&["sync"][..], &none].concat()).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let b = [
        "backfill",
        "--object",
        "Account",
        "--start",
        &day(20),
        "--end",
        &day(18),
    ];
    let o = run(&p, &[&b[..], &none].concat()).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(delta_files(&p.lake, "Account").is_none());

    // status says how far behind the (absent) table is
    let st = json(&run(&p, &["status", "--json"]).await);
    let behind = st["objects"][0]["delta"]["behind_chunks"].as_u64().unwrap();
    assert!(behind > 10, "{st}");
    assert!(st["objects"][0]["delta"]["version"].is_null(), "{st}");

    // The next writing run makes every missing commit (one per live chunk, with its chunk id)
    // before it fetches anything new; superseded chunks never enter the table.
    let o = run(&p, &["sync"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_files_match_manifests(&p.lake, "Account");
    let versions = log_versions(&p.lake, "Account");
    let apps = committed_chunks(&p.lake, "Account");
    assert_eq!(
        versions.len() as u64,
        behind + 1,
        "the table's creation, then one commit per chunk"
    );
    for (added, txns) in &versions[1..] {
        assert_eq!(added.len(), 1);
        assert!(
            txns.contains(&added[0]),
            "each commit records its chunk id: {txns:?}"
        );
    }
    let unique: std::collections::HashSet<&String> = apps.iter().collect();
    assert_eq!(unique.len(), apps.len(), "a chunk committed twice");
    let superseded = superseded(&manifests(&p.lake, "Account"));
    assert!(!superseded.is_empty());
    assert!(apps.iter().all(|a| !superseded.contains(a)));

    // level: a rerun commits nothing more
    let top = versions.len();
    let st = json(&run(&p, &["status", "--json"]).await);
    assert_eq!(st["objects"][0]["delta"]["behind_chunks"], 0, "{st}");
    assert_eq!(st["objects"][0]["delta"]["version"], top as u64 - 1, "{st}");
    let o = run(&p, &["sync"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(log_versions(&p.lake, "Account").len(), top);
    assert!(text(&run(&p, &["status"]).await).contains("level"));
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_racing_workers_on_different_days_all_commit_to_one_table() {
    let emu = start(recent(12, 400, 30)).await;
    let p = pipeline(
        &emu.url,
        ACCOUNT,
        &format!("end_date = \"{}\"\nwindow_records = 1", day(-1)),
    );
    // The history without a table: the eight workers race to create it, to catch it up
    // with the history and to commit their own days, each of which supersedes a history day.
    let o = run(&p, &["sync", "--set", "destination.table_format=none"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let plan = json(
        &run(
            &p,
            &[
                "plan",
                "backfill",
                "--object",
                "Account",
                "--start",
                &day(12),
                "--end",
                &day(5),
                "--json",
            ],
        )
        .await,
    );
    let specs: Vec<String> = plan["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["chunk"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(specs.len(), 8, "{plan}");
    let args: Vec<[&str; 3]> = specs
        .iter()
        .map(|s| ["run-chunk", s.as_str(), "--json"])
        .collect();
    let outs = futures::future::join_all(args.iter().map(|a| run(&p, a))).await;
    for o in &outs {
        assert_eq!(o.status.code(), Some(0), "{}", text(o));
        assert_eq!(json(o)["outcome"], "committed", "{}", text(o));
    }
    assert_files_match_manifests(&p.lake, "Account");
    // every chunk's Delta commit made once, by its worker or by another's catch-up
    let apps = committed_chunks(&p.lake, "Account");
    let unique: std::collections::HashSet<&String> = apps.iter().collect();
    assert_eq!(
        unique.len(),
        apps.len(),
        "a chunk committed twice: {apps:?}"
    );
    let ms = manifests(&p.lake, "Account");
    let backfill_days: Vec<&str> = ms
        .iter()
        .filter(|m| m["kind"] == "backfill" && m["rows"].as_u64() > Some(0))
        .map(|m| m["chunk_id"].as_str().unwrap())
        .collect();
    assert_eq!(backfill_days.len(), 8);
    for c in &backfill_days {
        assert!(
            unique.contains(&c.to_string()),
            "{c} has no Delta commit: {apps:?}"
        );
    }
    // each backfilled day is in the table once: its history chunk went out with it
    let table = delta_files(&p.lake, "Account").unwrap();
    for f in &table {
        assert!(live_files(&ms).contains(f));
    }
    assert!(superseded(&ms).len() >= 8);
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_checkpointed_every_hundred_commits() {
    // ~390 days with records → a few hundred commits (days that finish together share one)
    // → checkpoints every 100
    let emu = start(recent(13, 1000, 400)).await;
    let p = pipeline(
        &emu.url,
        ACCOUNT,
        &format!("end_date = \"{}\"\nconcurrency = 4", day(-1)),
    );
    let o = run(&p, &["sync"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let log = p.lake.join("Account/_delta_log");
    let last: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(log.join("_last_checkpoint")).unwrap())
            .unwrap();
    let v = last["version"].as_u64().unwrap();
    let top = log_versions(&p.lake, "Account").len() as u64 - 1;
    assert!(top > 120, "{top} commits");
    assert!(
        v >= 100 && top - v < forcelake::sink::delta::CHECKPOINT_EVERY,
        "checkpoint {v}, top {top}"
    );
    assert!(log.join(format!("{v:020}.checkpoint.parquet")).is_file());
    // the table read through the checkpoint equals the manifests; the day glob skips _delta_log
    assert_files_match_manifests(&p.lake, "Account");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_named_date_is_written_as_date_underscore_beside_the_partition_column() {
    let emu = start(recent(14, 40, 5)).await;
    emu.add_field("Account", "Date", "date", false);
    emu.insert_records(
        "Account",
        10,
        chrono::Utc::now().timestamp_millis() - 3_600_000,
    );
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Account\"\nfields = [\"Id\", \"Name\", \"Date\", \"LastModifiedDate\"]\n",
        &format!("end_date = \"{}\"", day(-1)),
    );
    let o = run(&p, &["sync"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let b = sorted_by_id(&p.lake, "Account");
    let f = b.schema().field_with_name("Date_").unwrap().clone();
    assert_eq!(
        f.metadata().get("salesforce.name").map(String::as_str),
        Some("Date")
    );
    assert_eq!(f.data_type(), &arrow::datatypes::DataType::Date32);
    assert!(b.schema().field_with_name("Date").is_err());
    assert_eq!(b.num_rows(), 50);
    let dates = b.column_by_name("Date_").unwrap();
    assert!(
        dates.null_count() < dates.len(),
        "the new records carry a Date value"
    );
    assert_files_match_manifests(&p.lake, "Account");
    emu.stop().await;
}
