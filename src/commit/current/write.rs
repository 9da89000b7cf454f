//! Writing a merge's new file: the winning versions copied from the change log, and the
//! surviving rows of the files rewritten whole, in the table's schema.

use super::*;

/// Writes the winning versions (copied from the change log) and the surviving rows of the
/// files rewritten whole into new files of the table.
pub(super) async fn write_versions(
    ctx: &Context,
    schema: &ObjectSchema,
    sources: &[(String, u64)],
    picks: HashMap<u32, Vec<u32>>,
    rewrites: &[(String, u64, Vec<u64>)],
) -> Result<Vec<CurrentAdd>, SinkError> {
    if picks.is_empty() && rewrites.is_empty() {
        return Ok(vec![]);
    }
    let object = &schema.object;
    let target = schema.arrow.clone();
    let settings = crate::commit::job::parquet_settings(&ctx.config);
    let mut writer = ChunkFileWriter::new(
        target.clone(),
        &settings,
        object,
        "current",
        &ctx.scratch.dir,
    );
    let mut files: Vec<(u32, Vec<u32>)> = picks.into_iter().collect();
    files.sort_by_key(|(f, _)| *f);
    for (file, mut rows) in files {
        rows.sort_unstable();
        let keep: Vec<u64> = rows.into_iter().map(u64::from).collect();
        let (path, size) = &sources[file as usize];
        copy_rows(ctx, path, *size, &target, Pick::Only(&keep), &mut writer).await?;
    }
    for (path, size, dead) in rewrites {
        let full = table_path(object, path).to_string();
        copy_rows(ctx, &full, *size, &target, Pick::AllBut(dead), &mut writer).await?;
    }
    let token = crate::commit::job::attempt_token();
    let stamp = crate::timefmt::compact(chrono::Utc::now());
    let mut adds = Vec::new();
    for (n, part) in writer.finish()?.into_iter().enumerate() {
        let rel = format!("part-{stamp}-{token}-{n}.parquet");
        let (rows, bytes) = (part.rows, part.bytes);
        crate::sink::writer::place(
            &ctx.store,
            ctx.scratch.local.as_deref(),
            part,
            &table_path(object, &rel),
        )
        .await?;
        adds.push(CurrentAdd {
            path: rel,
            rows,
            bytes,
        });
    }
    Ok(adds)
}

/// Which rows of a file to copy (sorted row indexes).
enum Pick<'a> {
    Only(&'a [u64]),
    AllBut(&'a [u64]),
}

async fn copy_rows(
    ctx: &Context,
    path: &str,
    size: u64,
    target: &SchemaRef,
    pick: Pick<'_>,
    writer: &mut ChunkFileWriter,
) -> Result<(), SinkError> {
    let mut offset = 0u64;
    let (list, keep_listed) = match pick {
        Pick::Only(l) => (l, true),
        Pick::AllBut(l) => (l, false),
    };
    let mut next = list.iter().peekable();
    for_each_batch(&ctx.store, path, Some(size), None, |b| {
        let n = b.num_rows() as u64;
        let mut mask = vec![!keep_listed; b.num_rows()];
        while let Some(r) = next.next_if(|r| **r < offset + n) {
            if *r >= offset {
                mask[(*r - offset) as usize] = keep_listed;
            }
        }
        offset += n;
        if !mask.iter().any(|m| *m) {
            return Ok(());
        }
        let picked =
            filter_record_batch(&b, &BooleanArray::from(mask)).map_err(|e| SinkError::Parquet {
                what: path.to_string(),
                message: e.to_string(),
            })?;
        writer.write(&conform(&picked, target, path)?)
    })
    .await
}

/// A batch in the table's schema: columns by name, cast where the file's type differs, null
/// where the file predates the column.
fn conform(b: &RecordBatch, target: &SchemaRef, path: &str) -> Result<RecordBatch, SinkError> {
    let err = |m: String| SinkError::Parquet {
        what: path.to_string(),
        message: m,
    };
    let columns: Vec<ArrayRef> = target
        .fields()
        .iter()
        .map(|f| match b.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => cast(c, f.data_type()).map_err(|e| err(format!("column {}: {e}", f.name()))),
            None => Ok(new_null_array(f.data_type(), b.num_rows())),
        })
        .collect::<Result<_, _>>()?;
    RecordBatch::try_new(target.clone(), columns).map_err(|e| err(e.to_string()))
}
