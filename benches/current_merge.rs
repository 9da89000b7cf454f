//! What the current table costs: a 1,000,000-record object synced once, then incremental runs
//! with 0.1 % (1,000) and 10 % (100,000) of its records changed (updates spread over the whole
//! table, a tenth of them deletions: soft, and hard with the Recycle Bin emptied). Per run: the
//! merge's time and bytes written (against the table's size), the run's peak RSS against
//! `sync.memory_limit_mb`, its requests (getDeleted: one per object per run), and whether the
//! current table equals the emulator's live records (count).
//!
//! `cargo bench --bench current_merge [-- RECORDS]` (benches/run.sh runs it; README "What the
//! current table costs"). The emulator runs in this process (its records are changed in place);
//! forcelake is the release binary, a child process, as users run it.

use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use forcelake::emulator::{self, EmulatorConfig};
use rand::{Rng, SeedableRng};

const MEMORY_LIMIT_MB: u64 = 256;

fn main() {
    let records: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    println!("deletion vectors (what forcelake does):");
    rt.block_on(bench(records, false));
    println!("copy-on-write (every file holding a changed record rewritten), for comparison:");
    rt.block_on(bench(records, true));
}

fn bin() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let b = root.join("target/release/forcelake");
    assert!(b.exists(), "build the binary first: cargo build --release");
    b
}

/// Runs the binary; returns its JSON summary and peak RSS (KiB).
async fn run(
    config: &Path,
    args: &[&str],
    now: chrono::DateTime<Utc>,
    cow: bool,
) -> (serde_json::Value, u64) {
    let mut cmd = tokio::process::Command::new(bin());
    if cow {
        cmd.env("FORCELAKE_BENCH_COPY_ON_WRITE", "1");
    }
    let mut child = cmd
        .arg("--config")
        .arg(config)
        .args(args)
        .env("FORCELAKE_CLIENT_SECRET", emulator::DEMO_CLIENT_SECRET)
        .env("FORCELAKE_NOW", forcelake::timefmt::rfc3339(now))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary starts");
    let pid = child.id().expect("running");
    let mut peak = 0u64;
    let out = loop {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(v) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
            {
                peak = peak.max(v);
            }
        }
        if let Ok(Some(_)) = child.try_wait() {
            break child.wait_with_output().await.expect("output");
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    };
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert!(out.status.success(), "{v}");
    (v, peak)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
                .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

async fn bench(records: usize, cow: bool) {
    let mut cfg = EmulatorConfig::default();
    cfg.gen.seed = 3;
    cfg.gen.default_rows = 0;
    cfg.gen.rows.insert("Account".into(), records);
    cfg.gen.days = 60;
    cfg.gen.anchor_ms = (Utc::now() - Duration::days(1)).timestamp_millis();
    let started = std::time::Instant::now();
    let emu = emulator::start(cfg, "127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("the emulator starts");
    eprintln!(
        "emulator: {records} Accounts in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let tmp = tempfile::tempdir().expect("a temp dir");
    let lake = tmp.path().join("lake");
    let config = tmp.path().join("forcelake.toml");
    std::fs::write(
        &config,
        format!(
            "[salesforce]\ninstance_url = \"{}\"\nclient_id = \"{}\"\n\n[[objects]]\nname = \"Account\"\n\n\
             [sync]\nmode = \"incremental\"\nlag_s = 60\nrate_limit = 10000\nquery_limit = 100000\n\
             memory_limit_mb = {MEMORY_LIMIT_MB}\n\n[destination]\nurl = \"{}\"\n",
            emu.url,
            emulator::DEMO_CLIENT_ID,
            lake.display()
        ),
    )
    .expect("the pipeline file");
    let t0 = Utc::now() - Duration::hours(6);
    // the recommended start: incremental records the start point, history up to it
    let (s, _) = run(&config, &["sync", "--json"], t0, cow).await;
    let sp = s["objects"][0]["incremental_start"]
        .as_str()
        .expect("a start point")
        .to_string();
    let end = format!("sync.end_date={sp}");
    let (s, peak) = run(
        &config,
        &[
            "sync",
            "--json",
            "--set",
            "sync.mode=historical",
            "--set",
            &end,
        ],
        t0,
        cow,
    )
    .await;
    let c = &s["objects"][0]["current"];
    println!(
        "| initial load, {records} records | {:.2} s | {} MB written | {} MiB peak RSS (limit {MEMORY_LIMIT_MB} MiB) | {} rows |",
        c["seconds"].as_f64().unwrap_or(0.0),
        c["bytes_written"].as_u64().unwrap_or(0) / 1_000_000,
        peak / 1024,
        c["rows"]
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut clock = t0;
    for changed in [records / 1000, records / 10] {
        let table_bytes = dir_bytes(&lake.join("_current/Account"));
        // changes after the last run's now, ending before this run's now − lag
        let from = clock + Duration::minutes(1);
        clock += Duration::hours(1);
        let step = (clock - Duration::minutes(2) - from).num_milliseconds() / changed.max(1) as i64;
        let live_after = emu.mutate(|d| {
            let t = d.table_mut("Account").expect("Account");
            for k in 0..changed {
                let at = from.timestamp_millis() + k as i64 * step;
                let i = rng.random_range(0..t.rows.len());
                match k % 20 {
                    0 => t.soft_delete(i, at),
                    1 => t.hard_delete(i, at),
                    _ => t.update(i, at, &mut rng),
                }
            }
            t.empty_recycle_bin();
            (0..t.rows.len()).filter(|&i| !t.is_soft_deleted(i)).count()
        });
        let (s, peak) = run(&config, &["sync", "--json"], clock, cow).await;
        let o = &s["objects"][0];
        let c = &o["current"];
        let written = c["bytes_written"].as_u64().unwrap_or(0);
        println!(
            "| {changed} changed ({:.1} %) | merge {:.2} s | {} KB written = {:.2} % of the table's {} MB | {} MiB peak RSS | {} requests ({} getDeleted) | current {} rows, live {live_after} |",
            100.0 * changed as f64 / records as f64,
            c["seconds"].as_f64().unwrap_or(0.0),
            written / 1000,
            100.0 * written as f64 / table_bytes.max(1) as f64,
            table_bytes / 1_000_000,
            peak / 1024,
            s["requests"],
            o["deletes"]["requests"],
            c["rows"],
        );
        if c["rows"].as_u64() != Some(live_after as u64) {
            let keep = tmp.keep();
            let live: Vec<String> = emu.mutate(|d| {
                let t = d.table_mut("Account").expect("Account");
                (0..t.rows.len())
                    .filter(|&i| !t.is_soft_deleted(i))
                    .map(|i| t.id_of(i))
                    .collect()
            });
            std::fs::write(
                keep.join("live.json"),
                serde_json::to_string(&live).unwrap(),
            )
            .unwrap();
            let log: Vec<(String, i64)> =
                emu.mutate(|d| d.table_mut("Account").unwrap().deleted.clone());
            std::fs::write(keep.join("log.json"), serde_json::to_string(&log).unwrap()).unwrap();
            panic!(
                "the current table is not the live records: kept {}",
                keep.display()
            );
        }
    }
    emu.stop().await;
}
