//! Bulk API 2.0 windows (issue 14): the same lake as REST, at a fraction of the requests;
//! failed jobs, cut pages, the job allowance, refusals and kills along the way.

use std::collections::HashSet;
use std::time::Duration;

use arrow::array::AsArray;
use forcelake::emulator::{EmulatorConfig, RunningEmulator};

use crate::util::*;

/// Every type the emulator serves: Account with its compounds named (Bulk assembles them
/// from components), Contact, Opportunity and Case with their standard fields.
const OBJECTS: &str = "[[objects]]\nname = \"Account\"\nfields = [\"Id\", \"Name\", \"IsDeleted\", \"Type\", \"BillingAddress\", \"BillingCity\", \"Phone\", \"AnnualRevenue\", \"NumberOfEmployees\", \"Description\", \"LastActivityDate\", \"Credit_Limit__c\", \"Global_Employees__c\", \"Regions__c\", \"Discount__c\", \"Is_Partner__c\", \"Support_Cutoff__c\", \"HQ_Location__c\", \"CreatedDate\", \"LastModifiedDate\", \"SystemModstamp\"]\n\n[[objects]]\nname = \"Contact\"\n\n[[objects]]\nname = \"Opportunity\"\n\n[[objects]]\nname = \"Case\"\n";

fn with_bulk(
    mut cfg: EmulatorConfig,
    f: impl FnOnce(&mut forcelake::emulator::bulk::BulkConfig),
) -> EmulatorConfig {
    cfg.bulk.processing = Duration::from_millis(150);
    f(&mut cfg.bulk);
    cfg
}

fn endpoints(p: &Pipeline, object: &str) -> HashSet<String> {
    manifests(&p.lake, object)
        .iter()
        .filter(|m| m["rows"].as_u64().unwrap_or(0) > 0)
        .map(|m| m["endpoint"].as_str().unwrap_or("").to_string())
        .collect()
}

fn assert_exact(emu: &RunningEmulator, p: &Pipeline, object: &str) {
    let data = emu.dataset();
    let batches = read_object(&p.lake, object);
    let n = assert_matches_truth(&data, object, &batches, "LastModifiedDate");
    let unique: HashSet<String> = ids(&batches).into_iter().collect();
    assert_eq!(unique.len(), n, "{object}: duplicated records");
    assert_eq!(
        n,
        data.table(object).unwrap().len(),
        "{object}: lost records"
    );
    assert_files_match_manifests(&p.lake, object);
}

