//! The per-object request budget of a run (`sync.query_limit`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Per-object request budget for one run (`sync.query_limit`).
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    used: AtomicU64,
}

impl Budget {
    pub fn new(limit: u32) -> Self {
        Self {
            limit: limit as u64,
            used: AtomicU64::new(0),
        }
    }
    /// Takes one request from the budget; false when it is spent.
    pub fn try_take(&self) -> bool {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                (u < self.limit).then_some(u + 1)
            })
            .is_ok()
    }
    /// Takes one request even past the limit (the results pages of a Bulk job already
    /// created, which are only of use read whole).
    pub fn force_take(&self) {
        self.used.fetch_add(1, Ordering::SeqCst);
    }
    /// Requests left before the limit.
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used.load(Ordering::SeqCst))
    }
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }
    pub fn exhausted(&self) -> bool {
        self.used.load(Ordering::SeqCst) >= self.limit
    }
}
