//! The current table's deletion memory: the `Id` and rank of every deletion merged so far
//! (`_forcelake/current/<Object>/deleted/*.parquet`), so that a version merged after its record's
//! deletion does not bring the record back.

use super::*;

/// The deletion memory's say on the candidates: a newer deletion beats a candidate.
pub(super) async fn remembered(
    ctx: &Context,
    object: &str,
    candidates: &mut HashMap<Key, Candidate>,
) -> Result<(), SinkError> {
    if candidates.is_empty() {
        return Ok(());
    }
    for (path, size) in memory_files(ctx, object).await? {
        for_each_batch(&ctx.store, &path, Some(size), None, |b| {
            let (ids, stamps, cursors) = memory_columns(&b, &path)?;
            for i in 0..b.num_rows() {
                let Some(c) = candidates.get_mut(&Key::new(ids.value(i))?) else {
                    continue;
                };
                let rank = Rank {
                    stamp: stamps.value(i),
                    cursor: cursors.value(i),
                    deleted: true,
                };
                if rank > c.rank {
                    c.rank = rank;
                    c.source = Source::DELETION;
                    c.remembered = true;
                } else if rank == c.rank {
                    c.remembered = true;
                }
            }
            Ok(())
        })
        .await?;
    }
    Ok(())
}

/// The deletion memory's files, with their sizes.
async fn memory_files(ctx: &Context, object: &str) -> Result<Vec<(String, u64)>, SinkError> {
    let prefix = crate::sink::layout::current_memory_prefix(object);
    let metas: Vec<_> = ctx
        .store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| SinkError::store(format!("listing {prefix}"), e))?;
    let mut out: Vec<(String, u64)> = metas
        .into_iter()
        .map(|m| (m.location.to_string(), m.size))
        .filter(|(p, _)| p.ends_with(".parquet"))
        .collect();
    out.sort();
    Ok(out)
}

fn memory_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("Id", DataType::Utf8, false),
        Field::new("stamp", DataType::Int64, false),
        Field::new("cursor", DataType::Int64, false),
    ]))
}

fn memory_columns<'a>(
    b: &'a RecordBatch,
    path: &str,
) -> Result<(&'a StringArray, &'a Int64Array, &'a Int64Array), SinkError> {
    let bad = || SinkError::Parquet {
        what: path.to_string(),
        message: "not a deletion-memory file (Id, stamp, cursor)".into(),
    };
    let ids = b
        .column_by_name("Id")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(bad)?;
    let stamps = b
        .column_by_name("stamp")
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .ok_or_else(bad)?;
    let cursors = b
        .column_by_name("cursor")
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .ok_or_else(bad)?;
    Ok((ids, stamps, cursors))
}

/// Adds deletions to the memory (one new file); returns its size.
pub(super) async fn remember(
    ctx: &Context,
    object: &str,
    deletions: &[(&str, Rank)],
) -> Result<u64, SinkError> {
    let batch = RecordBatch::try_new(
        memory_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(deletions.iter().map(|d| d.0))),
            Arc::new(Int64Array::from_iter_values(
                deletions.iter().map(|d| d.1.stamp),
            )),
            Arc::new(Int64Array::from_iter_values(
                deletions.iter().map(|d| d.1.cursor),
            )),
        ],
    )
    .map_err(|e| parquet_err(object, e))?;
    put_memory(ctx, object, &[batch]).await
}

/// Writes batches of the memory as one new file; returns its size.
async fn put_memory(
    ctx: &Context,
    object: &str,
    batches: &[RecordBatch],
) -> Result<u64, SinkError> {
    let body = parquet_bytes(object, batches)?;
    let len = body.len() as u64;
    let path = Path::from(format!(
        "{}/{}-{}.parquet",
        crate::sink::layout::current_memory_prefix(object),
        crate::timefmt::compact(chrono::Utc::now()),
        crate::commit::job::attempt_token()
    ));
    ctx.store
        .put(&path, PutPayload::from(body))
        .await
        .map_err(|e| SinkError::store(format!("writing {path}"), e))?;
    Ok(len)
}

/// Folds the deletion memory into one file once it has many (the new file first, then the
/// old ones go; a merge reading one that went lists again).
pub(super) async fn fold_memory(ctx: &Context, object: &str) {
    let r: Result<(), SinkError> = async {
        let files = memory_files(ctx, object).await?;
        if files.len() <= 32 {
            return Ok(());
        }
        let mut batches = Vec::new();
        for (p, size) in &files {
            for_each_batch(&ctx.store, p, Some(*size), None, |b| {
                batches.push(b);
                Ok(())
            })
            .await?;
        }
        put_memory(ctx, object, &batches).await?;
        for (p, _) in files {
            let _ = ctx.store.delete(&Path::from(p)).await;
        }
        Ok(())
    }
    .await;
    if let Err(e) = r {
        tracing::warn!(object, error = %e, "could not fold the current table's deletion memory; the next merge tries again");
    }
}

fn parquet_bytes(object: &str, batches: &[RecordBatch]) -> Result<Vec<u8>, SinkError> {
    let mut buf = Vec::new();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, memory_schema(), Some(props))
        .map_err(|e| parquet_err(object, e))?;
    for b in batches {
        w.write(b).map_err(|e| parquet_err(object, e))?;
    }
    w.close().map_err(|e| parquet_err(object, e))?;
    Ok(buf)
}

fn parquet_err(object: &str, e: impl std::fmt::Display) -> SinkError {
    SinkError::Parquet {
        what: format!("{object} deletion memory"),
        message: e.to_string(),
    }
}