/// With `sync.api = "auto"` and a window large enough for Bulk (120,000 records), a Bulk
/// problem (`bulk` set up by `fault`) sends the window to REST, saying so (`said`), and the
/// lake is exact.
async fn auto_goes_to_rest(
    fault: impl FnOnce(&mut forcelake::emulator::bulk::BulkConfig),
    said: &str,
) {
    let mut cfg = with_bulk(emulator_config(0), fault);
    cfg.gen.synthetic.insert("Account".into(), 120_000);
    let emu = start(cfg).await;
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Account\"\n",
        "concurrency = 1",
    );
    let out = run(&p, &["sync", "--json"]).await;
    assert_eq!(json(&out)["status"], "complete", "{}", text(&out));
    assert!(emu.bulk_jobs_created() <= 1, "{}", text(&out));
    assert!(text(&out).contains(said), "{}", text(&out));
    assert_eq!(
        endpoints(&p, "Account"),
        HashSet::from(["queryAll".to_string()])
    );
    assert_exact(&emu, &p, "Account");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_and_rest_windows_give_identical_lakes_for_every_type() {
    let emu = start(with_bulk(emulator_config(400), |_| {})).await;
    let rest = pipeline(&emu.url, OBJECTS, "api = \"rest\"");
    let bulk = pipeline(&emu.url, OBJECTS, "api = \"bulk\"");
    let r = json(&run(&rest, &["sync", "--json"]).await);
    assert_eq!(r["status"], "complete", "{r}");
    let before = emu.requests();
    let jobs_before = emu.bulk_jobs_created();
    let b = json(&run(&bulk, &["sync", "--json"]).await);
    assert_eq!(b["status"], "complete", "{b}");
    let bulk_requests = emu.requests() - before;
    for o in ["Account", "Contact", "Opportunity", "Case"] {
        let (x, y) = (sorted_by_id(&rest.lake, o), sorted_by_id(&bulk.lake, o));
        assert_eq!(x.schema(), y.schema(), "{o}: schemas differ");
        for (i, f) in x.schema().fields().iter().enumerate() {
            assert_eq!(
                x.column(i),
                y.column(i),
                "{o}.{}: REST and Bulk differ",
                f.name()
            );
        }
        assert_exact(&emu, &bulk, o);
        assert_eq!(
            endpoints(&bulk, o),
            HashSet::from(["bulk:queryAll".to_string()]),
            "{o}"
        );
        assert_eq!(
            endpoints(&rest, o),
            HashSet::from(["queryAll".to_string()]),
            "{o}"
        );
    }
    // the compounds were assembled, not left null
    let acc = sorted_by_id(&bulk.lake, "Account");
    let addr = acc.column_by_name("BillingAddress").unwrap();
    assert!(
        addr.null_count() < addr.len(),
        "every BillingAddress is null"
    );
    // one job per object (400 records fit one window): token, then per object describe,
    // one count, one create, the polls and one results page; plus one /limits read
    let jobs = emu.bulk_jobs_created() - jobs_before;
    assert_eq!(jobs, 4, "{b}");
    assert!(bulk_requests <= 2 + 4 * 7, "{bulk_requests} requests: {b}");
    // the jobs ended and none was left running
    assert!(
        emu.bulk_jobs().iter().all(|(_, s)| s == "JobComplete"),
        "{:?}",
        emu.bulk_jobs()
    );
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_sends_large_windows_to_bulk_and_small_ones_to_rest() {
    let mut cfg = with_bulk(emulator_config(0), |_| {});
    cfg.gen.rows.insert("Contact".into(), 300);
    cfg.gen.synthetic.insert("Account".into(), 250_000);
    let emu = start(cfg).await;
    let objects = "[[objects]]\nname = \"Account\"\n\n[[objects]]\nname = \"Contact\"\n";
    let p = pipeline(&emu.url, objects, "concurrency = 2");
    let before = emu.requests();
    let s = json(&run(&p, &["sync", "--json"]).await);
    assert_eq!(s["status"], "complete", "{s}");
    let requests = emu.requests() - before;
    assert_eq!(
        endpoints(&p, "Account"),
        HashSet::from(["bulk:queryAll".to_string()])
    );
    assert_eq!(
        endpoints(&p, "Contact"),
        HashSet::from(["queryAll".to_string()])
    );
    // 250,000 records, two Bulk jobs of 125,000 (concurrency 2): REST would need 125 pages
    assert!(
        emu.bulk_jobs_created() >= 2 && emu.bulk_jobs_created() <= 3,
        "{s}"
    );
    assert!(requests <= 30, "{requests} requests: {s}");
    assert_exact(&emu, &p, "Account");
    assert_exact(&emu, &p, "Contact");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_is_shown_and_its_window_redone() {
    let emu = start(with_bulk(emulator_config(200), |b| b.fail_jobs = 1)).await;
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Account\"\n",
        "api = \"bulk\"",
    );
    let out = run(&p, &["sync"]).await;
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("ended Failed: InternalServerError : Retried more than 15 times"),
        "{log}"
    );
    assert_eq!(emu.bulk_jobs_created(), 2);
    assert_exact(&emu, &p, "Account");
    emu.stop().await;
    // in auto, a failed job's window is fetched over REST instead
    auto_goes_to_rest(|b| b.fail_jobs = 1, "the window is fetched over REST").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_page_cut_short_redoes_the_window() {
    let emu = start(with_bulk(emulator_config(300), |b| b.cut_page = Some(1))).await;
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Account\"\n",
        "api = \"bulk\"",
    );
    let out = run(&p, &["sync", "--json"]).await;
    let s = json(&out);
    assert_eq!(s["status"], "complete", "{s}\n{}", text(&out));
    assert!(text(&out).contains("cut short"), "{}", text(&out));
    assert_eq!(
        emu.bulk_jobs_created(),
        2,
        "the window is redone with a new job"
    );
    assert_exact(&emu, &p, "Account");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_job_allowance_stops_new_jobs_cleanly() {
    let emu = start(with_bulk(emulator_config(100), |b| b.daily_jobs = 1)).await;
    let objects = "[[objects]]\nname = \"Account\"\n\n[[objects]]\nname = \"Contact\"\n";
    let p = pipeline(&emu.url, objects, "api = \"bulk\"\nconcurrency = 1");
    let out = run(&p, &["sync", "--json"]).await;
    let s = json(&out);
    assert_eq!(emu.bulk_jobs_created(), 1, "{s}");
    assert_eq!(s["objects"][0]["status"], "complete", "{s}");
    assert_eq!(s["objects"][1]["status"], "paused", "{s}");
    let reason = s["objects"][1]["paused_reason"].as_str().unwrap_or("");
    assert!(reason.contains("DailyBulkV2QueryJobs"), "{s}");
    assert_exact(&emu, &p, "Account");
    // nothing of Contact was written
    assert!(read_object(&p.lake, "Contact").is_empty());
    // in auto the windows go over REST instead
    let p2 = pipeline(&emu.url, objects, "");
    let s2 = json(&run(&p2, &["sync", "--json"]).await);
    assert_eq!(s2["status"], "complete", "{s2}");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_bulk_refuses_are_rest_in_auto_and_a_configuration_error_in_bulk() {
    let emu = start(with_bulk(emulator_config(100), |b| {
        b.refuse = vec!["Account".into()]
    }))
    .await;
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Account\"\n",
        "api = \"bulk\"",
    );
    let out = run(&p, &["sync"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let log = text(&out);
    assert!(
        log.contains("Entity 'Account' is not supported by the Bulk API"),
        "{log}"
    );
    assert!(log.contains("set sync.api = \"auto\""), "{log}");
    // a base64 field named explicitly: Bulk cannot select it
    let p2 = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Invoice__c\"\nfields = [\"Id\", \"Name\", \"Document__c\", \"LastModifiedDate\"]\n",
        "api = \"bulk\"",
    );
    let out2 = run(&p2, &["sync"]).await;
    assert_eq!(out2.status.code(), Some(2), "{}", text(&out2));
    assert!(
        text(&out2).contains("Invoice__c.Document__c is base64"),
        "{}",
        text(&out2)
    );
    emu.stop().await;
    // in auto the refused object is fetched over REST
    auto_goes_to_rest(
        |b| b.refuse = vec!["Account".into()],
        "Bulk API 2.0 refused the object",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_during_polling_and_during_results_leave_no_partial_day_and_the_rerun_is_exact() {
    let emu = start(with_bulk(emulator_config(600), |_| {})).await;
    let objects = "[[objects]]\nname = \"Account\"\n";
    let p = pipeline(&emu.url, objects, "api = \"bulk\"\nconcurrency = 1");
    // during polling: the job takes long; kill once it exists
    emu.set_bulk_delay(Duration::from_secs(60));
    let mut child = spawn(&p, ["sync"]);
    for _ in 0..200 {
        if emu.bulk_jobs_created() >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(emu.bulk_jobs_created(), 1, "no job was created");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        matches!(child.try_wait(), Ok(None)),
        "the run ended while its job ran"
    );
    let _ = child.start_kill();
    let _ = child.wait().await;
    assert!(
        manifests(&p.lake, "Account").is_empty(),
        "a day was committed before the job ended"
    );
    emu.set_bulk_delay(Duration::from_millis(100));
    // during results: the count is query request 1, the first results page request 2
    kill_while_held(&emu, &p, &["sync"], 2, Duration::from_millis(50)).await;
    assert!(
        manifests(&p.lake, "Account").is_empty(),
        "a day was committed before its rows were all read"
    );
    let s = json(&run(&p, &["sync", "--json"]).await);
    assert_eq!(s["status"], "complete", "{s}");
    assert_exact(&emu, &p, "Account");
    // the rows of every day are complete (the lake equals a clean REST run's)
    let rest = pipeline(&emu.url, objects, "api = \"rest\"");
    json(&run(&rest, &["sync", "--json"]).await);
    let (a, b) = (
        sorted_by_id(&p.lake, "Account"),
        sorted_by_id(&rest.lake, "Account"),
    );
    assert_eq!(
        a.column_by_name("Id").unwrap().as_string::<i32>(),
        b.column_by_name("Id").unwrap().as_string::<i32>()
    );
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_backfill_replaces_its_days_atomically() {
    let emu = start(with_bulk(emulator_config(500), |_| {})).await;
    let objects = "[[objects]]\nname = \"Account\"\n";
    let p = pipeline(&emu.url, objects, "api = \"rest\"");
    let s = json(&run(&p, &["sync", "--json"]).await);
    assert_eq!(s["status"], "complete", "{s}");
    // edits inside the backfill's range, then a Bulk backfill of 20 days
    emu.insert_records(
        "Account",
        40,
        forcelake::timefmt::day_start("2025-12-10".parse().unwrap()).timestamp_millis() + 3_600_000,
    );
    let b = json(
        &run(
            &p,
            &[
                "--set",
                "sync.api=bulk",
                "backfill",
                "--object",
                "Account",
                "--start",
                "2025-12-01",
                "--end",
                "2025-12-20",
                "--json",
            ],
        )
        .await,
    );
    assert_eq!(b["status"], "complete", "{b}");
    assert_eq!(
        emu.bulk_jobs_created(),
        1,
        "one job for the whole range: {b}"
    );
    let all = manifests(&p.lake, "Account");
    let backfilled: Vec<&serde_json::Value> =
        all.iter().filter(|m| m["kind"] == "backfill").collect();
    assert_eq!(backfilled.len(), 20, "one manifest per backfilled day");
    let with_rows: Vec<_> = backfilled
        .iter()
        .filter(|m| m["rows"].as_u64().unwrap_or(0) > 0)
        .collect();
    assert!(!with_rows.is_empty());
    assert!(
        with_rows.iter().all(|m| m["endpoint"] == "bulk:queryAll"),
        "{with_rows:?}"
    );
    assert!(
        with_rows
            .iter()
            .any(|m| !m["supersedes"].as_array().unwrap().is_empty()),
        "{with_rows:?}"
    );
    // every record once, in its day; old files of replaced days are gone
    assert_exact(&emu, &p, "Account");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_spill_to_disk_under_a_small_memory_limit_and_the_lake_is_exact() {
    let mut cfg = with_bulk(emulator_config(0), |_| {});
    cfg.gen.rows.insert("Account".into(), 12_000);
    let emu = start(cfg).await;
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Account\"\n",
        "api = \"bulk\"\nconcurrency = 1\nmemory_limit_mb = 4",
    );
    let out = run(&p, &["sync", "--json"]).await;
    assert_eq!(json(&out)["status"], "complete", "{}", text(&out));
    assert!(
        text(&out).contains("Bulk rows spilled to local disk"),
        "{}",
        text(&out)
    );
    assert_exact(&emu, &p, "Account");
    emu.stop().await;
}

/// The emulator's Bulk endpoints answer as Salesforce does (for users testing their own
/// Bulk pipelines against it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_serves_the_bulk_job_lifecycle() {
    let emu = start(with_bulk(emulator_config(30), |b| {
        b.processing = Duration::from_millis(400)
    }))
    .await;
    let http = reqwest::Client::new();
    let auth = format!("Bearer {}", token(&http, &emu).await);
    let jobs = format!("{}/services/data/v62.0/jobs/query", emu.url);
    let create = |q: &str| {
        http.post(&jobs)
            .header("Authorization", &auth)
            .json(&serde_json::json!({"operation": "query", "query": q}))
            .send()
    };
    // refusals at create time
    let r = create("SELECT Id, BillingAddress FROM Account")
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Selecting compound data not supported in Bulk Query"));
    let r = create("SELECT Id FROM CaseStatus").await.unwrap();
    assert!(r.text().await.unwrap().contains("INVALIDENTITY"));
    let r = create("SELECT COUNT() FROM Account").await.unwrap();
    assert_eq!(r.status(), 400);
    // a job: queued, then complete; results only when complete, and only in its version
    let job: serde_json::Value = create("SELECT Id, Name FROM Account")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(job["state"], "UploadComplete");
    assert!(job["apiVersion"].is_number());
    let id = job["id"].as_str().unwrap().to_string();
    let results = |v: &str, q: &str| {
        http.get(format!(
            "{}/services/data/{v}/jobs/query/{id}/results{q}",
            emu.url
        ))
        .header("Authorization", &auth)
        .send()
    };
    assert_eq!(
        results("v62.0", "").await.unwrap().status(),
        400,
        "not complete yet"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let info: serde_json::Value = http
        .get(format!("{jobs}/{id}"))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["state"], "JobComplete");
    assert_eq!(info["numberRecordsProcessed"], 30);
    assert_eq!(results("v61.0", "").await.unwrap().status(), 409);
    let page = results("v62.0", "?maxRecords=20").await.unwrap();
    assert_eq!(page.headers()["sforce-numberofrecords"], "20");
    let loc = page.headers()["sforce-locator"]
        .to_str()
        .unwrap()
        .to_string();
    let body = page.text().await.unwrap();
    assert!(body.starts_with("\"Id\",\"Name\"\n"), "{body}");
    let last = results("v62.0", &format!("?maxRecords=20&locator={loc}"))
        .await
        .unwrap();
    assert_eq!(last.headers()["sforce-numberofrecords"], "10");
    assert_eq!(last.headers()["sforce-locator"], "null");
    assert!(
        last.text().await.unwrap().starts_with("\"Id\",\"Name\"\n"),
        "a header on every page"
    );
    // a finished job cannot be aborted; a running one can; delete answers 204
    let abort = |id: String| {
        http.patch(format!("{jobs}/{id}"))
            .header("Authorization", &auth)
            .json(&serde_json::json!({"state": "Aborted"}))
            .send()
    };
    assert_eq!(abort(id.clone()).await.unwrap().status(), 400);
    let j2: serde_json::Value = create("SELECT Id FROM Account")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id2 = j2["id"].as_str().unwrap().to_string();
    let a: serde_json::Value = abort(id2.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(a["state"], "Aborted");
    let listed: serde_json::Value = http
        .get(&jobs)
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["records"].as_array().unwrap().len(), 2);
    let d = http
        .delete(format!("{jobs}/{id}"))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(d.status(), 204);
    assert_eq!(emu.bulk_jobs().len(), 1);
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_given_up_on_is_aborted() {
    let emu = start(with_bulk(emulator_config(100), |_| {})).await;
    emu.set_bulk_delay(Duration::from_secs(600));
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Account\"\n",
        "api = \"bulk\"",
    );
    let out = run_env(
        &p,
        &["sync", "--json"],
        &[("FORCELAKE_BULK_JOB_DEADLINE_S", "2".into())],
    )
    .await;
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("not complete after 2 s; aborted"), "{log}");
    // every attempt's job was aborted, none left running; nothing was committed
    let jobs = emu.bulk_jobs();
    assert!(!jobs.is_empty());
    assert!(jobs.iter().all(|(_, s)| s == "Aborted"), "{jobs:?}");
    assert!(manifests(&p.lake, "Account").is_empty());
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_with_sync_api_bulk_fetches_its_window_by_one_job() {
    let mut cfg = with_bulk(recent(3, 0, 30), |_| {});
    cfg.gen.rows.insert("Case".into(), 0);
    let emu = start(cfg).await;
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Case\"\n",
        "mode = \"incremental\"\nlag_s = 1\napi = \"bulk\"",
    );
    json(
        &run_env(
            &p,
            &["sync", "--json"],
            &[("FORCELAKE_NOW", ago(chrono::Duration::hours(2)))],
        )
        .await,
    );
    let ts = (chrono::Utc::now() - chrono::Duration::minutes(30)).timestamp_millis() / 1000 * 1000;
    emu.insert_records("Case", 3000, ts);
    let s = json(&run(&p, &["sync", "--json"]).await);
    assert_eq!(s["objects"][0]["rows"], 3000, "{s}");
    assert_eq!(emu.bulk_jobs_created(), 1, "{s}");
    let ms: Vec<_> = manifests(&p.lake, "Case")
        .into_iter()
        .filter(|m| m["rows"].as_u64() == Some(3000))
        .collect();
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0]["endpoint"], "bulk:queryAll");
    // a second run finds nothing new and starts no job for it... the window is uncounted,
    // so with sync.api = "bulk" it is one job that returns no rows
    let s2 = json(&run(&p, &["sync", "--json"]).await);
    assert_eq!(s2["status"], "complete", "{s2}");
    assert_eq!(s2["objects"][0]["rows"], 0, "{s2}");
    emu.stop().await;
}
