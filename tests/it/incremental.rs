//! Incremental mode under the conditions that make extractors lose data: records changing
//! during the sync, late commits, equal timestamps across pages, crashes, schema changes.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, TimestampMillisecondType};
use chrono::Utc;
use forcelake::emulator::data::Cell;
use forcelake::emulator::EmulatorConfig;

use crate::util::*;

/// Data over the 30 days before today (real time), so incremental windows see it.
fn recent(rows: usize) -> EmulatorConfig {
    crate::util::recent(3, rows, 30)
}

/// (Id, cursor ms, IsDeleted, Name) of every row in the lake.
fn versions(p: &Pipeline, object: &str) -> Vec<(String, i64, Option<bool>, Option<String>)> {
    let mut v = vec![];
    for (_, b) in read_object(&p.lake, object) {
        let ids = b.column_by_name("Id").unwrap().as_string::<i32>().clone();
        let lmd = b
            .column_by_name("LastModifiedDate")
            .unwrap()
            .as_primitive::<TimestampMillisecondType>()
            .clone();
        let del = b
            .column_by_name("IsDeleted")
            .map(|c| c.as_boolean().clone());
        let name = b
            .column_by_name("Name")
            .map(|c| c.as_string::<i32>().clone());
        for r in 0..b.num_rows() {
            v.push((
                ids.value(r).to_string(),
                lmd.value(r),
                del.as_ref().map(|d| d.value(r)),
                name.as_ref()
                    .and_then(|n| (!n.is_null(r)).then(|| n.value(r).to_string())),
            ));
        }
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn historical_then_incremental_runs_during_mutations_end_at_the_truth_exactly_once() {
    let emu = start(recent(250)).await;
    let objects = "[[objects]]\nname = \"Account\"\n\n[[objects]]\nname = \"Invoice__c\"\nfields = [\"Id\", \"Name\", \"IsDeleted\", \"Amount__c\", \"LastModifiedDate\"]\n";
    let p = pipeline(
        &emu.url,
        objects,
        "mode = \"incremental\"\nlag_s = 1\nconcurrency = 3",
    );

    // 1. The first incremental run records the start point (10 days ago here) and syncs nothing.
    let s = json(
        &run_env(
            &p,
            &["sync", "--json"],
            &[("FORCELAKE_NOW", ago(chrono::Duration::days(10)))],
        )
        .await,
    );
    assert!(s["objects"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["rows"] == 0));
    let start_point = s["objects"][0]["incremental_start"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(parquet_files(&p.lake, "Account").is_empty());

    // 2. One historical sync up to the start point.
    let end = format!("sync.end_date={start_point}");
    json(
        &run(
            &p,
            &[
                "sync",
                "--json",
                "--set",
                "sync.mode=historical",
                "--set",
                &end,
            ],
        )
        .await,
    );

    // 3. Incremental runs while records are created, updated, soft-deleted and committed late.
    let m = emu.start_mutations(
        &["Account", "Invoice__c"],
        Duration::from_millis(25),
        Duration::from_millis(400),
    );
    for _ in 0..3 {
        let s = json(&run(&p, &["sync", "--json"]).await);
        assert_eq!(s["status"], "complete", "{s}");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let mutations = m.stop().await;
    assert!(mutations > 100, "mutations made: {mutations}");
    tokio::time::sleep(Duration::from_millis(1600)).await; // past the lag
    let s = json(&run(&p, &["sync", "--json"]).await);
    assert!(s["objects"][0]["position_after"].as_str().unwrap() > start_point.as_str());

    let truth = emu.dataset();
    for object in ["Account", "Invoice__c"] {
        let t = truth.table(object).unwrap();
        let (id_i, lmd_i, del_i, name_i) = (
            t.def.field_index("Id").unwrap(),
            t.def.field_index("LastModifiedDate").unwrap(),
            t.def.field_index("IsDeleted").unwrap(),
            t.def.field_index("Name").unwrap(),
        );
        let v = versions(&p, object);
        // no record version written twice
        let mut seen = HashSet::new();
        for (id, ms, _, _) in &v {
            assert!(
                seen.insert((id.clone(), *ms)),
                "{object} {id} version {ms} written twice"
            );
        }
        // the latest version of every record equals the emulator's final truth
        let mut latest: HashMap<&str, &(String, i64, Option<bool>, Option<String>)> =
            HashMap::new();
        for row in &v {
            let e = latest.entry(row.0.as_str()).or_insert(row);
            if row.1 > e.1 {
                *e = row;
            }
        }
        assert_eq!(
            latest.len(),
            t.rows.len(),
            "{object}: records in the lake vs the emulator"
        );
        let mut deleted = 0;
        for r in &t.rows {
            let Cell::Str(id) = &r[id_i] else { panic!() };
            let got = latest
                .get(id.as_str())
                .unwrap_or_else(|| panic!("{object} {id} missing from the lake"));
            let Cell::DateTime(ms) = r[lmd_i] else {
                panic!()
            };
            assert_eq!(got.1, ms, "{object} {id}: latest LastModifiedDate");
            assert_eq!(
                got.2,
                Some(r[del_i] == Cell::Bool(true)),
                "{object} {id}: IsDeleted"
            );
            if r[del_i] == Cell::Bool(true) {
                deleted += 1;
            }
            let name = match &r[name_i] {
                Cell::Str(s) => Some(s.clone()),
                _ => None,
            };
            assert_eq!(got.3, name, "{object} {id}: Name");
        }
        assert!(
            deleted > 0,
            "{object}: soft-deleted records reach the lake with IsDeleted = true"
        );
        assert_files_match_manifests(&p.lake, object);
    }

    // status reports the position; historical + incremental leave no coverage gap
    let st = json(&run(&p, &["status", "--json"]).await);
    for o in st["objects"].as_array().unwrap() {
        assert!(o["incremental_position"].as_str().is_some(), "{o}");
        assert_eq!(o["coverage_gaps"].as_array().unwrap().len(), 0, "{o}");
    }
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_records_with_one_timestamp_across_pages_arrive_once() {
    let mut cfg = recent(0);
    cfg.gen.rows.insert("Case".into(), 0);
    let emu = start(cfg).await;
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Case\"\n",
        "mode = \"incremental\"\nlag_s = 1",
    );
    json(
        &run_env(
            &p,
            &["sync", "--json"],
            &[("FORCELAKE_NOW", ago(chrono::Duration::hours(2)))],
        )
        .await,
    );
    let ts = (Utc::now() - chrono::Duration::minutes(30)).timestamp_millis() / 1000 * 1000;
    emu.insert_records("Case", 5000, ts);
    let s = json(&run(&p, &["sync", "--json"]).await);
    assert_eq!(s["objects"][0]["rows"], 5000, "{s}");
    let v = versions(&p, "Case");
    assert_eq!(v.len(), 5000);
    assert_eq!(
        v.iter().map(|r| &r.0).collect::<HashSet<_>>().len(),
        5000,
        "duplicates across the page boundaries"
    );
    assert!(v.iter().all(|r| r.1 == ts));
    // one chunk with the rows, three pages of 2000/2000/1000 (when the window crosses
    // midnight, an empty part of yesterday is a chunk of its own: the manifests of the window
    // share its three requests)
    let all = manifests(&p.lake, "Case");
    let ms: Vec<_> = all
        .iter()
        .filter(|m| m["rows"].as_u64() == Some(5000))
        .collect();
    assert_eq!(ms.len(), 1);
    let window: u64 = all
        .iter()
        .filter(|m| m["soql"] == ms[0]["soql"])
        .map(|m| m["api_requests"].as_u64().unwrap())
        .sum();
    assert_eq!(window, 3, "{all:?}");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_committed_record_is_picked_up_within_the_lag_and_missed_without_it() {
    let emu = start(recent(20)).await;
    let objects = "[[objects]]\nname = \"Opportunity\"\n";
    let lagged = pipeline(&emu.url, objects, "mode = \"incremental\"\nlag_s = 3");
    let no_lag = pipeline(&emu.url, objects, "mode = \"incremental\"\nlag_s = 0");
    let env = [("FORCELAKE_NOW", ago(chrono::Duration::hours(1)))];
    json(&run_env(&lagged, &["sync", "--json"], &env).await);
    json(&run_env(&no_lag, &["sync", "--json"], &env).await);
    json(&run(&lagged, &["sync", "--json"]).await);
    let t0 = Utc::now().timestamp_millis();
    json(&run(&no_lag, &["sync", "--json"]).await);
    // Committed now, with a cursor value 1 s in the past: after the lag-0 window's end.
    emu.insert_records("Opportunity", 1, t0 - 1000);
    let late_id = emu
        .dataset()
        .table("Opportunity")
        .unwrap()
        .rows
        .last()
        .map(|r| match &r[0] {
            Cell::Str(s) => s.clone(),
            _ => String::new(),
        })
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    json(&run(&lagged, &["sync", "--json"]).await);
    json(&run(&no_lag, &["sync", "--json"]).await);
    let has = |p: &Pipeline| versions(p, "Opportunity").iter().any(|r| r.0 == late_id);
    assert!(
        has(&lagged),
        "lag_s = 3 picks up a record committed 1 s late"
    );
    assert!(
        !has(&no_lag),
        "lag_s = 0 misses it (this is why the lag exists)"
    );
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_incremental_windows_resume_without_loss_or_duplicates() {
    let mut cfg = recent(500);
    cfg.faults.latency = Some(Duration::from_millis(8));
    let emu = start(cfg).await;
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Account\"\n\n[[objects]]\nname = \"Contact\"\n",
        "mode = \"incremental\"\nlag_s = 1\nconcurrency = 3\nwindow_records = 5",
    );
    let s = json(
        &run_env(
            &p,
            &["sync", "--json"],
            &[("FORCELAKE_NOW", ago(chrono::Duration::days(25)))],
        )
        .await,
    );
    let start_point = time_at(&s["objects"][0]["incremental_start"]).timestamp_millis();
    // killed while a query answer is held (at most k − 1 answered each time: 40 of 50 chunks)
    for (i, k) in [8u64, 12, 12, 12].into_iter().enumerate() {
        kill_while_held(
            &emu,
            &p,
            &["sync"],
            k,
            Duration::from_millis(2 + 11 * i as u64),
        )
        .await;
    }
    let s = json(&run(&p, &["sync", "--json"]).await);
    let truth = emu.dataset();
    for (k, object) in ["Account", "Contact"].iter().enumerate() {
        let pos = time_at(&s["objects"][k]["position_after"]).timestamp_millis();
        let want: HashSet<String> = truth_rows(
            truth.table(object).unwrap(),
            "LastModifiedDate",
            start_point,
            pos,
        )
        .iter()
        .map(|r| match &r[0] {
            Cell::Str(s) => s.clone(),
            _ => String::new(),
        })
        .collect();
        let v = versions(&p, object);
        let got: HashSet<String> = v.iter().map(|r| r.0.clone()).collect();
        assert_eq!(v.len(), got.len(), "{object}: duplicates after kills");
        assert_eq!(got, want, "{object}: lost or extra records after kills");
        assert_files_match_manifests(&p.lake, object);
    }
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_position_and_a_coverage_gap() {
    let emu = start(recent(100)).await;
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Contact\"\n",
        "mode = \"incremental\"\nlag_s = 0",
    );
    let s = json(
        &run_env(
            &p,
            &["sync", "--json"],
            &[("FORCELAKE_NOW", ago(chrono::Duration::days(5)))],
        )
        .await,
    );
    let start_point = s["objects"][0]["incremental_start"]
        .as_str()
        .unwrap()
        .to_string();
    // historical that stops short of the start point: a gap between them
    let (a, b) = (
        format!("sync.start_date={}", day(20)),
        format!("sync.end_date={}", day(10)),
    );
    json(
        &run(
            &p,
            &[
                "sync",
                "--json",
                "--set",
                "sync.mode=historical",
                "--set",
                &a,
                "--set",
                &b,
            ],
        )
        .await,
    );
    let st = json(&run(&p, &["status", "--json"]).await);
    let o = &st["objects"][0];
    assert_eq!(
        o["incremental_position"].as_str(),
        Some(start_point.as_str())
    );
    let gaps = o["coverage_gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{o}");
    assert_eq!(
        gaps[0]["start"].as_str().unwrap(),
        format!("{}T00:00:00Z", day(9))
    );
    assert_eq!(gaps[0]["end"].as_str(), Some(start_point.as_str()));
    // the text form says it too
    let out = run(&p, &["status"]).await;
    assert!(text(&out).contains(&start_point), "{}", text(&out));
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_and_retyped_fields_are_reported_and_files_stay_readable() {
    let emu = start(recent(60)).await;
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Account\"\n",
        "mode = \"incremental\"\nlag_s = 1",
    );
    json(
        &run_env(
            &p,
            &["sync", "--json"],
            &[("FORCELAKE_NOW", ago(chrono::Duration::hours(3)))],
        )
        .await,
    );
    emu.insert_records(
        "Account",
        30,
        (Utc::now() - chrono::Duration::hours(2)).timestamp_millis(),
    );
    json(&run(&p, &["sync", "--json"]).await);
    let first_hash = manifests(&p.lake, "Account")
        .iter()
        .find(|m| m["rows"].as_u64() > Some(0))
        .unwrap()["schema_hash"]
        .as_str()
        .unwrap()
        .to_string();

    emu.add_field("Account", "Region", "string", false);
    emu.change_field_type("Account", "NumberOfEmployees", "double");
    emu.insert_records("Account", 30, Utc::now().timestamp_millis());
    tokio::time::sleep(Duration::from_millis(1200)).await; // past the lag
                                                           // The Delta table cannot take a retyped column: that object is refused before anything
                                                           // is fetched (the run exits 1; other objects would go on).
    let before = manifests(&p.lake, "Account").len();
    let out = run(&p, &["sync"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("column NumberOfEmployees is integer in the table")
            && t.contains("double")
            && t.contains("destination.table_format = \"none\""),
        "{t}"
    );
    assert_eq!(
        manifests(&p.lake, "Account").len(),
        before,
        "nothing is written"
    );
    // Parquet and manifests only: files keep their own schema, and the change is reported.
    let s = json(
        &run(
            &p,
            &["sync", "--json", "--set", "destination.table_format=none"],
        )
        .await,
    );
    let warnings = s["objects"][0]["warnings"].to_string();
    assert!(
        warnings.contains("Account.Region is a new column"),
        "{warnings}"
    );
    assert!(
        warnings.contains("Account.NumberOfEmployees changed type from Int32 to Float64"),
        "{warnings}"
    );
    assert_eq!(s["objects"][0]["rows"], 30);

    let hashes: HashSet<String> = manifests(&p.lake, "Account")
        .iter()
        .filter(|m| m["rows"].as_u64() > Some(0))
        .map(|m| m["schema_hash"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(hashes.len(), 2);
    assert!(hashes.contains(&first_hash));
    let batches = read_object(&p.lake, "Account");
    let with_region = batches
        .iter()
        .filter(|(_, b)| b.schema().field_with_name("Region").is_ok())
        .map(|(_, b)| b.num_rows())
        .sum::<usize>();
    assert_eq!(with_region, 30);
    for (_, b) in &batches {
        let t = b
            .schema()
            .field_with_name("NumberOfEmployees")
            .unwrap()
            .data_type()
            .clone();
        let has_region = b.schema().field_with_name("Region").is_ok();
        assert_eq!(
            t,
            if has_region {
                DataType::Float64
            } else {
                DataType::Int32
            }
        );
    }
    assert_eq!(
        std::fs::read_dir(p.lake.join("_forcelake/schemas/Account"))
            .unwrap()
            .count(),
        2
    );
    emu.stop().await;
}
