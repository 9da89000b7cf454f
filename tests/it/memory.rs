//! Memory is bounded by configuration (`sync.memory_limit_mb`: pages in flight, the row group
//! each in-flight chunk builds), not by the object: a 10× larger object needs the same.

use std::time::Duration;

use crate::util::*;

/// Peak RSS (VmHWM, KiB) of a child, sampled until it exits.
async fn peak_rss_kib(mut child: tokio::process::Child) -> (u64, std::process::ExitStatus) {
    let pid = child.id().expect("running");
    let mut peak = 0;
    loop {
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
        if let Ok(Some(st)) = child.try_wait() {
            return (peak, st);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Peak RSS of a `sync` of `records` synthetic Accounts over 10 days with a memory limit.
async fn sync_peak(records: u64, memory_limit_mb: u32) -> u64 {
    let mut cfg = emulator_config(0);
    cfg.gen.days = 10;
    cfg.gen.synthetic.insert("Account".into(), records);
    let emu = start(cfg).await;
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Account\"\n",
        &format!("end_date = \"2099-01-01\"\nconcurrency = 4\nmemory_limit_mb = {memory_limit_mb}"),
    );
    let child = spawn(&p, ["sync"]);
    let (peak, st) = peak_rss_kib(child).await;
    assert!(st.success());
    let n: usize = read_object(&p.lake, "Account")
        .iter()
        .map(|(_, b)| b.num_rows())
        .sum();
    assert_eq!(n as u64, records);
    emu.stop().await;
    peak
}

/// A large object under a small `memory_limit_mb` stays under the limit plus the process's
/// fixed part (code, runtime, HTTP client); a 10× larger one too. (How close the two peaks
/// are is measured by `benches/run.sh`, not asserted here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_memory_follows_the_limit_not_the_object_size() {
    let small = sync_peak(60_000, 48).await;
    let large = sync_peak(600_000, 48).await;
    eprintln!(
        "peak RSS at memory_limit_mb = 48: 60,000 records {} MiB, 600,000 records {} MiB",
        small / 1024,
        large / 1024
    );
    let fixed = 60 * 1024;
    // 0 would mean /proc could not be read: the test would measure nothing
    assert!(
        small > 1024 && large > 1024,
        "no peak RSS measured ({small} / {large} KiB)"
    );
    assert!(small < 48 * 1024 + fixed, "peak RSS {} MiB", small / 1024);
    assert!(large < 48 * 1024 + fixed, "peak RSS {} MiB", large / 1024);
}
