//! The sink conformance suite on object stores: S3 (moto), GCS (moto behind a GCS XML-API
//! shim) and Azure (Azurite), all on 127.0.0.1, started by scripts/test.sh. Each backend runs
//! the same sequence as the local path — incremental start, historical, backfill of a day,
//! incremental — and must end with every record exactly once, equal to the emulator's truth;
//! eight workers racing on one chunk commit it once; a missing bucket is reported with the fix.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use bytes::Bytes;
use chrono::Utc;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::util::*;

struct Backend {
    name: &'static str,
    /// URL without the per-test prefix.
    base: String,
    options: Vec<(String, String)>,
}

/// The storage tests take turns: moto is single-threaded (that is what makes its conditional
/// writes atomic), and a multipart upload of one test should not starve another's requests.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

fn backends() -> Vec<Backend> {
    // A local folder always: the suite never passes without running.
    let local = std::env::temp_dir().join(format!("forcelake-stores-{}", std::process::id()));
    std::fs::create_dir_all(&local).expect("a local folder for the storage suite");
    let mut v = vec![Backend {
        name: "local",
        base: format!("file://{}", local.display()),
        options: vec![],
    }];
    if let (Some(ep), Some(b)) = (
        env("FORCELAKE_TEST_S3_ENDPOINT"),
        env("FORCELAKE_TEST_S3_BUCKET"),
    ) {
        v.push(Backend {
            name: "s3",
            base: format!("s3://{b}"),
            options: vec![
                ("aws_endpoint".into(), ep),
                ("aws_access_key_id".into(), "test".into()),
                ("aws_secret_access_key".into(), "test".into()),
                ("aws_region".into(), "us-east-1".into()),
                ("aws_allow_http".into(), "true".into()),
            ],
        });
    }
    if let (Some(url), Some(b)) = (
        env("FORCELAKE_TEST_GCS_BASE_URL"),
        env("FORCELAKE_TEST_GCS_BUCKET"),
    ) {
        v.push(Backend {
            name: "gcs",
            base: format!("gs://{b}"),
            options: vec![
                ("google_base_url".into(), url),
                ("google_bearer_token".into(), "dummy".into()),
            ],
        });
    }
    if let (Some(ep), Some(c)) = (
        env("FORCELAKE_TEST_AZURE_ENDPOINT"),
        env("FORCELAKE_TEST_AZURE_CONTAINER"),
    ) {
        v.push(Backend {
            name: "azure",
            base: format!("az://{c}"),
            options: vec![
                ("azure_storage_account_name".into(), "devstoreaccount1".into()),
                ("azure_storage_account_key".into(), "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==".into()),
                ("azure_storage_endpoint".into(), ep),
                ("azure_allow_http".into(), "true".into()),
            ],
        });
    }
    if v.len() < 4 {
        // scripts/test.sh starts all three (and says so): there a missing one is a failure,
        // not a skip; so it is in CI.
        assert!(
            std::env::var("CI").is_err() && env("FORCELAKE_TEST_STORES").is_none(),
            "storage emulators not configured (run scripts/test.sh); found {}",
            v.len() - 1
        );
        eprintln!(
            "storage suite: {} of 3 object-store backends configured (scripts/test.sh starts all three); the local folder runs",
            v.len() - 1
        );
    }
    v
}

fn open(url: &str, options: &[(String, String)]) -> Arc<dyn ObjectStore> {
    let o: BTreeMap<String, String> = options.iter().cloned().collect();
    forcelake::sink::store::open(url, &o).expect("store opens")
}

async fn list(store: &Arc<dyn ObjectStore>, prefix: &str) -> Vec<String> {
    let p = object_store::path::Path::from(prefix);
    let mut v: Vec<String> = store
        .list(Some(&p))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    v.sort();
    v
}

async fn get(store: &Arc<dyn ObjectStore>, path: &str) -> Bytes {
    store
        .get(&object_store::path::Path::from(path))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
}

async fn read_remote(store: &Arc<dyn ObjectStore>, object: &str) -> Vec<(String, RecordBatch)> {
    let mut out = vec![];
    // record versions only (tombstones, of `deletes` chunks, are checked in `deletes::`)
    for f in list(store, object)
        .await
        .into_iter()
        .filter(|f| f.ends_with(".parquet") && !is_tombstone_file(std::path::Path::new(f)))
    {
        let day = f
            .split('/')
            .nth(1)
            .unwrap()
            .trim_start_matches("date=")
            .to_string();
        let reader = ParquetRecordBatchReaderBuilder::try_new(get(store, &f).await)
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            out.push((day.clone(), b.unwrap()));
        }
    }
    out
}

