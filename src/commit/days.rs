//! A window's day chunks: which are still to do, and which day each row belongs to.

use std::sync::Arc;

use object_store::ObjectStore;

use crate::commit::job::ChunkJob;
use crate::context::SyncError;
use crate::schema::ObjectSchema;
use crate::sink::layout::ChunkId;
use crate::sink::manifest::{self};
use crate::sink::writer::LocalPart;
use arrow::array::RecordBatch;

/// The day chunks of a window: one per UTC day it touches (the first and last may be parts).
pub fn day_chunks(window: &ChunkId) -> Vec<ChunkId> {
    crate::ranges::split_days(window.start, window.end)
        .into_iter()
        .map(|(a, b)| ChunkId {
            start: a,
            end: b,
            ..window.clone()
        })
        .collect()
}

/// A window's day chunks, which of them are committed already, and the first one still to
/// do; `None` when all are done. For a backfill: the days this backfill committed; for the
/// other kinds: the days chunks of any kind cover (what another run covered is not fetched
/// again).
pub(crate) async fn pending_days(
    store: &Arc<dyn ObjectStore>,
    job: &ChunkJob,
) -> Result<Option<(Vec<ChunkId>, Vec<bool>, usize)>, SyncError> {
    let days = day_chunks(&job.chunk);
    let covered: Vec<_> = manifest::list_chunks(store.as_ref(), &job.object.object)
        .await?
        .into_iter()
        .filter(|c| c.covers_for(&job.chunk))
        .map(|c| (c.start, c.end))
        .collect();
    let skip: Vec<bool> = days
        .iter()
        .map(|d| crate::ranges::subtract(d.start, d.end, &covered).is_empty())
        .collect();
    Ok(skip
        .iter()
        .position(|s| !s)
        .map(|first| (days, skip, first)))
}

/// What the decoder thread hands the committer, in cursor order.
pub(crate) enum Done {
    /// A day the stream has passed: its rows are complete.
    Day {
        idx: usize,
        parts: Vec<LocalPart>,
        rows: u64,
    },
    /// Days `from..to` without a record.
    Empty { from: usize, to: usize },
}

/// The day index of every row (UTC days since the window's first day), in one pass over
/// the cursor column.
pub(crate) fn row_days(
    obj: &ObjectSchema,
    days: &[ChunkId],
    cursor_col: usize,
    batch: &RecordBatch,
) -> Result<Vec<usize>, SyncError> {
    use arrow::array::{Array, AsArray};
    let first_day = days[0].start.timestamp().div_euclid(86_400);
    let col = batch.column(cursor_col);
    let outside = || {
        SyncError::Internal(format!(
            "{}: a record outside the window {}..{} (or without {}) came back; the window is redone",
            obj.object,
            crate::timefmt::rfc3339(days[0].start),
            crate::timefmt::rfc3339(days[days.len() - 1].end),
            obj.cursor_field
        ))
    };
    if col.null_count() > 0 {
        return Err(outside());
    }
    let stamps: Vec<i64> =
        if let Some(ts) = col.as_primitive_opt::<arrow::datatypes::TimestampMillisecondType>() {
            ts.values()
                .iter()
                .map(|v| v.div_euclid(86_400_000))
                .collect()
        } else if let Some(d) = col.as_primitive_opt::<arrow::datatypes::Date32Type>() {
            d.values().iter().map(|v| *v as i64).collect()
        } else {
            return Err(outside());
        };
    let n = days.len() as i64;
    stamps
        .into_iter()
        .map(|d| {
            let i = d - first_day;
            if (0..n).contains(&i) {
                Ok(i as usize)
            } else {
                Err(outside())
            }
        })
        .collect()
}

/// What a window's decoder reads: the written columns, plus the cursor when it is queried
/// only; and the cursor's column in decoded batches.
pub(crate) fn decode_schema(obj: &ObjectSchema) -> (ObjectSchema, usize) {
    let mut decode_schema = obj.clone();
    decode_schema.written = obj.columns.len();
    decode_schema.arrow = Arc::new(arrow::datatypes::Schema::new(
        obj.columns
            .iter()
            .map(crate::schema::arrow_field)
            .collect::<Vec<_>>(),
    ));
    let cursor_col = obj
        .columns
        .iter()
        .position(|c| c.name == obj.cursor_field)
        .unwrap_or(obj.columns.len() - 1);
    (decode_schema, cursor_col)
}
