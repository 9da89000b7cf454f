//! Delete capture: which records Salesforce deleted in a time range (getDeleted), written as
//! **tombstone rows** in the change log — the `Id`, `IsDeleted = true`, the `deletedDate` as the
//! cursor (so a tombstone lands in the day partition of its deletion), every other column null.
//!
//! Tombstones are `deletes` chunks: a lane of their own beside the record versions, committed
//! through the same gate (at most one live deletes chunk per instant, whatever runs at once),
//! manifests and Delta commits. The lane's position is the end of the contiguous coverage by
//! deletes chunks from the first one; the first capture starts at the object's incremental
//! start point. Time getDeleted cannot answer — older than its 15 days, or refused with
//! `INVALID_REPLICATION_DATE` after a purge of the delete log — is committed as an empty
//! chunk whose manifest's `endpoint` says `unanswered: <why>`, so the lane stays contiguous
//! and the gap stays on record (the run warns about it).

use std::sync::Arc;

use arrow::array::{new_null_array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow::datatypes::DataType;
use chrono::{DateTime, Duration, Utc};

use crate::commit::committer::Committer;
use crate::commit::days::pending_days;
use crate::commit::job::{attempt_token, ChunkJob, Tally};
use crate::context::{Budget, Context, SyncError};
use crate::salesforce::SfError;
use crate::schema::ObjectSchema;
use crate::sink::layout::{ChunkId, ChunkKind};
use crate::sink::writer::ChunkFileWriter;
use crate::timefmt::rfc3339;

/// getDeleted answers this far back (Salesforce: 15 days before the day of the call); the
/// capture asks no further back than this less an hour.
const WINDOW: Duration = Duration::days(15);
const MARGIN: Duration = Duration::hours(1);

/// What one capture did.
#[derive(Debug, Default, Clone)]
pub struct CaptureOutcome {
    /// The time range the capture covered (`None`: nothing to do yet).
    pub range: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub tombstones: u64,
    pub chunks: u64,
    pub requests: u64,
    /// Ranges getDeleted could not answer, with why.
    pub unanswered: Vec<(DateTime<Utc>, DateTime<Utc>, String)>,
}

impl CaptureOutcome {
    /// Each unanswered range as `<from>..<to>: unanswered: <why>` (RFC 3339).
    pub fn unanswered_lines(&self) -> Vec<String> {
        self.unanswered
            .iter()
            .map(|(a, b, why)| format!("{}..{}: {why}", rfc3339(*a), rfc3339(*b)))
            .collect()
    }
}

/// The lane's position: the end of the contiguous coverage by deletes chunks from the first.
pub fn deletes_position(chunks: &[ChunkId]) -> Option<DateTime<Utc>> {
    let mut w: Vec<(DateTime<Utc>, DateTime<Utc>)> = chunks
        .iter()
        .filter(|c| c.is_deletes() && !c.is_marker())
        .map(|c| (c.start, c.end))
        .collect();
    w.sort();
    let mut pos = w.first()?.0;
    for (a, b) in w {
        if a > pos {
            break;
        }
        pos = pos.max(b);
    }
    Some(pos)
}

fn floor_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    let ms = t.timestamp_millis();
    DateTime::from_timestamp_millis(ms - ms.rem_euclid(60_000)).unwrap_or(t)
}

