//! Memory is bounded by configuration (pages in flight, the row group each in-flight chunk
//! builds), not by the whole object: an object 6× larger, spread over 6× more days, stays well
//! under the 300 MiB bound. (Peak RSS still rises from about 55 to 100–125 MiB between the two;
//! that drift is open work in issue 7.)

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

async fn sync_peak(rows: usize, days: i64) -> u64 {
    let mut cfg = emulator_config(0);
    cfg.gen.rows.insert("Account".into(), rows);
    cfg.gen.days = days;
    let emu = start(cfg).await;
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Account\"\n",
        "concurrency = 4",
    );
    let child = spawn(&p, ["sync"]);
    let (peak, st) = peak_rss_kib(child).await;
    assert!(st.success());
    let n: usize = read_object(&p.lake, "Account")
        .iter()
        .map(|(_, b)| b.num_rows())
        .sum();
    assert_eq!(n, rows);
    emu.stop().await;
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_memory_stays_under_the_bound() {
    let small = sync_peak(15_000, 10).await;
    let large = sync_peak(90_000, 60).await;
    eprintln!(
        "peak RSS: 15,000 records {} MiB, 90,000 records {} MiB",
        small / 1024,
        large / 1024
    );
    assert!(small < 200 * 1024, "peak RSS {} MiB", small / 1024);
    assert!(large < 200 * 1024, "peak RSS {} MiB", large / 1024);
}
