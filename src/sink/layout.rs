//! Pure path and chunk-id logic for the lake layout (SPEC §3):
//!
//! ```text
//! <dest>/<Object>/date=YYYY-MM-DD/<chunk-id>-<attempt>-<n>.parquet
//! <dest>/_forcelake/manifests/<Object>/date=YYYY-MM-DD/<chunk-id>.json
//! <dest>/_forcelake/schemas/<Object>/<schema-hash>.json
//! ```
//!
//! A chunk id names the kind and the window, so what is covered can be read from listings
//! alone: `historical-20240101` is the whole UTC day, and
//! `historical-20240101T000000Z-20240101T120000Z` a part of it. Data file names add an attempt
//! token, so a retried or concurrent attempt never overwrites a committed file.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use object_store::path::Path;

use crate::timefmt::{compact, day_start, parse_compact};

/// What kind of run committed a chunk.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ChunkKind {
    Historical,
    Incremental,
    Backfill,
    /// Tombstones of the records getDeleted listed as deleted in the chunk's window: a lane of
    /// its own (deletes chunks cover only deletes chunks; data chunks never cover them).
    Deletes,
    /// Tombstones of the records a reconciliation found missing from Salesforce (the lake held
    /// them, the listing of live Ids that began at the chunk's start did not): a lane of its
    /// own that covers nothing and that nothing covers.
    Reconcile,
}

/// Which chunks a chunk is compared with (coverage, the commit gate): record versions,
/// getDeleted's tombstones, and a reconciliation's tombstones never meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Versions,
    Deletes,
    Reconcile,
}

impl ChunkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkKind::Historical => "historical",
            ChunkKind::Incremental => "incremental",
            ChunkKind::Backfill => "backfill",
            ChunkKind::Deletes => "deletes",
            ChunkKind::Reconcile => "reconcile",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "historical" => Some(Self::Historical),
            "incremental" => Some(Self::Incremental),
            "backfill" => Some(Self::Backfill),
            "deletes" => Some(Self::Deletes),
            "reconcile" => Some(Self::Reconcile),
            _ => None,
        }
    }
}

/// One object × one UTC day × one window (× one backfill, for backfill chunks).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId {
    pub kind: ChunkKind,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The backfill id of a backfill chunk (letters and digits).
    pub tag: Option<String>,
}

impl ChunkId {
    pub fn new(kind: ChunkKind, start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self {
            kind,
            start,
            end,
            tag: None,
        }
    }

    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// The UTC day the chunk belongs to (its window never crosses midnight).
    pub fn day(&self) -> NaiveDate {
        self.start.date_naive()
    }

    /// An empty window: the incremental start point of an object.
    pub fn is_marker(&self) -> bool {
        self.start == self.end
    }

    /// Whether this committed chunk spares `planned` from fetching its time again: for a
    /// backfill, only chunks of that backfill (it re-pulls whatever else holds the time); for
    /// deletes, only deletes chunks (and a deletes chunk spares no data chunk); for the other
    /// kinds, a data chunk of any kind (the time is in the lake once already).
    pub fn covers_for(&self, planned: &ChunkId) -> bool {
        !self.is_marker()
            && self.lane() == planned.lane()
            && self.lane() != Lane::Reconcile
            && (planned.kind != ChunkKind::Backfill
                || (self.kind == planned.kind && self.tag == planned.tag))
    }

    /// A chunk of tombstones (getDeleted), not of record versions.
    pub fn is_deletes(&self) -> bool {
        self.kind == ChunkKind::Deletes
    }

    /// The chunk's lane.
    pub fn lane(&self) -> Lane {
        match self.kind {
            ChunkKind::Deletes => Lane::Deletes,
            ChunkKind::Reconcile => Lane::Reconcile,
            _ => Lane::Versions,
        }
    }

    /// A chunk of tombstones (getDeleted's or a reconciliation's), not of record versions.
    pub fn holds_tombstones(&self) -> bool {
        self.lane() != Lane::Versions
    }

    /// True when the window is the whole day.
    pub fn is_full_day(&self) -> bool {
        self.start == day_start(self.day())
            && self.end == day_start(self.day()) + chrono::Duration::days(1)
    }