/// Captures the deletes of `object` from the lane's position (or `start_point` for the first
/// capture) to `end`, and commits them.
pub async fn capture(
    ctx: &Context,
    budget: &Budget,
    object: &Arc<ObjectSchema>,
    start_point: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<CaptureOutcome, SyncError> {
    let committed =
        crate::sink::manifest::list_delete_chunks(ctx.store.as_ref(), &object.object).await?;
    let from = deletes_position(&committed).unwrap_or(start_point);
    capture_range(ctx, budget, object, &committed, from, end).await
}

/// The deletes chunks the next capture would commit: the stretches of `[position or
/// start_point, end)` (whole minutes) that no deletes chunk covers.
pub fn planned(
    committed: &[ChunkId],
    start_point: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<ChunkId> {
    let from = floor_minute(deletes_position(committed).unwrap_or(start_point));
    stretches(committed, from, floor_minute(end))
        .into_iter()
        .map(|(a, b)| ChunkId::new(ChunkKind::Deletes, a, b))
        .collect()
}

fn stretches(
    committed: &[ChunkId],
    from: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    if end <= from {
        return vec![];
    }
    let covered: Vec<_> = committed
        .iter()
        .filter(|c| c.is_deletes() && !c.is_marker())
        .map(|c| (c.start, c.end))
        .collect();
    crate::ranges::subtract(from, end, &covered)
}

/// Captures the deletes of `[from, end)` (whole minutes) that no deletes chunk of `committed`
/// covers: what `capture` does from the lane's position, and what `run-chunk` does for a
/// planned deletes chunk.
pub async fn capture_range(
    ctx: &Context,
    budget: &Budget,
    object: &Arc<ObjectSchema>,
    committed: &[ChunkId],
    from: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<CaptureOutcome, SyncError> {
    let mut out = CaptureOutcome::default();
    let todo = stretches(committed, floor_minute(from), floor_minute(end));
    let Some(&(first, _)) = todo.first() else {
        return Ok(out);
    };
    let mut reached = first;
    for (a, b) in todo {
        reached = capture_stretch(ctx, budget, object, a, b, &mut out).await?;
        if reached < b {
            break; // getDeleted covered less: the rest comes next time
        }
    }
    out.range = Some((first, reached));
    Ok(out)
}

/// Captures `[from, end)`, which no deletes chunk covers; how far it got.
async fn capture_stretch(
    ctx: &Context,
    budget: &Budget,
    object: &Arc<ObjectSchema>,
    from: DateTime<Utc>,
    end: DateTime<Utc>,
    out: &mut CaptureOutcome,
) -> Result<DateTime<Utc>, SyncError> {
    // How far back getDeleted answers is counted from Salesforce's clock (the real now), not
    // from a replayed one (`FORCELAKE_NOW`).
    let oldest = floor_minute(Utc::now() - WINDOW + MARGIN);
    let mut from = from;
    if from < oldest {
        // older than getDeleted's window: on record as unanswered, not asked for
        let to = oldest.min(end);
        unanswered(
            ctx,
            object,
            from,
            to,
            "older than getDeleted's 15 days",
            out,
        )
        .await?;
        if to == end {
            return Ok(end);
        }
        from = to;
    }
    let (mut records, mut covered, mut refused) =
        list_deleted(ctx, budget, object, from, end, out).await?;
    if let Some(why) = refused.take() {
        // The delete log was purged after `from`: what is still in it can be asked for from
        // its earliestDateAvailable on, which a one-minute call at the end tells.
        let available = earliest_available(ctx, budget, object, end, out).await?;
        let to = available.filter(|e| *e > from && *e < end).unwrap_or(end);
        unanswered(ctx, object, from, to, &why, out).await?;
        if to == end {
            return Ok(end);
        }
        from = to;
        (records, covered, refused) = list_deleted(ctx, budget, object, from, end, out).await?;
        if let Some(why) = refused {
            unanswered(ctx, object, from, end, &why, out).await?;
            return Ok(end);
        }
    }
    if covered > from {
        let lane = Tombstones::getdeleted(&object.object, "getDeleted");
        commit_range(ctx, object, &lane, from, covered, &records, out).await?;
    }
    Ok(covered.max(from))
}

/// Commits `[from, to)` as time getDeleted could not answer (`why`): empty deletes chunks whose
/// manifests say `unanswered: <why>`, and a line of the outcome.
async fn unanswered(
    ctx: &Context,
    object: &Arc<ObjectSchema>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    why: &str,
    out: &mut CaptureOutcome,
) -> Result<(), SyncError> {
    let why = format!("unanswered: {why}");
    let lane = Tombstones::getdeleted(&object.object, &why);
    commit_range(ctx, object, &lane, from, to, &[], out).await?;
    out.unanswered.push((from, to, why));
    Ok(())
}

/// getDeleted's `earliestDateAvailable` (rounded up to a minute), from a one-minute call that
/// ends at `end`; `None` when that call is refused too.
async fn earliest_available(
    ctx: &Context,
    budget: &Budget,
    object: &ObjectSchema,
    end: DateTime<Utc>,
    out: &mut CaptureOutcome,
) -> Result<Option<DateTime<Utc>>, SyncError> {
    budget.force_take();
    out.requests += 1;
    match ctx
        .client
        .get_deleted(&object.object, end - Duration::minutes(1), end)
        .await
    {
        Ok(r) => Ok(r
            .earliest_available
            .map(|e| floor_minute(e + Duration::seconds(59)))),
        Err(SfError::Api { code, .. }) if code == "INVALID_REPLICATION_DATE" => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The deleted records of `[from, end)`, sorted by deletion time, and how far getDeleted
/// covered; a range with more ids than getDeleted returns is asked for in halves. `Some(why)`
/// when getDeleted refuses the range (`INVALID_REPLICATION_DATE`).
#[allow(clippy::type_complexity)]
async fn list_deleted(
    ctx: &Context,
    budget: &Budget,
    object: &ObjectSchema,
    from: DateTime<Utc>,
    end: DateTime<Utc>,
    out: &mut CaptureOutcome,
) -> Result<(Vec<(String, DateTime<Utc>)>, DateTime<Utc>, Option<String>), SyncError> {
    let mut todo = vec![(from, end)];
    let mut records = Vec::new();
    let mut covered = from;
    while let Some((a, b)) = todo.pop() {
        budget.force_take();
        out.requests += 1;
        match ctx.client.get_deleted(&object.object, a, b).await {
            Ok(r) => {
                records.extend(r.records.into_iter().filter(|(_, t)| *t >= a && *t < b));
                let reached = r.latest_covered.map(floor_minute).unwrap_or(b).clamp(a, b);
                covered = reached;
                if reached < b {
                    break; // the rest is asked for from here by the next run
                }
            }
            Err(SfError::Api { code, .. })
                if code == "EXCEEDED_ID_LIMIT" && b - a >= Duration::minutes(2) =>
            {
                let mid = floor_minute(a + (b - a) / 2);
                tracing::info!(object = %object.object, from = %a, to = %b, "getDeleted: more ids than one call returns; asking for each half");
                todo.push((mid, b));
                todo.push((a, mid));
            }
            Err(SfError::Api { code, message, .. }) if code == "INVALID_REPLICATION_DATE" => {
                return Ok((vec![], from, Some(format!("{code}: {message}"))));
            }
            Err(e) => return Err(e.into()),
        }
    }
    records.sort_by(|x, y| x.1.cmp(&y.1).then_with(|| x.0.cmp(&y.0)));
    records.dedup();
    Ok((records, covered, None))
}

/// Which tombstone lane a commit goes to, and what its manifests say of where the deletions
/// came from.
pub struct Tombstones {
    pub kind: ChunkKind,
    /// The request that listed them (the manifest's `soql`).
    pub request: String,
    /// The manifest's `endpoint`.
    pub endpoint: String,
}

impl Tombstones {
    fn getdeleted(object: &str, endpoint: &str) -> Self {
        Self {
            kind: ChunkKind::Deletes,
            request: format!("GET sobjects/{object}/deleted/"),
            endpoint: endpoint.to_string(),
        }
    }
}

/// Commits `[from, to)` of a tombstone lane: a chunk per day with tombstones, and empty
/// chunks for the days without.
pub async fn commit_range(
    ctx: &Context,
    object: &Arc<ObjectSchema>,
    lane: &Tombstones,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    records: &[(String, DateTime<Utc>)],
    out: &mut CaptureOutcome,
) -> Result<(), SyncError> {
    let job = ChunkJob::new(
        object.clone(),
        ChunkId::new(lane.kind, from, to),
        &ctx.config,
    );
    let Some((days, skip, first)) = pending_days(&ctx.store, &job).await? else {
        return Ok(());
    };
    let attempt = attempt_token();
    let commit = Committer::for_window(
        ctx,
        &job,
        &days,
        &skip,
        &attempt,
        &lane.request,
        lane.endpoint.clone(),
        out.requests,
    );
    let mut tally = Tally::default();
    let mut empty_from: Option<usize> = None;
    for (i, day) in days.iter().enumerate().skip(first) {
        let of_day: Vec<&(String, DateTime<Utc>)> = records
            .iter()
            .filter(|(_, t)| *t >= day.start && *t < day.end)
            .collect();
        if of_day.is_empty() {
            empty_from.get_or_insert(i);
            continue;
        }
        if let Some(e) = empty_from.take() {
            commit.empty(e, i, &mut tally).await?;
        }
        if skip[i] {
            continue;
        }
        let batch = tombstones(object, &of_day)?;
        let mut w = ChunkFileWriter::new(
            object.arrow.clone(),
            &job.settings,
            &object.object,
            &day.to_string(),
            &ctx.scratch.dir,
        );
        w.write(&batch)?;
        let parts = w.finish()?;
        commit
            .day(i, parts, of_day.len() as u64, &mut tally)
            .await?;
    }
    if let Some(e) = empty_from {
        commit.empty(e, days.len(), &mut tally).await?;
    }
    out.tombstones += tally.rows;
    out.chunks += tally.committed;
    Ok(())
}

/// Tombstone rows in the object's written schema: `Id`, `IsDeleted = true`, the cursor =
/// `deletedDate` (a date cursor: its UTC day), every other column null.
pub fn tombstones(
    object: &ObjectSchema,
    records: &[&(String, DateTime<Utc>)],
) -> Result<RecordBatch, SyncError> {
    let n = records.len();
    let columns: Vec<ArrayRef> = object
        .columns
        .iter()
        .take(object.written)
        .zip(object.arrow.fields())
        .map(|(c, f)| -> ArrayRef {
            if c.name == "Id" {
                Arc::new(StringArray::from_iter_values(
                    records.iter().map(|r| r.0.as_str()),
                ))
            } else if c.name == "IsDeleted" && f.data_type() == &DataType::Boolean {
                Arc::new(BooleanArray::from(vec![true; n]))
            } else if c.name.eq_ignore_ascii_case(&object.cursor_field) {
                cursor_column(f.data_type(), records)
                    .unwrap_or_else(|| new_null_array(f.data_type(), n))
            } else {
                new_null_array(f.data_type(), n)
            }
        })
        .collect();
    RecordBatch::try_new(object.arrow.clone(), columns).map_err(|e| {
        SyncError::Internal(format!("{}: building tombstone rows: {e}", object.object))
    })
}

fn cursor_column(t: &DataType, records: &[&(String, DateTime<Utc>)]) -> Option<ArrayRef> {
    use arrow::array::{Date32Array, TimestampMillisecondArray};
    match t {
        DataType::Timestamp(_, tz) => Some(Arc::new(
            TimestampMillisecondArray::from_iter_values(
                records.iter().map(|r| r.1.timestamp_millis()),
            )
            .with_timezone_opt(tz.clone()),
        )),
        DataType::Date32 => Some(Arc::new(Date32Array::from_iter_values(
            records
                .iter()
                .map(|r| r.1.timestamp().div_euclid(86_400) as i32),
        ))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn c(a: &str, b: &str) -> ChunkId {
        ChunkId::new(ChunkKind::Deletes, t(a), t(b))
    }

    #[test]
    fn the_position_is_the_end_of_the_contiguous_deletes_coverage() {
        assert_eq!(deletes_position(&[]), None);
        let a = c("2026-12-01T10:00:00Z", "2026-12-02T00:00:00Z");
        let b = c("2026-12-02T00:00:00Z", "2026-12-02T05:00:00Z");
        let hole = c("2026-12-03T00:00:00Z", "2026-12-03T01:00:00Z");
        let data = ChunkId::new(
            ChunkKind::Incremental,
            t("2026-12-02T05:00:00Z"),
            t("2026-12-04T00:00:00Z"),
        );
        assert_eq!(
            deletes_position(&[hole.clone(), b.clone(), a.clone(), data]),
            Some(t("2026-12-02T05:00:00Z"))
        );
        // an overlapping later chunk (a racing run's) extends it
        let over = c("2026-12-02T01:00:00Z", "2026-12-03T00:00:00Z");
        assert_eq!(
            deletes_position(&[a, b, over, hole]),
            Some(t("2026-12-03T01:00:00Z"))
        );
    }

    #[test]
    fn minutes_floor() {
        assert_eq!(
            floor_minute(t("2026-12-01T10:07:59.999Z")),
            t("2026-12-01T10:07:00Z")
        );
        assert_eq!(
            floor_minute(t("2026-12-01T10:07:00Z")),
            t("2026-12-01T10:07:00Z")
        );
    }
}
