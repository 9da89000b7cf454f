//! `status`: what the lake holds, derived from manifests only; and the run progress display.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use object_store::ObjectStore;
use serde::Serialize;

use crate::sink::layout::ChunkId;
use crate::sink::manifest;
use crate::sink::SinkError;
use crate::timefmt::rfc3339;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChunkCounts {
    pub committed: u64,
    pub pending: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Gap {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectStatus {
    pub object: String,
    pub rows: u64,
    pub chunks: ChunkCounts,
    pub incremental_position: Option<String>,
    pub last_committed_at: Option<String>,
    pub coverage_gaps: Vec<Gap>,
    /// Extra: the incremental pipeline's start point.
    pub incremental_start: Option<String>,
    /// Extra: when the newest incremental window chunk was committed.
    pub last_incremental_commit_at: Option<String>,
    /// Extra: first and last covered instants.
    pub covered_from: Option<String>,
    pub covered_to: Option<String>,
    /// Extra: rows per chunk kind.
    pub rows_by_kind: BTreeMap<String, u64>,
    /// Extra: day partitions with data.
    pub days_with_rows: u64,
    /// Extra: schema hashes in use, oldest first.
    pub schema_hashes: Vec<String>,
    /// Extra: rows per day partition (superseded chunks excluded).
    pub rows_per_day: BTreeMap<String, u64>,
    /// Extra: the object's Delta table (`table_format = "delta"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<DeltaStatus>,
    /// Extra: the deletes captured through getDeleted (tombstones), once there are any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletes: Option<DeletesStatus>,
    /// When the last reconciliation (live Ids against the current table) listed the Ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reconcile_at: Option<String>,
    /// The object's current table (`destination.current_table`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<crate::commit::current::CurrentState>,
}

/// The deletes lane of an object: what getDeleted answered, up to when.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeletesStatus {
    /// Tombstone rows in the change log.
    pub tombstones: u64,
    pub chunks: u64,
    /// The lane covers deletions from here to `covered_to` (its position).
    pub covered_from: Option<String>,
    pub covered_to: Option<String>,
    /// When the newest deletes chunk was committed.
    pub last_capture_at: Option<String>,
    /// Ranges getDeleted could not answer, with why: records deleted for good there stay in
    /// the lake as their last version.
    pub unanswered: Vec<String>,
}

/// The deletes lane of an object (`None` before its first capture).
async fn deletes_status(
    store: Arc<dyn ObjectStore>,
    name: &str,
    ids: Vec<ChunkId>,
) -> Result<Option<DeletesStatus>, SinkError> {
    if ids.is_empty() {
        return Ok(None);
    }
    let position = crate::fetch::deleted::deletes_position(&ids);
    let ms = manifest::load_some(store, name, ids).await?;
    Ok(Some(DeletesStatus {
        tombstones: ms.iter().map(|m| m.rows).sum(),
        chunks: ms.len() as u64,
        covered_from: ms.iter().map(|m| m.window_start.clone()).min(),
        covered_to: position.map(crate::timefmt::rfc3339),
        last_capture_at: ms.iter().map(|m| m.committed_at.clone()).max(),
        unanswered: ms
            .iter()
            .filter(|m| m.endpoint.starts_with("unanswered"))
            .map(|m| format!("{}..{}: {}", m.window_start, m.window_end, m.endpoint))
            .collect(),
    }))
}

/// The Delta table of an object as `status` sees it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeltaStatus {
    /// The table's newest version (`None`: no table yet).
    pub version: Option<u64>,
    /// Committed chunks whose Delta commit is still to be made (by the next writing run).
    pub behind_chunks: u64,
    /// Files the table holds that no manifest names (e.g. a compaction's output). A backfill
    /// of their day replaces them with the day's records.
    pub unmanaged_files: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackfillStatus {
    pub id: String,
    pub object: String,
    pub start: String,
    pub end: String,
    pub chunks: ChunkCounts,
    pub rows: u64,
    pub rows_per_day: BTreeMap<String, u64>,
    pub created_at: String,
    /// Committed share of the planned chunks, 0..=1.
    pub progress: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub objects: Vec<ObjectStatus>,
    pub backfills: Vec<BackfillStatus>,
}

/// Coverage gaps between the first and last covered instant.
pub fn coverage_gaps(
    windows: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let (Some(from), Some(to)) = (
        windows.iter().map(|w| w.0).min(),
        windows.iter().map(|w| w.1).max(),
    ) else {
        return vec![];
    };
    crate::ranges::subtract(from, to, windows)
}

/// Builds the status of `objects` (or of every object in the lake when empty).
pub async fn status(store: Arc<dyn ObjectStore>, objects: &[String]) -> Result<Status, SinkError> {
    let plans = crate::modes::backfill::list_plans(store.as_ref()).await?;
    let names = if objects.is_empty() {
        lake_objects(store.as_ref(), &plans).await?
    } else {
        objects.to_vec()
    };
    let mut out = Vec::new();
    let mut backfills = Vec::new();
    for name in names {
        // one listing for every lane: record versions, the deletes lane (getDeleted's
        // tombstones) and reconciliations (their tombstones)
        let (tombstones, data): (Vec<ChunkId>, Vec<ChunkId>) =
            manifest::list_all_chunks(store.as_ref(), &name)
                .await?
                .into_iter()
                .partition(ChunkId::holds_tombstones);
        let (deletes, reconciles): (Vec<ChunkId>, Vec<ChunkId>) =
            tombstones.into_iter().partition(ChunkId::is_deletes);
        let all = manifest::load_some(store.clone(), &name, data).await?;
        let failures = failed_chunks(store.as_ref(), &name).await;
        let rows_of: std::collections::HashMap<String, u64> =
            all.iter().map(|m| (m.chunk_id.clone(), m.rows)).collect();
        let all_ids: Vec<ChunkId> = all
            .iter()
            .filter_map(|m| ChunkId::parse(&m.chunk_id))
            .collect();
        for p in plans.iter().filter(|p| p.objects.contains(&name)) {
            backfills.push(backfill_status(p, &name, &all_ids, &rows_of, &failures));
        }
        let pending_backfill: u64 = backfills
            .iter()
            .filter(|b| b.object == name)
            .map(|b| b.chunks.pending)
            .sum();
        let mut o = object_status(&name, all, &failures, pending_backfill);
        o.deletes = deletes_status(store.clone(), &name, deletes).await?;
        o.last_reconcile_at = reconciles
            .iter()
            .map(|c| c.start)
            .max()
            .map(crate::timefmt::rfc3339);
        out.push(o);
    }
    Ok(Status {
        objects: out,
        backfills,
    })
}

/// Every object the lake knows of: those with manifests, in a backfill plan, or whose only
/// trace is a failed (or killed) chunk.
async fn lake_objects(
    store: &dyn ObjectStore,
    plans: &[crate::modes::backfill::BackfillPlan],
) -> Result<Vec<String>, SinkError> {
    let mut n = manifest::list_objects(store).await?;
    n.extend(plans.iter().flat_map(|p| p.objects.iter().cloned()));
    // objects whose only trace is a failed (or killed) chunk
    if let Ok(r) = store
        .list_with_delimiter(Some(&crate::sink::layout::failures_root()))
        .await
    {
        n.extend(
            r.common_prefixes
                .iter()
                .filter_map(|p| p.filename().map(str::to_string)),
        );
    }
    n.sort();
    n.dedup();
    Ok(n)
}

/// One backfill's progress on one object: a planned chunk is committed when the backfill's
/// chunks (whole, or QUERY_TIMEOUT halves) cover it, failed when a failure record names it.
fn backfill_status(
    p: &crate::modes::backfill::BackfillPlan,
    name: &str,
    all_ids: &[ChunkId],
    rows_of: &std::collections::HashMap<String, u64>,
    failures: &std::collections::HashSet<String>,
) -> BackfillStatus {
    let planned: Vec<(&crate::modes::backfill::PlannedChunk, ChunkId)> = p
        .chunks
        .iter()
        .filter(|c| c.object == name)
        .filter_map(|c| ChunkId::parse(&c.chunk_id).map(|id| (c, id)))
        .collect();
    let mut committed = 0u64;
    let mut failed = 0u64;
    let mut rows_per_day = BTreeMap::new();
    for (c, id) in &planned {
        // committed when the backfill's chunks (whole, or QUERY_TIMEOUT halves) cover it
        if crate::modes::backfill::uncovered(id, all_ids).is_empty() {
            committed += 1;
            let rows: u64 = all_ids
                .iter()
                .filter(|x| {
                    x.kind == id.kind && x.tag == id.tag && x.start >= id.start && x.end <= id.end
                })
                .filter_map(|x| rows_of.get(&x.to_string()))
                .sum();
            rows_per_day.insert(c.day.clone(), rows);
        } else if failures.iter().any(|f| {
            ChunkId::parse(f)
                .map(|x| x.tag == id.tag && x.start >= id.start && x.end <= id.end)
                .unwrap_or(false)
        }) {
            failed += 1;
        }
    }
    BackfillStatus {
        id: p.id.clone(),
        object: name.to_string(),
        start: p.start.clone(),
        end: p.end.clone(),
        chunks: ChunkCounts {
            committed,
            pending: planned.len() as u64 - committed - failed,
            failed,
        },
        rows: rows_per_day.values().sum(),
        rows_per_day,
        created_at: p.created_at.clone(),
        progress: if planned.is_empty() {
            1.0
        } else {
            committed as f64 / planned.len() as f64
        },
    }
}

/// One object's chunks, rows, coverage and schema versions, from its manifests (those a
/// backfill superseded no longer hold data).
fn object_status(
    name: &str,
    all: Vec<manifest::Manifest>,
    failures: &std::collections::HashSet<String>,
    pending_backfill: u64,
) -> ObjectStatus {
    let superseded: std::collections::HashSet<String> = all
        .iter()
        .flat_map(|m| m.supersedes.iter().cloned())
        .collect();
    let committed: std::collections::HashSet<&str> =
        all.iter().map(|m| m.chunk_id.as_str()).collect();
    let failed_count = failures
        .iter()
        .filter(|c| !committed.contains(c.as_str()))
        .count() as u64;
    let ms: Vec<_> = all
        .into_iter()
        .filter(|m| !superseded.contains(&m.chunk_id))
        .collect();
    let ids: Vec<ChunkId> = ms
        .iter()
        .filter_map(|m| ChunkId::parse(&m.chunk_id))
        .collect();
    let windows: Vec<_> = ids
        .iter()
        .filter(|c| !c.is_marker())
        .map(|c| (c.start, c.end))
        .collect();
    let inc = crate::modes::incremental::incremental_state(&ids);
    let mut rows_by_kind = BTreeMap::new();
    let mut days = std::collections::BTreeSet::new();
    let mut hashes: Vec<(String, String)> = Vec::new();
    for m in &ms {
        *rows_by_kind.entry(m.kind.as_str().to_string()).or_insert(0) += m.rows;
        if m.rows > 0 {
            days.insert(m.day.clone());
        }
        if !hashes.iter().any(|(_, h)| h == &m.schema_hash) {
            hashes.push((m.committed_at.clone(), m.schema_hash.clone()));
        }
    }
    hashes.sort();
    ObjectStatus {
        object: name.to_string(),
        rows: ms.iter().map(|m| m.rows).sum(),
        chunks: ChunkCounts {
            committed: ids.iter().filter(|c| !c.is_marker()).count() as u64,
            pending: pending_backfill,
            failed: failed_count,
        },
        rows_per_day: {
            let mut m = BTreeMap::new();
            for x in &ms {
                if x.rows > 0 {
                    *m.entry(x.day.clone()).or_insert(0) += x.rows;
                }
            }
            m
        },
        incremental_position: inc.map(|(_, p)| rfc3339(p)),
        incremental_start: inc.map(|(s, _)| rfc3339(s)),
        last_incremental_commit_at: ms
            .iter()
            .filter(|m| {
                m.kind == crate::sink::layout::ChunkKind::Incremental
                    && m.window_start != m.window_end
            })
            .map(|m| m.committed_at.clone())
            .max(),
        last_committed_at: ms.iter().map(|m| m.committed_at.clone()).max(),
        // Markers (empty windows) count as covered points, so the stretch between a
        // historical sync and the incremental start point shows as a gap.
        coverage_gaps: coverage_gaps(&ids.iter().map(|c| (c.start, c.end)).collect::<Vec<_>>())
            .into_iter()
            .map(|(a, b)| Gap {
                start: rfc3339(a),
                end: rfc3339(b),
            })
            .collect(),
        covered_from: windows.iter().map(|w| w.0).min().map(rfc3339),
        covered_to: windows.iter().map(|w| w.1).max().map(rfc3339),
        rows_by_kind,
        days_with_rows: days.len() as u64,
        schema_hashes: hashes.into_iter().map(|(_, h)| h).collect(),
        delta: None,
        deletes: None,
        last_reconcile_at: None,
        current: None,
    }
}

/// `status`'s view of each object's table: its version, and how many chunks' commits it lacks
/// (a crash between a manifest and its Delta commit; the next writing run makes them).
pub async fn add_table_status(
    store: &Arc<dyn ObjectStore>,
    delta: &crate::sink::delta::DeltaTables,
    current: bool,
    status: &mut Status,
) -> Result<(), crate::context::SyncError> {
    for o in &mut status.objects {
        let lag = crate::commit::delta::lag(store, delta, &o.object).await?;
        o.delta = Some(DeltaStatus {
            version: lag.state.version,
            behind_chunks: lag.todo.len() as u64,
            unmanaged_files: lag.unmanaged,
        });
        if current {
            o.current = Some(crate::commit::current::state(store, delta, &o.object).await?);
        }
    }
    Ok(())
}

/// Chunk ids with a failure record (`_forcelake/failures/<Object>/<chunk>.json`).
async fn failed_chunks(store: &dyn ObjectStore, object: &str) -> std::collections::HashSet<String> {
    use futures::TryStreamExt;
    let prefix = crate::sink::layout::failures_prefix(object);
    let metas: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .unwrap_or_default();
    metas
        .iter()
        .filter_map(|m| {
            m.location
                .filename()
                .and_then(|f| f.strip_suffix(".json"))
                .map(str::to_string)
        })
        .collect()
}

impl Status {
    pub fn to_text(&self) -> String {
        if self.objects.is_empty() {
            return "the lake has no committed chunks yet (run `forcelake sync`)\n".into();
        }
        let mut s = format!(
            "{:<20} {:>12} {:>10} {:>8} {:>7}  {:<24} {:<24} {:<24} {:<5} {}\n",
            "OBJECT",
            "ROWS",
            "COMMITTED",
            "PENDING",
            "FAILED",
            "COVERED FROM",
            "COVERED TO",
            "INCREMENTAL POSITION",
            "GAPS",
            if self.objects.iter().any(|o| o.delta.is_some()) {
                "DELTA TABLE"
            } else {
                ""
            }
        );
        for o in &self.objects {
            let gaps = if o.coverage_gaps.is_empty() {
                "none".to_string()
            } else {
                o.coverage_gaps
                    .iter()
                    .map(|g| format!("[{}, {})", g.start, g.end))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let delta = match &o.delta {
                None => String::new(),
                Some(DeltaStatus { version: None, .. }) => "none yet".into(),
                Some(d) => {
                    let v = d.version.unwrap_or(0);
                    let mut t = match d.behind_chunks {
                        0 => format!("v{v}, level"),
                        n => format!("v{v}, {n} chunks behind (the next sync commits them)"),
                    };
                    if d.unmanaged_files > 0 {
                        t.push_str(&format!(
                            "; {} files no manifest names (another tool wrote them, e.g. a compaction; a backfill of their days replaces them)",
                            d.unmanaged_files
                        ));
                    }
                    t
                }
            };
            s.push_str(&format!(
                "{:<20} {:>12} {:>10} {:>8} {:>7}  {:<24} {:<24} {:<24} {:<5} {}\n",
                o.object,
                o.rows,
                o.chunks.committed,
                o.chunks.pending,
                o.chunks.failed,
                o.covered_from.as_deref().unwrap_or("-"),
                o.covered_to.as_deref().unwrap_or("-"),
                o.incremental_position.as_deref().unwrap_or("-"),
                gaps,
                delta
            ));
            if let Some(d) = &o.deletes {
                s.push_str(&format!(
                    "{:<20} deletes: {} tombstones, captured to {} (last capture {}){}\n",
                    "",
                    d.tombstones,
                    d.covered_to.as_deref().unwrap_or("-"),
                    d.last_capture_at.as_deref().unwrap_or("-"),
                    if d.unanswered.is_empty() {
                        String::new()
                    } else {
                        format!("; getDeleted could not answer {}", d.unanswered.join(", "))
                    }
                ));
            }
            if let Some(c) = &o.current {
                s.push_str(&format!(
                    "{:<20} current table: {}\n",
                    "",
                    match c.version {
                        None => format!(
                            "none yet ({} chunks to merge; the next sync builds it)",
                            c.behind_chunks
                        ),
                        Some(v) => format!(
                            "v{v}, {} live records in {} files, last merge {}{}{} — {}",
                            c.rows,
                            c.files,
                            c.last_merge_at.as_deref().unwrap_or("-"),
                            o.last_reconcile_at
                                .as_deref()
                                .map(|t| format!(", last reconciliation {t}"))
                                .unwrap_or_default(),
                            match c.behind_chunks {
                                0 => String::new(),
                                n => format!(", {n} chunks behind (the next sync merges them)"),
                            },
                            c.url
                        ),
                    }
                ));
            }
        }
        if !self.backfills.is_empty() {
            s.push_str(&format!(
                "\n{:<26} {:<14} {:<22} {:<22} {:>9} {:>8} {:>7} {:>10} {:>9}\n",
                "BACKFILL",
                "OBJECT",
                "START",
                "END",
                "COMMITTED",
                "PENDING",
                "FAILED",
                "ROWS",
                "PROGRESS"
            ));
            for b in &self.backfills {
                s.push_str(&format!(
                    "{:<26} {:<14} {:<22} {:<22} {:>9} {:>8} {:>7} {:>10} {:>8.0}%\n",
                    b.id,
                    b.object,
                    b.start,
                    b.end,
                    b.chunks.committed,
                    b.chunks.pending,
                    b.chunks.failed,
                    b.rows,
                    b.progress * 100.0
                ));
            }
        }
        s
    }
}

/// `status [--object O]…`: what the lake holds, per object, and what is behind.
pub async fn run(
    cfg: crate::config::Config,
    object: &[String],
    out: crate::app::Out,
) -> Result<crate::app::ExitCode, crate::context::SyncError> {
    use crate::context::SyncError;
    for o in object {
        if !cfg.objects.iter().any(|c| c.name.eq_ignore_ascii_case(o)) {
            let names: Vec<&str> = cfg.objects.iter().map(|c| c.name.as_str()).collect();
            let close = crate::salesforce::ident::closest(o, names.iter().copied(), 3);
            return Err(crate::config::ConfigError::Invalid {
                key: "--object".into(),
                value: format!("{o:?}"),
                rule: format!(
                    "is not a configured object{}; configured: {}",
                    crate::context::suggest(&close),
                    names.join(", ")
                ),
            }
            .into());
        }
    }
    let store =
        crate::sink::store::open(&cfg.destination.url, &cfg.destination.options).map_err(|e| {
            SyncError::Destination {
                url: cfg.destination.url.clone(),
                message: e.to_string(),
            }
        })?;
    let mut st = status(store.clone(), object).await?;
    if let Some(delta) = crate::context::open_tables(&cfg.destination)? {
        add_table_status(&store, &delta, cfg.destination.current_table, &mut st).await?;
    }
    if out.json {
        crate::app::print_json(&st);
    } else {
        print!("{}", st.to_text());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::DateOrTime;

    #[test]
    fn gaps_between_covered_windows_are_reported() {
        let t = |s: &str| DateOrTime::parse(s).unwrap().as_start();
        let w = vec![
            (t("2024-01-01"), t("2024-01-02")),
            (t("2024-01-03"), t("2024-01-04")),
            (t("2024-01-02"), t("2024-01-02T06:00:00Z")),
        ];
        assert_eq!(
            coverage_gaps(&w),
            vec![(t("2024-01-02T06:00:00Z"), t("2024-01-03"))]
        );
        assert!(coverage_gaps(&[]).is_empty());
    }
}
