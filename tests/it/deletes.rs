//! Delete capture: getDeleted's deletions (soft, hard, merges' losers) reach the change log as
//! tombstone rows, once each, whatever runs at once; its edges (more ids than one call
//! returns, a gap longer than its window, a purged delete log, objects that are not
//! replicateable) are handled and said.
//!
//! The runs move a clock (`FORCELAKE_NOW`) over the last hours, and the emulator's records
//! change at instants between them, so every run's range is closed and getDeleted (which
//! answers in whole minutes, up to the real now) covers it completely.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, Utc};
use forcelake::emulator::data::{Cell, Table};

use crate::util::*;

const OBJECTS: &str = "[[objects]]\nname = \"Account\"\n";

/// Emulator data over `days` days that end `before` now: no generated record changes (or is
/// deleted) inside the ranges these tests capture.
pub(crate) fn data(
    seed: u64,
    rows: usize,
    days: i64,
    before: Duration,
) -> forcelake::emulator::EmulatorConfig {
    let mut cfg = recent(seed, rows, days);
    cfg.gen.anchor_ms = ms(Utc::now() - before);
    cfg
}

pub(crate) fn ms(t: chrono::DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn id_at(t: &Table, idx: usize) -> String {
    t.id_of(idx)
}

/// `(Id, deletedDate ms)` of the Account tombstones in the lake, sorted.
fn account_tombstones(p: &Pipeline) -> Vec<(String, i64)> {
    tombstones(&p.lake, "Account", "LastModifiedDate")
        .into_iter()
        .map(|(i, a, _)| (i, a))
        .collect()
}

/// Deletes `n` live records for good, one every `step` ms from `at`.
fn hard_delete_live(t: &mut Table, n: i64, at: i64, step: i64) {
    for k in 0..n {
        let i = live_indices(t)[0];
        t.hard_delete(i, at + k * step);
    }
}

/// Indexes of the records that are live (not in the Recycle Bin): what a test deletes.
pub(crate) fn live_indices(t: &Table) -> Vec<usize> {
    (0..t.rows.len())
        .filter(|&i| !t.is_soft_deleted(i))
        .collect()
}

fn idx_of(t: &Table, id: &str) -> usize {
    (0..t.rows.len())
        .find(|&i| t.id_of(i) == id)
        .unwrap_or_else(|| panic!("{id} is not in the emulator"))
}

/// Ids of live records (`IsDeleted = false`) in the emulator.
pub(crate) fn live_truth(t: &Table) -> BTreeSet<String> {
    (0..t.rows.len())
        .filter(|&i| !t.is_soft_deleted(i))
        .map(|i| t.id_of(i))
        .collect()
}

/// Ids whose newest row in the change log (record versions and tombstones; a tombstone wins a
/// tie) is not deleted: what the history recipe of the README answers.
fn live_in_lake(p: &Pipeline, object: &str) -> BTreeSet<String> {
    let mut newest: BTreeMap<String, (i64, u8, bool)> = BTreeMap::new();
    let mut see = |id: String, at: i64, tomb: u8, deleted: bool| {
        let e = newest.entry(id).or_insert((i64::MIN, 0, false));
        if (at, tomb) >= (e.0, e.1) {
            *e = (at, tomb, deleted);
        }
    };
    for (_, b) in read_object(&p.lake, object) {
        use arrow::array::AsArray;
        let ids = b.column_by_name("Id").unwrap().as_string::<i32>().clone();
        let at = b
            .column_by_name("LastModifiedDate")
            .unwrap()
            .as_primitive::<arrow::datatypes::TimestampMillisecondType>()
            .clone();
        let del = b.column_by_name("IsDeleted").unwrap().as_boolean().clone();
        for r in 0..b.num_rows() {
            see(ids.value(r).to_string(), at.value(r), 0, del.value(r));
        }
    }
    for (id, at, del) in tombstones(&p.lake, object, "LastModifiedDate") {
        assert_eq!(del, Some(true), "a tombstone says IsDeleted = true");
        see(id, at, 1, true);
    }
    newest
        .into_iter()
        .filter(|(_, (_, _, deleted))| !deleted)
        .map(|(id, _)| id)
        .collect()
}

/// The emulator's delete log in `[from, to)`: (Id, deletedDate ms), sorted.
fn delete_log(t: &Table, from: i64, to: i64) -> Vec<(String, i64)> {
    let mut v: Vec<_> = t
        .deleted
        .iter()
        .filter(|(_, at)| *at >= from && *at < to)
        .cloned()
        .collect();
    v.sort();
    v
}

/// The recommended start: an incremental run at `now` records the start point, and a
/// historical sync brings everything before it. Returns the start point (RFC 3339).
pub(crate) async fn start_with_history(p: &Pipeline, now: chrono::DateTime<Utc>) -> String {
    start_with_history_args(p, now, &[]).await
}

/// [`start_with_history`] with extra arguments for both runs (`--set …`).
pub(crate) async fn start_with_history_args(
    p: &Pipeline,
    now: chrono::DateTime<Utc>,
    extra: &[&str],
) -> String {
    let mut first = vec!["sync", "--json"];
    first.extend_from_slice(extra);
    let s = json(&run_env(p, &first, &sync_at(now)).await);
    let start_point = s["objects"][0]["incremental_start"]
        .as_str()
        .unwrap()
        .to_string();
    let end = format!("sync.end_date={start_point}");
    let mut args = vec![
        "sync",
        "--json",
        "--set",
        "sync.mode=historical",
        "--set",
        &end,
    ];
    args.extend_from_slice(extra);
    json(&run(p, &args).await);
    start_point
}

/// The start point three hours ago, one record deleted for good two hours ago, then the run of
/// an hour ago: its summary.
async fn one_hard_delete_then_sync(
    emu: &forcelake::emulator::RunningEmulator,
    p: &Pipeline,
) -> serde_json::Value {
    let t0 = Utc::now();
    json(&run_env(p, &["sync", "--json"], &sync_at(t0 - Duration::hours(3))).await);
    let at = ms(t0 - Duration::hours(2));
    emu.mutate(|d| hard_delete_live(d.table_mut("Account").unwrap(), 1, at, 0));
    json(&run_env(p, &["sync", "--json"], &sync_at(t0 - Duration::hours(1))).await)
}

pub(crate) fn sync_at(now: chrono::DateTime<Utc>) -> Vec<(&'static str, String)> {
    vec![("FORCELAKE_NOW", forcelake::timefmt::rfc3339(now))]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_and_hard_deletes_undeletes_and_merges_reach_the_change_log_once_each() {
    let emu = start(data(11, 300, 20, Duration::hours(6))).await;
    let p = pipeline(&emu.url, OBJECTS, "mode = \"incremental\"\nlag_s = 60");
    let t0 = Utc::now();

    // 1. The start point five hours ago, and everything before it from a historical sync.
    let start_point = start_with_history(&p, t0 - Duration::hours(5)).await;

    // 2. Four hours ago: 5 soft deletes, 5 hard deletes of live records, 5 edits, a merge.
    let a = t0 - Duration::hours(4);
    let mut rng_ms = ms(a);
    let mut next = || {
        rng_ms += 1_000;
        rng_ms
    };
    let (hard_a, merged) = emu.mutate(|d| {
        let t = d.table_mut("Account").unwrap();
        let live = live_indices(t);
        for &i in &live[0..5] {
            t.soft_delete(i, next());
        }
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(5);
        for &i in &live[10..15] {
            t.update(i, next(), &mut rng);
        }
        t.merge(live[20], &[live[21], live[22]], next());
        let merged = (id_at(t, live[21]), id_at(t, live[22]));
        let hard: Vec<String> = live[40..45].iter().map(|&i| id_at(t, i)).collect();
        for id in &hard {
            let i = idx_of(t, id);
            t.hard_delete(i, next());
        }
        (hard, merged)
    });

    // 3. Three hours ago: a run fetches the versions and captures the deletes.
    let s = json(&run_env(&p, &["sync", "--json"], &sync_at(t0 - Duration::hours(3))).await);
    let d = &s["objects"][0]["deletes"];
    assert_eq!(d["tombstones"], 12, "5 soft + 5 hard + 2 merged: {s}");
    assert_eq!(d["requests"], 1, "{s}");
    let (from, sp) = (
        time_at(&d["from"]),
        time_at(&serde_json::json!(start_point)),
    );
    assert!(
        from <= sp && sp - from < Duration::minutes(1),
        "the first capture starts at the start point's minute: {from} vs {sp}"
    );

    // 4. Two and a half hours ago: the Recycle Bin is emptied (no new deletions: they were
    //    logged when soft-deleted), 3 soft deletes of which one is undeleted, 2 hard deletes.
    let b = t0 - Duration::minutes(150);
    let mut b_ms = ms(b);
    let undeleted = emu.mutate(|d| {
        let t = d.table_mut("Account").unwrap();
        assert!(
            t.empty_recycle_bin() >= 7,
            "5 soft-deleted + 2 merged losers, and the generated ones"
        );
        let live: Vec<String> = live_indices(t).iter().map(|&i| id_at(t, i)).collect();
        for id in &live[50..53] {
            b_ms += 1_000;
            let i = idx_of(t, id);
            t.soft_delete(i, b_ms);
        }
        b_ms += 60_000;
        let undeleted = live[50].clone();
        let i = idx_of(t, &undeleted);
        t.undelete(i, b_ms);
        for id in &live[60..62] {
            b_ms += 1_000;
            let i = idx_of(t, id);
            t.hard_delete(i, b_ms);
        }
        undeleted
    });

    // 5. An hour ago: the next run; then a whole-day backfill of the day of the deletions
    //    (it re-pulls record versions; the tombstones stay).
    let s = json(&run_env(&p, &["sync", "--json"], &sync_at(t0 - Duration::hours(1))).await);
    let d = &s["objects"][0]["deletes"];
    assert_eq!(
        d["tombstones"], 4,
        "2 soft (one was undeleted) + 2 hard: {s}"
    );
    let captured_to = time_at(&d["to"]).timestamp_millis();
    let before_backfill = tombstones(&p.lake, "Account", "LastModifiedDate");
    let day_of_b = b.format("%Y-%m-%d").to_string();
    json(
        &run_env(
            &p,
            &[
                "backfill", "--json", "--object", "Account", "--start", &day_of_b, "--end",
                &day_of_b,
            ],
            &sync_at(t0 - Duration::minutes(50)),
        )
        .await,
    );
    assert_eq!(
        tombstones(&p.lake, "Account", "LastModifiedDate"),
        before_backfill
    );

    // The tombstones are the delete log of the captured range, once each.
    let truth = emu.dataset();
    let t = truth.table("Account").unwrap();
    let from = time_at(&serde_json::Value::String(start_point.clone())).timestamp_millis();
    let log = delete_log(t, from, captured_to);
    let tombs: Vec<(String, i64)> = before_backfill
        .iter()
        .map(|(i, at, _)| (i.clone(), *at))
        .collect();
    assert_eq!(
        tombs, log,
        "tombstones = getDeleted's answer for the captured range"
    );
    assert!(
        tombs.iter().all(|(i, _)| *i != undeleted),
        "an undeleted record has no tombstone"
    );
    for id in hard_a.iter().chain([&merged.0, &merged.1]) {
        assert!(
            tombs.iter().any(|(i, _)| i == id),
            "{id} was deleted: it has a tombstone"
        );
    }

    // What the lake says is live is what Salesforce has live: hard deletes included.
    assert_eq!(live_in_lake(&p, "Account"), live_truth(t));
    assert!(live_in_lake(&p, "Account").contains(&undeleted));
    assert_files_match_manifests(&p.lake, "Account");
    let kinds: BTreeSet<String> = manifests(&p.lake, "Account")
        .iter()
        .map(|m| m["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains("deletes"), "{kinds:?}");

    // status shows the lane.
    let st = json(&run(&p, &["status", "--json"]).await);
    let d = &st["objects"][0]["deletes"];
    assert_eq!(
        d["tombstones"].as_u64().unwrap() as usize,
        tombs.len(),
        "{st}"
    );
    assert_eq!(
        time_at(&d["covered_to"]).timestamp_millis(),
        captured_to,
        "{st}"
    );
    assert!(d["unanswered"].as_array().unwrap().is_empty(), "{st}");
    let text = text(&run(&p, &["status"]).await);
    assert!(
        text.contains(&format!("deletes: {} tombstones", tombs.len())),
        "{text}"
    );

    // A rerun over the same time captures nothing again.
    let s = json(&run_env(&p, &["sync", "--json"], &sync_at(t0 - Duration::hours(1))).await);
    assert!(
        s["objects"][0]["deletes"].is_null() || s["objects"][0]["deletes"]["tombstones"] == 0,
        "{s}"
    );
    assert_eq!(
        tombstones(&p.lake, "Account", "LastModifiedDate"),
        before_backfill
    );

    // The current table is the live records, every column equal; status and the run's
    // summary say so.
    let n = assert_current_is_live(&truth, &p.lake, "Account");
    assert_eq!(n, live_truth(t).len());
    let c = &st["objects"][0]["current"];
    assert_eq!(c["rows"].as_u64(), Some(n as u64), "{st}");
    assert_eq!(c["behind_chunks"].as_u64(), Some(0), "{st}");
    assert!(
        c["url"].as_str().unwrap().ends_with("/_current/Account/"),
        "{st}"
    );
    assert!(text.contains(&format!("{n} live records")), "{text}");
    assert_eq!(
        s["objects"][0]["current"]["rows"].as_u64(),
        Some(n as u64),
        "{s}"
    );
    assert_eq!(
        s["objects"][0]["current"]["merges"].as_u64(),
        Some(0),
        "a rerun with nothing new merges nothing: {s}"
    );

    // For tests/deletes_check.py (the test command): the lake and what Salesforce has live,
    // read back by DuckDB (the README's recipes), deltalake and Polars.
    if let Ok(keep) = std::env::var("FORCELAKE_KEEP_LAKES") {
        let dest = std::path::Path::new(&keep).join("deletes");
        let _ = std::fs::remove_dir_all(&dest);
        copy_dir(&p.lake, &dest.join("lake"));
        let lmd = t.def.field_index("LastModifiedDate").unwrap();
        let name = t.def.field_index("Name").unwrap();
        let live_rows: BTreeMap<String, serde_json::Value> = (0..t.rows.len())
            .filter(|&i| !t.is_soft_deleted(i))
            .map(|i| {
                let r = &t.rows[i];
                let v = serde_json::json!({
                    "Name": match &r[name] { Cell::Str(s) => Some(s.clone()), _ => None },
                    "LastModifiedDate": match r[lmd] { Cell::DateTime(m) => Some(m), _ => None },
                });
                (t.id_of(i), v)
            })
            .collect();
        let expected = serde_json::json!({
            "object": "Account",
            "live": live_truth(t),
            "live_rows": live_rows,
            "tombstones": before_backfill.len(),
            "hard_deleted": hard_a,
        });
        std::fs::write(dest.join("expected.json"), expected.to_string()).unwrap();
    }
}

/// Copies a folder tree.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_runs_write_each_tombstone_once() {
    let emu = start(data(12, 200, 10, Duration::hours(6))).await;
    let p = pipeline(&emu.url, OBJECTS, "mode = \"incremental\"\nlag_s = 60");
    let t0 = Utc::now();
    json(&run_env(&p, &["sync", "--json"], &sync_at(t0 - Duration::hours(3))).await);
    let at = ms(t0 - Duration::hours(2));
    emu.mutate(|d| {
        let t = d.table_mut("Account").unwrap();
        hard_delete_live(t, 30, at, 60_000); // one a minute
        for (k, i) in live_indices(t).into_iter().take(10).enumerate() {
            t.soft_delete(i, at + k as i64 * 30_000 + 7);
        }
    });
    for round in 0..3 {
        let now = t0 - Duration::minutes(60 - round * 20);
        let env = sync_at(now);
        let (x, y) = tokio::join!(
            run_env(&p, &["sync", "--json"], &env),
            run_env(&p, &["sync", "--json"], &env)
        );
        json(&x);
        json(&y);
    }
    let truth = emu.dataset();
    let t = truth.table("Account").unwrap();
    let tombs = account_tombstones(&p);
    let unique: BTreeSet<_> = tombs.iter().cloned().collect();
    assert_eq!(unique.len(), tombs.len(), "a tombstone written twice");
    assert_eq!(
        tombs,
        delete_log(t, ms(t0 - Duration::hours(3)) - 120_000, ms(t0)),
        "every deletion once"
    );
    assert_eq!(tombs.len(), 40);
    assert_files_match_manifests(&p.lake, "Account");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_ids_than_one_call_returns_are_asked_for_in_halves() {
    let mut cfg = data(13, 200, 10, Duration::hours(6));
    cfg.deleted_id_limit = 4;
    let emu = start(cfg).await;
    let p = pipeline(&emu.url, OBJECTS, "mode = \"incremental\"\nlag_s = 60");
    let t0 = Utc::now();
    json(&run_env(&p, &["sync", "--json"], &sync_at(t0 - Duration::hours(3))).await);
    let at = ms(t0 - Duration::hours(2));
    emu.mutate(|d| {
        let t = d.table_mut("Account").unwrap();
        hard_delete_live(t, 20, at, 180_000); // every three minutes for an hour
    });
    let s = json(
        &run_env(
            &p,
            &["sync", "--json"],
            &sync_at(t0 - Duration::minutes(30)),
        )
        .await,
    );
    let d = &s["objects"][0]["deletes"];
    assert_eq!(d["tombstones"], 20, "{s}");
    assert!(
        d["requests"].as_u64().unwrap() >= 5,
        "20 ids at 4 per call: {s}"
    );
    let truth = emu.dataset();
    let tombs = account_tombstones(&p);
    assert_eq!(
        tombs,
        delete_log(truth.table("Account").unwrap(), at, ms(t0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_getdeleted_cannot_answer_is_on_record_and_said() {
    let emu = start(data(14, 100, 10, Duration::days(25))).await;
    let p = pipeline(&emu.url, OBJECTS, "mode = \"incremental\"\nlag_s = 60");
    let t0 = Utc::now();
    // A start point (and history) twenty days ago: getDeleted answers only the last fifteen.
    start_with_history(&p, t0 - Duration::days(20)).await;
    emu.mutate(|d| {
        let t = d.table_mut("Account").unwrap();
        let i = live_indices(t)[0];
        t.hard_delete(i, ms(t0 - Duration::days(18))); // too old to be listed
        let i = live_indices(t)[0];
        t.hard_delete(i, ms(t0 - Duration::days(2)));
    });
    let s = json(&run_env(&p, &["sync", "--json"], &sync_at(t0 - Duration::days(1))).await);
    let o = &s["objects"][0];
    assert_eq!(o["deletes"]["tombstones"], 1, "{s}");
    let warned = o["warnings"].as_array().unwrap().iter().any(|w| {
        w.as_str()
            .unwrap()
            .contains("could not be captured (unanswered: older than getDeleted's 15 days)")
    });
    assert!(warned, "{s}");
    // …so the run reconciled: the record deleted eighteen days ago is tombstoned now
    let r = &o["reconciled"];
    assert_eq!(r["tombstones"], 1, "{s}");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .starts_with("getDeleted could not answer"),
        "{s}"
    );
    assert_eq!(
        r["live"].as_u64(),
        Some(live_truth(emu.dataset().table("Account").unwrap()).len() as u64),
        "{s}"
    );
    assert_current_is_live(&emu.dataset(), &p.lake, "Account");
    let reconciles: Vec<_> = manifests(&p.lake, "Account")
        .into_iter()
        .filter(|m| m["kind"] == "reconcile")
        .collect();
    assert_eq!(reconciles.len(), 1, "{reconciles:?}");
    assert_eq!(reconciles[0]["rows"], 1);
    let unanswered: Vec<_> = manifests(&p.lake, "Account")
        .into_iter()
        .filter(|m| {
            m["kind"] == "deletes" && m["endpoint"].as_str().unwrap().starts_with("unanswered")
        })
        .collect();
    assert!(!unanswered.is_empty());
    let st = json(&run(&p, &["status", "--json"]).await);
    assert!(
        st["objects"][0]["deletes"]["unanswered"][0]
            .as_str()
            .unwrap()
            .contains("older than getDeleted's 15 days"),
        "{st}"
    );

    // A purge of the delete log after the lane's position: INVALID_REPLICATION_DATE, said.
    emu.mutate(|d| {
        d.table_mut("Account")
            .unwrap()
            .purge_delete_log(ms(t0 - Duration::hours(6)))
    });
    let s = json(&run_env(&p, &["sync", "--json"], &sync_at(t0 - Duration::hours(1))).await);
    let o = &s["objects"][0];
    assert!(
        o["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("INVALID_REPLICATION_DATE")),
        "{s}"
    );
    // …and the lane goes on from there: the next run captures again.
    emu.mutate(|d| {
        hard_delete_live(
            d.table_mut("Account").unwrap(),
            1,
            ms(t0 - Duration::minutes(40)),
            0,
        )
    });
    let s = json(
        &run_env(
            &p,
            &["sync", "--json"],
            &sync_at(t0 - Duration::minutes(10)),
        )
        .await,
    );
    assert_eq!(s["objects"][0]["deletes"]["tombstones"], 1, "{s}");
    assert_files_match_manifests(&p.lake, "Account");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_that_is_not_replicateable_is_said_and_not_asked() {
    let emu = start(data(15, 50, 5, Duration::hours(6))).await;
    emu.mutate(|d| d.table_mut("Account").unwrap().def.replicateable = false);
    let p = pipeline(&emu.url, OBJECTS, "mode = \"incremental\"\nlag_s = 60");
    let t0 = Utc::now();
    start_with_history(&p, t0 - Duration::hours(3)).await;
    let at = ms(t0 - Duration::hours(2));
    emu.mutate(|d| hard_delete_live(d.table_mut("Account").unwrap(), 2, at, 1000));
    let s = json(&run_env(&p, &["sync", "--json"], &sync_at(t0 - Duration::hours(1))).await);
    let o = &s["objects"][0];
    // not asked, so reconciled: the records deleted for good leave the current table
    assert_eq!(o["reconciled"]["tombstones"], 2, "{s}");
    assert_eq!(o["reconciled"]["reason"], "not replicateable", "{s}");
    assert_current_is_live(&emu.dataset(), &p.lake, "Account");
    let text_out = text(&run_env(&p, &["sync"], &sync_at(t0 - Duration::minutes(30))).await);
    assert!(
        text_out.contains("reconciled (not replicateable)") && text_out.contains(" 0 tombstones"),
        "{text_out}"
    );
    assert!(o["deletes"].is_null(), "{s}");
    assert!(
        o["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("not replicateable")),
        "{s}"
    );
    // getDeleted was never asked: the only tombstones are the reconciliation's
    assert!(manifests(&p.lake, "Account")
        .iter()
        .all(|m| m["kind"] != "deletes"));
    assert_eq!(tombstones(&p.lake, "Account", "LastModifiedDate").len(), 2);
    let c = json(&run(&p, &["check", "--json"]).await);
    assert_eq!(c["objects"][0]["deletes"], "not replicateable", "{c}");
    assert_eq!(c["objects"][0]["replicateable"], false, "{c}");
    emu.mutate(|d| d.table_mut("Account").unwrap().def.replicateable = true);
    let c = json(&run(&p, &["check", "--json"]).await);
    assert_eq!(c["objects"][0]["deletes"], "ok", "{c}");
    // `sync.capture_deletes = false` asks nothing either.
    let mut cfg = data(16, 50, 5, Duration::hours(6));
    cfg.deleted_id_limit = 0; // any getDeleted call with a deletion would fail
    let emu2 = start(cfg).await;
    let p2 = pipeline(
        &emu2.url,
        OBJECTS,
        "mode = \"incremental\"\nlag_s = 60\ncapture_deletes = false",
    );
    let s = one_hard_delete_then_sync(&emu2, &p2).await;
    assert!(s["objects"][0]["deletes"].is_null(), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_deletes_chunks_run_by_racing_workers_commit_once() {
    let emu = start(data(17, 200, 10, Duration::hours(6))).await;
    let p = pipeline(&emu.url, OBJECTS, "mode = \"incremental\"\nlag_s = 60");
    let t0 = Utc::now();
    json(&run_env(&p, &["sync", "--json"], &sync_at(t0 - Duration::hours(3))).await);
    let at = ms(t0 - Duration::hours(2));
    emu.mutate(|d| {
        let t = d.table_mut("Account").unwrap();
        hard_delete_live(t, 12, at, 60_000);
    });
    let env = sync_at(t0 - Duration::hours(1));
    let plan = json(&run_env(&p, &["plan", "sync", "--json"], &env).await);
    let deletes: Vec<String> = plan["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "deletes")
        .map(|c| c["chunk"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(deletes.len(), 1, "one deletes chunk per object: {plan}");
    // two workers on the same chunk, as an Airflow retry beside the first attempt
    let args = ["run-chunk", deletes[0].as_str(), "--json"];
    let (x, y) = tokio::join!(run_env(&p, &args, &env), run_env(&p, &args, &env));
    let (x, y) = (json(&x), json(&y));
    let outcomes: BTreeSet<&str> = [
        x["outcome"].as_str().unwrap(),
        y["outcome"].as_str().unwrap(),
    ]
    .into();
    assert!(outcomes.contains("committed"), "{x} {y}");
    let truth = emu.dataset();
    let tombs = account_tombstones(&p);
    assert_eq!(tombs.len(), 12);
    assert_eq!(
        tombs,
        delete_log(truth.table("Account").unwrap(), at, ms(t0))
    );
    // the sync of the same moment finds the deletes lane done
    let s = json(&run_env(&p, &["sync", "--json"], &env).await);
    assert!(s["objects"][0]["deletes"].is_null(), "{s}");
    assert_eq!(tombstones(&p.lake, "Account", "LastModifiedDate").len(), 12);
    assert_files_match_manifests(&p.lake, "Account");
}

/// One round's worth of random changes between runs, at increasing instants in `[from, to)`:
/// inserts, edits, soft deletes, hard deletes (of live and of binned records), undeletes,
/// merges and, now and then, an emptied Recycle Bin.
pub(crate) fn random_changes(
    t: &mut Table,
    rng: &mut rand::rngs::StdRng,
    from: i64,
    to: i64,
    n: usize,
) {
    use rand::Rng;
    let step = (to - from) / (n as i64 + 1);
    for k in 0..n {
        let at = from + step * (k as i64 + 1);
        let live = live_indices(t);
        let binned: Vec<usize> = (0..t.rows.len())
            .filter(|&i| t.is_soft_deleted(i))
            .collect();
        match rng.random_range(0..100) {
            0..=14 => {
                t.insert(rng, at);
            }
            15..=39 if !live.is_empty() => {
                let i = live[rng.random_range(0..live.len())];
                t.update(i, at, rng);
            }
            40..=54 if !live.is_empty() => {
                let i = live[rng.random_range(0..live.len())];
                t.soft_delete(i, at);
            }
            55..=69 if !live.is_empty() => {
                let i = live[rng.random_range(0..live.len())];
                t.hard_delete(i, at);
            }
            70..=77 if !binned.is_empty() => {
                let i = binned[rng.random_range(0..binned.len())];
                t.hard_delete(i, at);
            }
            78..=87 if !binned.is_empty() => {
                let i = binned[rng.random_range(0..binned.len())];
                t.undelete(i, at);
            }
            88..=96 if live.len() > 3 => {
                let m = rng.random_range(0..live.len() - 2);
                t.merge(live[m], &[live[m + 1], live[m + 2]], at);
            }
            97..=99 => {
                t.empty_recycle_bin();
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_changes_with_kills_races_a_fan_out_and_a_backfill_end_at_the_live_records() {
    use rand::SeedableRng;
    for seed in [21u64, 22] {
        let emu = start(data(seed, 150, 10, Duration::hours(12))).await;
        let p = pipeline(
            &emu.url,
            OBJECTS,
            "mode = \"incremental\"\nlag_s = 60\nconcurrency = 2",
        );
        let t0 = Utc::now();
        let clock = |r: i64| t0 - Duration::hours(10) + Duration::minutes(80 * r);
        let start_point = start_with_history(&p, clock(0)).await;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for r in 1..=6i64 {
            let (from, to) = (ms(clock(r - 1)), ms(clock(r) - Duration::minutes(2)));
            emu.mutate(|d| random_changes(d.table_mut("Account").unwrap(), &mut rng, from, to, 14));
            let env = sync_at(clock(r));
            match r % 5 {
                // killed while its first query is held, then run again
                1 => {
                    let args = ["sync", "--json"];
                    kill_while_held_env(
                        &emu,
                        &p,
                        &args,
                        &env,
                        1,
                        std::time::Duration::from_millis(30),
                    )
                    .await;
                    json(&run_env(&p, &args, &env).await);
                }
                // two runs at once
                2 => {
                    let (x, y) = tokio::join!(
                        run_env(&p, &["sync", "--json"], &env),
                        run_env(&p, &["sync", "--json"], &env)
                    );
                    json(&x);
                    json(&y);
                }
                // a scheduler's fan-out, two workers per chunk
                3 => {
                    let plan = json(&run_env(&p, &["plan", "sync", "--json"], &env).await);
                    for c in plan["chunks"].as_array().unwrap() {
                        let args = ["run-chunk", c["chunk"].as_str().unwrap(), "--json"];
                        let (x, y) =
                            tokio::join!(run_env(&p, &args, &env), run_env(&p, &args, &env));
                        json(&x);
                        json(&y);
                    }
                }
                // a backfill of the last hours' day in the middle, then the run
                4 => {
                    let d = (clock(r) - Duration::hours(1))
                        .format("%Y-%m-%d")
                        .to_string();
                    json(
                        &run_env(
                            &p,
                            &[
                                "backfill", "--json", "--object", "Account", "--start", &d,
                                "--end", &d,
                            ],
                            &env,
                        )
                        .await,
                    );
                    json(&run_env(&p, &["sync", "--json"], &env).await);
                }
                _ => {
                    json(&run_env(&p, &["sync", "--json"], &env).await);
                }
            }
        }
        let truth = emu.dataset();
        let t = truth.table("Account").unwrap();
        assert_eq!(
            live_in_lake(&p, "Account"),
            live_truth(t),
            "seed {seed}: the live records"
        );
        let tombs = account_tombstones(&p);
        let from = time_at(&serde_json::json!(start_point)).timestamp_millis();
        let unique: BTreeSet<_> = tombs.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            tombs.len(),
            "seed {seed}: a tombstone written twice"
        );
        // every deletion in the delete log is in the lake…
        let log = delete_log(t, from, ms(clock(6)) - 60_000);
        for d in &log {
            assert!(
                unique.contains(d),
                "seed {seed}: deletion {d:?} has no tombstone"
            );
        }
        // …and a tombstone the log no longer lists is a deletion that an undelete reverted
        // (the record has a newer version, or was deleted again later)
        let lmd = t.def.field_index("LastModifiedDate").unwrap();
        for (id, at) in unique.iter().filter(|d| !log.contains(d)) {
            let newer_version = (0..t.rows.len()).any(|i| {
                t.id_of(i) == *id && matches!(t.rows[i][lmd], Cell::DateTime(m) if m > *at)
            });
            let deleted_again = log.iter().any(|(i, a)| i == id && a > at);
            assert!(
                newer_version || deleted_again,
                "seed {seed}: tombstone {id} {at} matches no deletion"
            );
        }
        assert_files_match_manifests(&p.lake, "Account");
        // the current table is the live records, value for value
        let n = assert_current_is_live(&truth, &p.lake, "Account");
        assert_eq!(
            n,
            live_truth(t).len(),
            "seed {seed}: the current table's rows"
        );
    }
}
