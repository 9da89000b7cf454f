//! The current table (`<dest>/_current/<Object>/`): one row per live record, equal to the
//! emulator's live records value for value, whatever order its chunks are merged in, however
//! often, and across kills.

use chrono::{Duration, Utc};

use crate::deletes::{
    data, live_indices, live_truth, ms, random_changes, start_with_history,
    start_with_history_args, sync_at,
};
use crate::util::*;

const OBJECTS: &str = "[[objects]]\nname = \"Account\"\n";

/// A deletion merged before an older version of its record (a late chunk) keeps the record
/// out: the chunks are merged in chunk-id order, a batch per memory budget, so the deletes
/// chunk (`deletes-…`) goes alone before the history that still holds the record's version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_merged_after_its_records_deletion_does_not_bring_it_back() {
    let emu = start(data(31, 6000, 10, Duration::hours(6))).await;
    let p = pipeline(
        &emu.url,
        OBJECTS,
        "mode = \"incremental\"\nlag_s = 60\nmemory_limit_mb = 1",
    );
    let t0 = Utc::now();
    let off = ["--set", "destination.current_table=false"];
    // history and a deletes chunk, committed without a current table
    start_with_history_args(&p, t0 - Duration::hours(5), &off).await;
    // the newest records (their versions are in the last history chunks) are deleted for good
    let at = ms(t0 - Duration::hours(4));
    let gone: Vec<String> = emu.mutate(|d| {
        let t = d.table_mut("Account").unwrap();
        let lmd = t.def.field_index("LastModifiedDate").unwrap();
        let mut live = live_indices(t);
        live.sort_by_key(|&i| match t.rows[i][lmd] {
            forcelake::emulator::data::Cell::DateTime(m) => -m,
            _ => 0,
        });
        let ids: Vec<String> = live[..5].iter().map(|&i| t.id_of(i)).collect();
        for (k, id) in ids.iter().enumerate() {
            let i = (0..t.rows.len()).find(|&i| &t.id_of(i) == id).unwrap();
            t.hard_delete(i, at + k as i64 * 1000);
        }
        ids
    });
    json(
        &run_env(
            &p,
            &["sync", "--json", off[0], off[1]],
            &sync_at(t0 - Duration::hours(3)),
        )
        .await,
    );
    assert!(
        !p.lake.join("_current").exists(),
        "current_table = false writes no current table"
    );
    // now the current table is built, the deletes chunk first and alone
    let s = json(&run_env(&p, &["sync", "--json"], &sync_at(t0 - Duration::hours(2))).await);
    let c = &s["objects"][0]["current"];
    assert!(
        c["merges"].as_u64().unwrap() >= 2,
        "the memory budget splits the merge: {s}"
    );
    let truth = emu.dataset();
    let n = assert_current_is_live(&truth, &p.lake, "Account");
    assert_eq!(n, live_truth(truth.table("Account").unwrap()).len());
    let ids: std::collections::BTreeSet<String> = current_ids(&p.lake, "Account");
    for id in &gone {
        assert!(
            !ids.contains(id),
            "{id} was deleted for good, yet the current table has it"
        );
    }
    assert_eq!(c["rows"].as_u64(), Some(n as u64), "{s}");
}

fn current_ids(lake: &std::path::Path, object: &str) -> std::collections::BTreeSet<String> {
    use arrow::array::AsArray;
    current_table(lake, object)
        .iter()
        .flat_map(|b| {
            let ids = b.column_by_name("Id").unwrap().as_string::<i32>().clone();
            (0..b.num_rows()).map(move |i| ids.value(i).to_string())
        })
        .collect()
}

/// Runs killed at many points (while fetching, committing or merging) and run again: the
/// current table ends equal to the live records, and a run with nothing new merges nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_at_any_point_leave_a_current_table_the_next_run_completes() {
    use rand::SeedableRng;
    let emu = start(data(41, 400, 10, Duration::hours(12))).await;
    let p = pipeline(
        &emu.url,
        OBJECTS,
        "mode = \"incremental\"\nlag_s = 60\nconcurrency = 2",
    );
    let t0 = Utc::now();
    let clock = |r: i64| t0 - Duration::hours(10) + Duration::minutes(60 * r);
    start_with_history(&p, clock(0)).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(41);
    for r in 1..=6i64 {
        let (from, to) = (ms(clock(r - 1)), ms(clock(r) - Duration::minutes(2)));
        emu.mutate(|d| random_changes(d.table_mut("Account").unwrap(), &mut rng, from, to, 30));
        let env = sync_at(clock(r));
        // killed after a time that moves through the run, then run again
        let mut child = spawn_env(&p, ["sync"], &env);
        tokio::time::sleep(std::time::Duration::from_millis(40 * r as u64)).await;
        let _ = child.start_kill();
        let _ = child.wait().await;
        let s = json(&run_env(&p, &["sync", "--json"], &env).await);
        assert_eq!(s["status"], "complete", "{s}");
        let truth = emu.dataset();
        assert_current_is_live(&truth, &p.lake, "Account");
    }
    let s = json(&run_env(&p, &["sync", "--json"], &sync_at(clock(6))).await);
    assert_eq!(
        s["objects"][0]["current"]["merges"].as_u64(),
        Some(0),
        "{s}"
    );
    // the table rebuilt from the change log alone is the same
    let before = current_ids(&p.lake, "Account");
    std::fs::remove_dir_all(p.lake.join("_current")).unwrap();
    std::fs::remove_dir_all(p.lake.join("_forcelake/current")).unwrap();
    json(&run_env(&p, &["sync", "--json"], &sync_at(clock(6))).await);
    assert_eq!(current_ids(&p.lake, "Account"), before);
    assert_current_is_live(&emu.dataset(), &p.lake, "Account");
}

