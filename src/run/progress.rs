//! Progress of a run: a bar on a terminal, a log line every 10 s otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Progress of a run: a bar on a terminal, a log line every 10 s otherwise.
#[derive(Clone)]
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    rows: Arc<AtomicU64>,
    chunks: Arc<AtomicU64>,
    total: u64,
    last_log: Arc<Mutex<Instant>>,
}

/// Set by `--log-format json`: progress goes to the log only, never as a terminal bar.
pub static PLAIN_PROGRESS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

impl Progress {
    pub fn new(total_chunks: u64) -> Self {
        // no bar when every stderr line must be JSON (`--log-format json`)
        let bar = (std::io::stderr().is_terminal()
            && total_chunks > 0
            && !PLAIN_PROGRESS.load(Ordering::Relaxed))
        .then(|| {
            let b = indicatif::ProgressBar::new(total_chunks);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} windows  {msg}  ETA {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Self {
            bar,
            rows: Arc::default(),
            chunks: Arc::default(),
            total: total_chunks,
            last_log: Arc::new(Mutex::new(Instant::now())),
        }
    }

    pub fn chunk_done(&self, rows: u64) {
        let r = self.rows.fetch_add(rows, Ordering::Relaxed) + rows;
        let c = self.chunks.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(b) = &self.bar {
            b.set_position(c);
            b.set_message(format!("{r} rows"));
        } else if let Ok(mut last) = self.last_log.lock() {
            if last.elapsed() >= Duration::from_secs(10) {
                *last = Instant::now();
                tracing::info!(
                    windows_done = c,
                    windows_total = self.total,
                    rows = r,
                    "progress"
                );
            }
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
