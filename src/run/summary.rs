//! What a run reports: per object and in all ([`RunSummary`], printed as text or one JSON line).

use serde::Serialize;

use crate::context::Context;
use crate::salesforce::ApiUsage;

/// Per-object outcome of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ObjectSummary {
    pub object: String,
    pub rows: u64,
    /// Day chunks planned (one object × one UTC day, or part of one).
    pub chunks_planned: u64,
    /// Query windows planned: one Salesforce query each, over one or many days.
    pub windows_planned: u64,
    pub chunks_committed: u64,
    /// Found committed by another writer while this run was on them.
    pub chunks_already_committed: u64,
    pub chunks_failed: u64,
    /// Planned but not run (query limit, API budget, daily limit); the next run does them.
    pub chunks_pending: u64,
    pub requests: u64,
    /// `complete`, `paused` or `failed`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Schema changes and other things worth a look.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What the run did that the user should know (e.g. an end in the future was cut).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Historical and backfill: where the fetched range ends (cut at now − sync.lag_s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range_end: Option<String>,
    /// Records whose (nillable) cursor is null: they belong to no day and are never synced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub null_cursor_records: Option<u64>,
    /// Incremental: the pipeline's start point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incremental_start: Option<String>,
    /// Incremental: the position before and after this run, and the window end it aimed for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_end: Option<String>,
    /// Incremental: the deletes captured through getDeleted (`sync.capture_deletes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletes: Option<DeletesSummary>,
    /// What the object's current table took in (`destination.current_table`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<crate::commit::current::Refreshed>,
    /// A reconciliation this run made (getDeleted could not answer for the object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconciled: Option<crate::fetch::reconcile::Reconciled>,
    /// The current table's merge failed (exit 1; the change log is committed).
    #[serde(skip)]
    pub current_failed: bool,
}

/// What a run's delete capture did for one object.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeletesSummary {
    /// The time range the deletes lane now covers from this run (RFC 3339).
    pub from: String,
    pub to: String,
    /// Tombstone rows written (each a record getDeleted listed as deleted).
    pub tombstones: u64,
    /// Deletes chunks committed.
    pub chunks: u64,
    /// getDeleted requests.
    pub requests: u64,
    /// Ranges getDeleted could not answer, with why (hard deletes there are not captured).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unanswered: Vec<String>,
}

/// The summary of a run (stdout with `--json`, and the log).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub command: String,
    pub mode: String,
    pub status: String,
    pub objects: Vec<ObjectSummary>,
    pub requests: u64,
    pub api_usage: Option<ApiUsage>,
    pub elapsed_s: f64,
    pub destination: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backfill_id: Option<String>,
    /// The off-peak window, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<serde_json::Value>,
    /// A window failed for a configuration reason (exit 2 rather than 1).
    #[serde(skip)]
    pub config_error: bool,
}

impl RunSummary {
    /// Fills in what the client counted and the elapsed time.
    pub fn finish(mut self, ctx: &Context, started: std::time::Instant) -> Self {
        self.requests = ctx.client.requests_sent();
        self.api_usage = ctx.client.api_usage();
        self.elapsed_s = started.elapsed().as_secs_f64();
        self
    }

    /// 0 when all work is committed or cleanly paused, 1 when a chunk failed.
    pub fn exit_code(&self) -> u8 {
        if self.config_error {
            2
        } else if self
            .objects
            .iter()
            .any(|o| o.chunks_failed > 0 || o.current_failed)
        {
            1
        } else {
            0
        }
    }

    /// A few human lines.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for o in &self.objects {
            s.push_str(&format!(
                "{:<20} {:>10} rows  {:>5} chunks committed  {:>4} pending  {:>3} failed  {:>6} requests  {}{}\n",
                o.object,
                o.rows,
                o.chunks_committed,
                o.chunks_pending,
                o.chunks_failed,
                o.requests,
                o.status,
                o.paused_reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default()
            ));
            for e in &o.errors {
                s.push_str(&format!("    error: {e}\n"));
            }
            for w in &o.warnings {
                s.push_str(&format!("    warning: {w}\n"));
            }
            for n in &o.notes {
                s.push_str(&format!("    note: {n}\n"));
            }
            if let Some(p) = &o.position_after {
                s.push_str(&format!(
                    "    incremental position: {p}{}\n",
                    o.incremental_start
                        .as_ref()
                        .map(|st| format!(" (pipeline start point {st})"))
                        .unwrap_or_default()
                ));
            }
            if let Some(r) = &o.reconciled {
                s.push_str(&format!(
                    "    reconciled ({}): {} live in Salesforce, {} in the lake, {} tombstones, {} requests, {:.1}s\n",
                    r.reason, r.live, r.held, r.tombstones, r.requests, r.seconds
                ));
            }
            if let Some(c) = &o.current {
                s.push_str(&format!(
                    "    current table: version {}, {} live records{}\n",
                    c.version,
                    c.rows,
                    if c.merges > 0 {
                        format!(
                            " (merged {} chunks: {} versions in, {} records removed, {} bytes written, {:.1}s)",
                            c.chunks_applied, c.upserted, c.removed, c.bytes_written, c.seconds
                        )
                    } else {
                        String::new()
                    }
                ));
            }
        }
        if let Some(u) = self.api_usage {
            s.push_str(&format!(
                "org API usage: {}/{} ({:.1}%)\n",
                u.used,
                u.max,
                100.0 * u.used as f64 / u.max.max(1) as f64
            ));
        }
        if let Some(w) = &self.window {
            if w["open"] == false {
                let pending: u64 = self.objects.iter().map(|o| o.chunks_pending).sum();
                s.push_str(&format!("off-peak window closed: {pending} chunks remain; the next window opens at {}\n", w["next_opens_at"].as_str().unwrap_or("?")));
            }
        }
        s.push_str(&format!(
            "{}: {} in {:.1}s, {} requests\n",
            self.command, self.status, self.elapsed_s, self.requests
        ));
        s
    }
}