/// A lake filled by a historical sync alone (no incremental run, so no delete capture) that
/// saw deletes: `reconcile` lists the live Ids, tombstones what the lake holds and Salesforce
/// no longer has, and the current table is the live records; a second reconcile finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_after_a_historical_sync_removes_what_salesforce_deleted() {
    let emu = start(data(51, 300, 10, Duration::hours(6))).await;
    let p = pipeline(
        &emu.url,
        OBJECTS,
        "mode = \"historical\"\nstart_date = \"2000-01-01\"\nend_date = \"2099-01-01\"\nlag_s = 60",
    );
    json(&run(&p, &["sync", "--json"]).await);
    let before = current_ids(&p.lake, "Account");
    let gone: Vec<String> = emu.mutate(|d| {
        let t = d.table_mut("Account").unwrap();
        let mut ids = Vec::new();
        for _ in 0..7 {
            let i = live_indices(t)[3];
            ids.push(t.id_of(i));
            t.hard_delete(i, ms(Utc::now() - Duration::minutes(5)));
        }
        let i = live_indices(t)[0];
        ids.push(t.id_of(i));
        t.soft_delete(i, ms(Utc::now() - Duration::minutes(4)));
        ids
    });
    assert!(
        gone.iter().all(|id| before.contains(id)),
        "{} held; gone {gone:?}",
        before.len()
    );
    let s = json(&run(&p, &["reconcile", "--json", "--object", "Account"]).await);
    let o = &s["objects"][0];
    assert_eq!(s["command"], "reconcile", "{s}");
    assert_eq!(o["reconciled"]["tombstones"], 8, "{s}");
    assert_eq!(
        o["reconciled"]["held"].as_u64(),
        Some(before.len() as u64),
        "{s}"
    );
    assert!(o["reconciled"]["requests"].as_u64().unwrap() >= 1, "{s}");
    let truth = emu.dataset();
    assert_current_is_live(&truth, &p.lake, "Account");
    let after = current_ids(&p.lake, "Account");
    assert!(gone.iter().all(|id| !after.contains(id)));
    // the tombstones are in the change log, once, as a reconcile chunk
    let rec: Vec<_> = manifests(&p.lake, "Account")
        .into_iter()
        .filter(|m| m["kind"] == "reconcile")
        .collect();
    assert_eq!(rec.len(), 1);
    assert!(
        rec[0]["endpoint"]
            .as_str()
            .unwrap()
            .starts_with("query: reconcile"),
        "{:?}",
        rec[0]
    );
    // status: when it reconciled; the reconcile chunk is no record version (coverage unchanged)
    let st = json(&run(&p, &["status", "--json"]).await);
    assert_eq!(
        st["objects"][0]["last_reconcile_at"], o["reconciled"]["at"],
        "{st}"
    );
    assert_eq!(
        st["objects"][0]["current"]["rows"].as_u64(),
        Some(after.len() as u64),
        "{st}"
    );
    assert!(
        st["objects"][0]["rows_by_kind"].get("reconcile").is_none(),
        "{st}"
    );
    let t = text(&run(&p, &["reconcile"]).await);
    assert!(t.contains(" 0 tombstones"), "{t}");
    assert_eq!(
        manifests(&p.lake, "Account")
            .into_iter()
            .filter(|m| m["kind"] == "reconcile")
            .count(),
        1
    );
    // the same through one Bulk API 2.0 job (sync.api = "bulk"; `auto` from 100,000 records)
    let more: Vec<String> = emu.mutate(|d| {
        let t = d.table_mut("Account").unwrap();
        (0..3)
            .map(|_| {
                let i = live_indices(t)[5];
                let id = t.id_of(i);
                t.hard_delete(i, ms(Utc::now() - Duration::minutes(3)));
                id
            })
            .collect()
    });
    let s = json(&run(&p, &["reconcile", "--json", "--set", "sync.api=bulk"]).await);
    let r = &s["objects"][0]["reconciled"];
    assert_eq!(r["tombstones"], 3, "{s}");
    assert!(
        r["requests"].as_u64().unwrap() >= 3,
        "create, poll, results: {s}"
    );
    assert_current_is_live(&emu.dataset(), &p.lake, "Account");
    let after = current_ids(&p.lake, "Account");
    assert!(more.iter().all(|id| !after.contains(id)));
    // without a current table there is nothing to compare with: said, exit 2
    let o = run(
        &p,
        &["reconcile", "--set", "destination.current_table=false"],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("destination.current_table"),
        "{}",
        text(&o)
    );
}