async fn remote_manifests(store: &Arc<dyn ObjectStore>, object: &str) -> Vec<serde_json::Value> {
    let mut v = vec![];
    for f in list(store, &format!("_forcelake/manifests/{object}")).await {
        v.push(serde_json::from_slice(&get(store, &f).await).unwrap());
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_keeps_the_commit_protocol() {
    let _turn = SERIAL.lock().await;
    let mut cfg = forcelake::emulator::EmulatorConfig::default();
    cfg.gen.seed = 21;
    cfg.gen.default_rows = 150;
    cfg.gen.days = 15;
    let emu = start(cfg).await;
    let objects = "[[objects]]\nname = \"Account\"\nfields = [\"Id\", \"Name\", \"AnnualRevenue\", \"BillingAddress\", \"Regions__c\", \"LastModifiedDate\", \"IsDeleted\"]\n";
    for b in backends() {
        let url = format!("{}/run-{}-{:08x}", b.base, b.name, rand::random::<u32>());
        let p = pipeline_at(
            &emu.url,
            objects,
            "mode = \"incremental\"\nlag_s = 1\nconcurrency = 4",
            Some(&url),
            &b.options,
        );
        let ok = |o: &std::process::Output, what: &str| {
            assert_eq!(o.status.code(), Some(0), "{} {what}: {}", b.name, text(o))
        };

        let o = run(&p, &["check"]).await;
        ok(&o, "check");
        assert!(
            text(&o).contains("wrote, read and deleted a probe object"),
            "{}",
            text(&o)
        );
        let s = run_env(
            &p,
            &["sync", "--json"],
            &[(
                "FORCELAKE_NOW",
                forcelake::timefmt::rfc3339(Utc::now() - chrono::Duration::days(3)),
            )],
        )
        .await;
        ok(&s, "incremental start");
        let v: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
        let sp = v["objects"][0]["incremental_start"]
            .as_str()
            .unwrap()
            .to_string();
        let o = run(
            &p,
            &[
                "sync",
                "--set",
                "sync.mode=historical",
                "--set",
                &format!("sync.end_date={sp}"),
            ],
        )
        .await;
        ok(&o, "historical");
        let o = run(
            &p,
            &[
                "backfill",
                "--object",
                "Account",
                "--start",
                &day(8),
                "--end",
                &day(8),
            ],
        )
        .await;
        ok(&o, "backfill");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let o = run(&p, &["sync"]).await;
        ok(&o, "incremental");

        let store = open(&url, &b.options);
        let data = emu.dataset();
        let batches = read_remote(&store, "Account").await;
        let n = assert_matches_truth(&data, "Account", &batches, "LastModifiedDate");
        let unique: HashSet<String> = ids(&batches).into_iter().collect();
        assert_eq!(unique.len(), n, "{}: duplicates", b.name);
        assert_eq!(
            n,
            data.table("Account").unwrap().rows.len(),
            "{}: lost records",
            b.name
        );
        // files on the store are exactly those named by current (not superseded) manifests
        let ms = remote_manifests(&store, "Account").await;
        let superseded: HashSet<String> = superseded(&ms);
        assert!(
            !superseded.is_empty(),
            "{}: the backfill superseded the day's chunk",
            b.name
        );
        let named: HashSet<String> = live_files(&ms).into_iter().collect();
        let on_store: HashSet<String> = list(&store, "Account")
            .await
            .into_iter()
            .filter(|f| f.ends_with(".parquet"))
            .collect();
        assert_eq!(on_store, named, "{}: files differ from manifests", b.name);
        let st = run(&p, &["status", "--json"]).await;
        ok(&st, "status");
        let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
        assert_eq!(
            st["objects"][0]["rows"].as_u64(),
            Some(n as u64),
            "{}",
            b.name
        );
        // the current table on the store: one row per live record, level with the change log
        let t = data.table("Account").unwrap();
        let live = (0..t.rows.len()).filter(|&i| !t.is_soft_deleted(i)).count();
        let c = &st["objects"][0]["current"];
        assert_eq!(c["rows"].as_u64(), Some(live as u64), "{}: {st}", b.name);
        assert_eq!(c["behind_chunks"].as_u64(), Some(0), "{}: {st}", b.name);

        // Eight workers race on one chunk: exactly one commits.
        let plan = run(
            &p,
            &[
                "plan",
                "backfill",
                "--object",
                "Account",
                "--start",
                &day(6),
                "--end",
                &day(6),
                "--json",
            ],
        )
        .await;
        ok(&plan, "plan");
        let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
        let spec = plan["chunks"][0]["chunk"].as_str().unwrap().to_string();
        let args = ["run-chunk", spec.as_str(), "--json"];
        let outs = futures::future::join_all((0..8).map(|_| run(&p, &args))).await;
        let outcomes: Vec<String> = outs
            .iter()
            .map(|o| {
                assert_eq!(o.status.code(), Some(0), "{}: {}", b.name, text(o));
                serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["outcome"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            outcomes.iter().filter(|o| *o == "committed").count(),
            1,
            "{}: {outcomes:?}",
            b.name
        );
        let batches = read_remote(&store, "Account").await;
        let all: Vec<String> = ids(&batches).into_iter().collect();
        assert_eq!(
            all.len(),
            all.iter().collect::<HashSet<_>>().len(),
            "{}: duplicates after the race",
            b.name
        );
        // Eight workers on the windows of eight different days all finish, and the Delta
        // table (its log replayed here from the store) holds
        // exactly the live manifests' files.
        let plan = run(
            &p,
            &[
                "plan",
                "backfill",
                "--object",
                "Account",
                "--start",
                &day(14),
                "--end",
                &day(7),
                "--json",
                "--set",
                "sync.window_records=1",
            ],
        )
        .await;
        ok(&plan, "plan of eight days");
        let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
        let specs: Vec<String> = plan["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["chunk"].as_str().unwrap().to_string())
            .collect();
        // windows over sparse days may join days: eight workers share them round-robin
        assert!(specs.len() >= 4, "{}: {plan}", b.name);
        let args: Vec<[&str; 5]> = (0..8)
            .map(|i| specs[i % specs.len()].as_str())
            .map(|s| ["run-chunk", s, "--json", "--set", "sync.window_records=1"])
            .collect();
        let outs = futures::future::join_all(args.iter().map(|a| run(&p, a))).await;
        let mut committed: HashMap<&str, usize> = HashMap::new();
        for (o, a) in outs.iter().zip(&args) {
            ok(o, "run-chunk on its own day");
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            if v["outcome"] == "committed" {
                *committed.entry(a[1]).or_default() += 1;
            }
        }
        // (two workers on one multi-day window may each commit some of its days)
        assert!(
            specs.iter().all(|s| committed.contains_key(s.as_str())),
            "{}: every window committed: {committed:?}",
            b.name
        );
        let ms = remote_manifests(&store, "Account").await;
        let log: HashMap<String, Vec<u8>> = {
            let mut m = HashMap::new();
            for f in list(&store, "Account/_delta_log").await {
                let name = f.rsplit('/').next().unwrap().to_string();
                m.insert(name, get(&store, &f).await.to_vec());
            }
            m
        };
        let table = replay_delta_log("Account", |name| log.get(name).cloned());
        assert_eq!(
            table,
            live_files(&ms),
            "{}: the Delta table differs from the manifests",
            b.name
        );
        let st: serde_json::Value =
            serde_json::from_slice(&run(&p, &["status", "--json"]).await.stdout).unwrap();
        assert_eq!(
            st["objects"][0]["delta"]["behind_chunks"], 0,
            "{}: {st}",
            b.name
        );
        eprintln!("storage suite: {} ok ({n} records)", b.name);
    }
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_reported_with_the_fix_and_options_are_checked() {
    let _turn = SERIAL.lock().await;
    let emu = start(emulator_config(30)).await;
    // (a bucket is an object store's: the local folder's errors are firstday::*'s)
    for b in backends().into_iter().filter(|b| b.name != "local") {
        let base = b.base.replace("://", "://no-such-bucket-");
        let p = pipeline_at(
            &emu.url,
            "[[objects]]\nname = \"Account\"\n",
            "",
            Some(&format!("{base}/x")),
            &b.options,
        );
        // a missing bucket is a configuration error, found by the probe before any work
        for cmd in ["check", "sync"] {
            let o = run(&p, &[cmd]).await;
            assert_eq!(o.status.code(), Some(2), "{}: {}", b.name, text(&o));
            assert!(
                text(&o).contains("destination.url") && text(&o).contains("does not exist"),
                "{}: {}",
                b.name,
                text(&o)
            );
        }
        let o = run(&p, &["sync"]).await;
        // secrets in options never show up
        assert!(
            !text(&o).contains("Eby8vdM02xNOcq") && !text(&o).contains("aws_secret_access_key = "),
            "{}",
            text(&o)
        );
    }
    // a misspelt option is an error naming it (no store needed)
    let p = pipeline_at(
        &emu.url,
        "[[objects]]\nname = \"Account\"\n",
        "",
        Some("s3://bucket/x"),
        &[("aws_regoin".into(), "us-east-1".into())],
    );
    let o = run(&p, &["check"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("destination.options.aws_regoin"),
        "{}",
        text(&o)
    );
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_files_go_up_in_multipart_parts_on_every_backend() {
    let _turn = SERIAL.lock().await;
    let mut cfg = emulator_config(0);
    cfg.gen.rows.insert("Account".into(), 0);
    let emu = start(cfg).await;
    let at = forcelake::timefmt::DateOrTime::parse("2025-12-10T08:00:00Z")
        .unwrap()
        .as_start()
        .timestamp_millis();
    emu.insert_records("Account", 80_000, at); // one chunk whose (uncompressed) Parquet file passes the 8 MiB part size
    let data = emu.dataset();
    for b in backends() {
        let url = format!("{}/big-{}-{:08x}", b.base, b.name, rand::random::<u32>());
        let p = pipeline_at(
            &emu.url,
            "[[objects]]\nname = \"Account\"\n",
            "start_date = \"2025-12-10\"\nend_date = \"2025-12-10\"",
            Some(&url),
            &b.options,
        );
        let o = run(
            &p,
            &["sync", "--json", "--set", "destination.compression=none"],
        )
        .await;
        assert_eq!(o.status.code(), Some(0), "{}: {}", b.name, text(&o));
        let store = open(&url, &b.options);
        let ms = remote_manifests(&store, "Account").await;
        assert_eq!(ms.len(), 1);
        let bytes = ms[0]["files"][0]["bytes"].as_u64().unwrap();
        assert!(
            bytes > 8 << 20,
            "{}: the file ({bytes} bytes) is too small to need multipart",
            b.name
        );
        let batches = read_remote(&store, "Account").await;
        assert_eq!(
            assert_matches_truth(&data, "Account", &batches, "LastModifiedDate"),
            80_000,
            "{}",
            b.name
        );
        eprintln!(
            "storage suite: {} multipart ok ({:.1} MiB)",
            b.name,
            bytes as f64 / 1048576.0
        );
    }
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_incremental_syncs_started_together_on_s3_write_each_version_once() {
    let _turn = SERIAL.lock().await;
    let Some(b) = backends().into_iter().find(|b| b.name == "s3") else {
        return; // (backends() fails when scripts/test.sh or CI should have started it)
    };
    let mut cfg = recent(33, 300, 4);
    cfg.faults.latency = Some(Duration::from_millis(300));
    let emu = start(cfg).await;
    let url = format!("{}/race-{:08x}", b.base, rand::random::<u32>());
    let p = pipeline_at(
        &emu.url,
        crate::races::ACCOUNT,
        "mode = \"incremental\"\nlag_s = 1",
        Some(&url),
        &b.options,
    );
    let o = run_env(
        &p,
        &["sync", "--json"],
        &[("FORCELAKE_NOW", ago(chrono::Duration::days(2)))],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let edits = emu.start_mutations(
        &["Account"],
        Duration::from_millis(20),
        Duration::from_millis(300),
    );
    for slow_first in [true, false] {
        let sync = ["sync", "--json"];
        crate::races::race(
            &p,
            &crate::races::args(&sync, slow_first),
            &crate::races::args(&sync, !slow_first),
        )
        .await;
    }
    edits.stop().await;
    let store = open(&url, &b.options);
    let ms = remote_manifests(&store, "Account").await;
    let live = live_files(&ms);
    let on_store: std::collections::BTreeSet<String> = list(&store, "Account")
        .await
        .into_iter()
        .filter(|f| f.ends_with(".parquet"))
        .collect();
    assert_eq!(
        on_store, live,
        "s3: the Parquet files differ from the live manifests' files"
    );
    let log: HashMap<String, Vec<u8>> = {
        let mut m = HashMap::new();
        for f in list(&store, "Account/_delta_log").await {
            let name = f.rsplit('/').next().unwrap().to_string();
            m.insert(name, get(&store, &f).await.to_vec());
        }
        m
    };
    assert_eq!(
        replay_delta_log("Account", |name| log.get(name).cloned()),
        live,
        "s3: the Delta table differs"
    );
    let mut seen = HashSet::new();
    let mut rows = 0;
    for (day, b) in read_remote(&store, "Account").await {
        use arrow::array::AsArray;
        let ids = b.column_by_name("Id").unwrap().as_string::<i32>().clone();
        let sm = b
            .column_by_name("SystemModstamp")
            .unwrap()
            .as_primitive::<arrow::datatypes::TimestampMillisecondType>()
            .clone();
        for r in 0..b.num_rows() {
            rows += 1;
            assert!(
                seen.insert((ids.value(r).to_string(), sm.value(r))),
                "s3: Account {} SystemModstamp={} twice (day {day})",
                ids.value(r),
                sm.value(r)
            );
        }
    }
    assert!(rows > 50, "only {rows} rows synced");
    emu.stop().await;
}