    /// Parses [`ChunkId`]'s `Display` form.
    pub fn parse(s: &str) -> Option<Self> {
        let (head, rest) = s.split_once('-')?;
        let (kind, tag) = match head.split_once('.') {
            Some((k, t)) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                (k, Some(t.to_string()))
            }
            Some(_) => return None,
            None => (head, None),
        };
        let kind = ChunkKind::parse(kind)?;
        if rest.len() == 8 {
            let day = NaiveDate::parse_from_str(rest, "%Y%m%d").ok()?;
            let start = day_start(day);
            return Some(Self {
                kind,
                start,
                end: start + chrono::Duration::days(1),
                tag,
            });
        }
        let (a, b) = rest.split_once('-')?;
        let (start, end) = (parse_compact(a)?, parse_compact(b)?);
        // start == end: an incremental start-point marker (an empty window).
        (start <= end).then_some(Self {
            kind,
            start,
            end,
            tag,
        })
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_str())?;
        if let Some(t) = &self.tag {
            write!(f, ".{t}")?;
        }
        if self.is_full_day() {
            write!(f, "-{}", self.day().format("%Y%m%d"))
        } else {
            write!(f, "-{}-{}", compact(self.start), compact(self.end))
        }
    }
}

/// `date=YYYY-MM-DD`
pub fn partition(day: NaiveDate) -> String {
    format!("date={}", day.format("%Y-%m-%d"))
}

/// A data file of a chunk attempt.
pub fn data_path(object: &str, chunk: &ChunkId, attempt: &str, n: usize) -> Path {
    Path::from(format!(
        "{object}/{}/{chunk}-{attempt}-{n}.parquet",
        partition(chunk.day())
    ))
}

/// The folder of an object's day partition.
pub fn day_dir(object: &str, day: NaiveDate) -> Path {
    Path::from(format!("{object}/{}", partition(day)))
}

/// The manifest of a chunk.
pub fn manifest_path(object: &str, chunk: &ChunkId) -> Path {
    Path::from(format!(
        "_forcelake/manifests/{object}/{}/{chunk}.json",
        partition(chunk.day())
    ))
}

/// All manifests of an object.
pub fn manifests_prefix(object: &str) -> Path {
    Path::from(format!("_forcelake/manifests/{object}"))
}

/// The commit log of an object's day: `_forcelake/commits/<Object>/date=YYYY-MM-DD/`. Each
/// entry is a create-only put of the next sequence number holding the chunk's manifest: the
/// one point where concurrent writers of a day are ordered (see `crate::commit::gate`).
pub fn commit_log_dir(object: &str, day: NaiveDate) -> Path {
    Path::from(format!("_forcelake/commits/{object}/{}", partition(day)))
}

/// Entry `seq` of a day's commit log.
pub fn commit_log_path(object: &str, day: NaiveDate, seq: u64) -> Path {
    Path::from(format!(
        "_forcelake/commits/{object}/{}/{seq:010}.json",
        partition(day)
    ))
}

/// The sequence number of a commit log entry.
pub fn parse_commit_log_seq(p: &Path) -> Option<u64> {
    p.filename()?.strip_suffix(".json")?.parse().ok()
}

/// The manifests of an object's day.
pub fn day_manifests_dir(object: &str, day: NaiveDate) -> Path {
    Path::from(format!("_forcelake/manifests/{object}/{}", partition(day)))
}

/// True for a data file forcelake wrote (`<chunk-id>-<attempt>-<n>.parquet`); false for a
/// file another tool wrote into a partition (e.g. a Delta compaction's output).
pub fn is_forcelake_file(file_name: &str) -> bool {
    data_file_chunk(file_name)
        .and_then(ChunkId::parse)
        .is_some()
}

/// Where manifests live: `_forcelake/manifests/` (one folder per object).
pub fn manifests_root() -> Path {
    Path::from("_forcelake/manifests")
}

/// The schema records of an object: `_forcelake/schemas/<Object>/`.
pub fn schemas_prefix(object: &str) -> Path {
    Path::from(format!("_forcelake/schemas/{object}"))
}

/// The backfill plan records: `_forcelake/backfills/`.
pub fn backfills_prefix() -> Path {
    Path::from("_forcelake/backfills")
}

/// A backfill's immutable plan record.
pub fn backfill_plan_path(id: &str) -> Path {
    Path::from(format!("_forcelake/backfills/{id}.json"))
}

/// The current table's deletion memory of an object: `_forcelake/current/<Object>/deleted/`.
pub fn current_memory_prefix(object: &str) -> Path {
    Path::from(format!("_forcelake/current/{object}/deleted"))
}

/// Failure records: `_forcelake/failures/` (one folder per object).
pub fn failures_root() -> Path {
    Path::from("_forcelake/failures")
}

/// The failure records of an object.
pub fn failures_prefix(object: &str) -> Path {
    Path::from(format!("_forcelake/failures/{object}"))
}

/// The failure record of a chunk (a failed, or started and unfinished, `run-chunk`).
pub fn failure_path(object: &str, chunk: &ChunkId) -> Path {
    Path::from(format!("_forcelake/failures/{object}/{chunk}.json"))
}

/// A probe object `check` writes, reads and deletes.
pub fn probe_path(token: u32) -> Path {
    Path::from(format!("_forcelake/probe-{token:08x}"))
}

