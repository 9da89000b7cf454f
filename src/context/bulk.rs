//! What a run learns of Bulk API 2.0 as it goes: the org's daily job allowance and the objects
//! Bulk refused.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use super::error::SyncError;
use crate::salesforce::Client;

/// What a run knows of Bulk API 2.0: the org's daily job allowance and the objects Bulk
/// refused (fetched over REST for the rest of the run in `auto`).
#[derive(Debug)]
pub struct BulkState {
    /// `DailyBulkV2QueryJobs.Remaining`, counted down per job (read once per run).
    remaining: AtomicI64,
    /// `DailyBulkV2QueryJobs.Max`, from the run's one `/limits` read.
    max: tokio::sync::OnceCell<i64>,
    refused: Mutex<Vec<String>>,
}

impl Default for BulkState {
    fn default() -> Self {
        Self {
            remaining: AtomicI64::new(0),
            max: tokio::sync::OnceCell::new(),
            refused: Mutex::new(Vec::new()),
        }
    }
}

impl BulkState {
    pub fn is_refused(&self, object: &str) -> bool {
        self.refused
            .lock()
            .map(|r| r.iter().any(|o| o == object))
            .unwrap_or(false)
    }

    pub(crate) fn refuse(&self, object: &str) {
        if let Ok(mut r) = self.refused.lock() {
            if !r.iter().any(|o| o == object) {
                r.push(object.to_string());
            }
        }
    }

    /// Takes one job from the allowance, or says why not: the allowance is spent, or what is
    /// left is within the share `sync.api_budget_percent` keeps for the org's other work.
    pub(crate) async fn take_job(
        &self,
        client: &Client,
        api_budget_percent: u32,
    ) -> Result<(), SyncError> {
        // One /limits read per run, however many windows ask at once.
        let max = *self
            .max
            .get_or_try_init(|| async {
                let limits = client.limits().await?;
                let l = &limits["DailyBulkV2QueryJobs"];
                let max = l["Max"].as_i64().unwrap_or(10_000);
                self.remaining
                    .store(l["Remaining"].as_i64().unwrap_or(max), Ordering::SeqCst);
                Ok::<i64, SyncError>(max)
            })
            .await?;
        let pct = api_budget_percent as i64;
        let keep = max * (100 - pct) / 100;
        let taken = self
            .remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| {
                (r > keep).then_some(r - 1)
            });
        match taken {
            Ok(_) => Ok(()),
            Err(r) => Err(SyncError::BulkAllowance {
                message: format!(
                    "DailyBulkV2QueryJobs {r} of {max} left, and sync.api_budget_percent = {pct}% keeps {keep} for other work"
                ),
            }),
        }
    }

    pub(crate) fn spent(&self) {
        self.remaining.store(0, Ordering::SeqCst);
    }
}