/// The lake's org record: the Salesforce org whose records the lake holds.
pub fn org_record_path() -> Path {
    Path::from("_forcelake/org.json")
}

/// The schema record of an object's schema hash.
pub fn schema_path(object: &str, hash: &str) -> Path {
    Path::from(format!("_forcelake/schemas/{object}/{hash}.json"))
}

/// `_forcelake/manifests/<Object>/date=…/<chunk>.json` → the chunk id.
pub fn parse_manifest_path(p: &Path) -> Option<(String, ChunkId)> {
    let parts: Vec<&str> = p.as_ref().split('/').collect();
    match parts.as_slice() {
        ["_forcelake", "manifests", object, date, file] => {
            let id = ChunkId::parse(file.strip_suffix(".json")?)?;
            (date.strip_prefix("date=")? == id.day().format("%Y-%m-%d").to_string())
                .then(|| (object.to_string(), id))
        }
        _ => None,
    }
}

/// `<Object>/date=YYYY-MM-DD/<file>.parquet` → the object and the day.
pub fn parse_data_path(p: &str) -> Option<(&str, NaiveDate)> {
    let mut parts = p.split('/');
    let (object, date, file) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !file.ends_with(".parquet") {
        return None;
    }
    let day = NaiveDate::parse_from_str(date.strip_prefix("date=")?, "%Y-%m-%d").ok()?;
    Some((object, day))
}

/// The chunk id and attempt of a data file name, for orphan clean-up.
pub fn data_file_chunk(file_name: &str) -> Option<&str> {
    let stem = file_name.strip_suffix(".parquet")?;
    let (rest, _n) = stem.rsplit_once('-')?;
    let (chunk, _attempt) = rest.rsplit_once('-')?;
    Some(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn full_day_ids_are_short() {
        let d = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        let id = ChunkId::new(
            ChunkKind::Historical,
            day_start(d),
            day_start(d) + chrono::Duration::days(1),
        );
        assert_eq!(id.to_string(), "historical-20240229");
        assert_eq!(ChunkId::parse("historical-20240229"), Some(id.clone()));
        assert_eq!(
            data_path("Account", &id, "a1b2", 0).as_ref(),
            "Account/date=2024-02-29/historical-20240229-a1b2-0.parquet"
        );
        let m = manifest_path("Account", &id);
        assert_eq!(
            m.as_ref(),
            "_forcelake/manifests/Account/date=2024-02-29/historical-20240229.json"
        );
        assert_eq!(
            parse_manifest_path(&m),
            Some(("Account".to_string(), id.clone()))
        );
        assert_eq!(
            data_file_chunk("historical-20240229-a1b2-0.parquet"),
            Some("historical-20240229")
        );
        let b = id.clone();
        let bf = ChunkId {
            kind: ChunkKind::Backfill,
            tag: Some("20261127T101500Z".into()),
            ..b
        };
        assert_eq!(bf.to_string(), "backfill.20261127T101500Z-20240229");
        assert_eq!(ChunkId::parse(&bf.to_string()), Some(bf));
        assert_eq!(ChunkId::parse("backfill.-20240229"), None);
        assert!(is_forcelake_file("historical-20240229-a1b2-0.parquet"));
        assert!(!is_forcelake_file("part-00001-3f1c9a7e-c000.zstd.parquet"));
        let log = commit_log_path("Account", d, 12);
        assert_eq!(
            log.as_ref(),
            "_forcelake/commits/Account/date=2024-02-29/0000000012.json"
        );
        assert_eq!(parse_commit_log_seq(&log), Some(12));
        assert_eq!(ChunkId::parse("backfill.a/b-20240229"), None);
    }

    proptest! {
        #[test]
        fn chunk_ids_round_trip(day in 0i64..40_000, a in 0i64..86_400_000, len in 1i64..86_400_000) {
            let d = NaiveDate::from_num_days_from_ce_opt(700_000 + day as i32).unwrap();
            let start = day_start(d) + chrono::Duration::milliseconds(a);
            let end = (start + chrono::Duration::milliseconds(len)).min(day_start(d) + chrono::Duration::days(1));
            prop_assume!(start < end);
            let id = ChunkId::new(ChunkKind::Backfill, start, end).with_tag("20261127T101500Z");
            let text = id.to_string();
            prop_assert_eq!(ChunkId::parse(&text), Some(id.clone()));
            let m = manifest_path("Invoice__c", &id);
            prop_assert_eq!(parse_manifest_path(&m), Some(("Invoice__c".to_string(), id.clone())));
            let f = data_path("Invoice__c", &id, "ff00", 3);
            let name = f.filename().unwrap().to_string();
            prop_assert_eq!(data_file_chunk(&name), Some(text.as_str()));
        }
    }
}
