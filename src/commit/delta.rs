//! Keeping each object's Delta table level with its manifests (SPEC §3 "The Delta table"):
//! the commit that follows a chunk's manifest, and the catch-up a writing run starts with,
//! which makes the commits a crash prevented and then deletes the files superseded chunks
//! left behind.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use object_store::ObjectStore;

use crate::context::{Context, SyncError};
use crate::sink::delta::{ChunkCommit, DeltaFile, DeltaOutcome, DeltaTables, TableState};
use crate::sink::layout::{self, ChunkId};
use crate::sink::manifest::{self, Manifest};

/// The Delta commit of a committed manifest: its files in, the files of the chunks it
/// supersedes out. A chunk without files that supersedes nothing changes no table.
pub(super) async fn commit(
    delta: &DeltaTables,
    arrow: &arrow::datatypes::Schema,
    m: &Manifest,
    superseded: &[Manifest],
    replace_day: Option<chrono::NaiveDate>,
) -> Result<(), SyncError> {
    let removes: Vec<String> = superseded
        .iter()
        .flat_map(|o| o.files.iter().map(|f| f.path.clone()))
        .collect();
    if m.files.is_empty() && superseded.is_empty() && replace_day.is_none() {
        return Ok(());
    }
    let day = chrono::NaiveDate::parse_from_str(&m.day, "%Y-%m-%d").map_err(|e| {
        SyncError::Internal(format!("manifest {}: day {:?}: {e}", m.chunk_id, m.day))
    })?;
    let commit = ChunkCommit {
        chunk_id: m.chunk_id.clone(),
        adds: m
            .files
            .iter()
            .map(|f| DeltaFile {
                path: f.path.clone(),
                day,
                rows: f.rows,
                bytes: f.bytes,
            })
            .collect(),
        removes,
        settles: superseded.iter().map(|o| o.chunk_id.clone()).collect(),
        replace_day,
    };
    match delta.commit_chunk(&m.object, arrow, commit).await {
        Ok(DeltaOutcome::Committed(version)) => {
            tracing::debug!(object = %m.object, chunk = %m.chunk_id, version, "Delta commit");
            Ok(())
        }
        Ok(DeltaOutcome::AlreadyThere) => Ok(()),
        Err(e) => Err(crate::sink::SinkError::from(e).into()),
    }
}

/// The chunk id in a data file's path (`<Object>/date=…/<chunk>-<attempt>-<n>.parquet`).
fn file_chunk(path: &str) -> Option<&str> {
    crate::sink::layout::data_file_chunk(path.rsplit('/').next()?)
}

/// What the table lacks or still holds compared with the live manifests (those no committed
/// backfill supersedes), in commit order: one catch-up commit per chunk. `manifests` must hold
/// every backfill manifest and every manifest whose chunk has no file in the table; the files
/// a backfill supersedes are found in the table by their chunk id.
pub fn behind(manifests: &[Manifest], table: &HashSet<String>) -> Vec<ChunkCommit> {
    let superseded: HashSet<&str> = manifests
        .iter()
        .flat_map(|m| m.supersedes.iter().map(String::as_str))
        .collect();
    let mut by_chunk: HashMap<&str, Vec<&String>> = HashMap::new();
    for p in table {
        if let Some(c) = file_chunk(p) {
            by_chunk.entry(c).or_default().push(p);
        }
    }
    let mut live: Vec<&Manifest> = manifests
        .iter()
        .filter(|m| !superseded.contains(m.chunk_id.as_str()))
        .collect();
    live.sort_by(|a, b| {
        a.committed_at
            .cmp(&b.committed_at)
            .then(a.chunk_id.cmp(&b.chunk_id))
    });
    let mut out = Vec::new();
    for m in live {
        let Ok(day) = chrono::NaiveDate::parse_from_str(&m.day, "%Y-%m-%d") else {
            continue;
        };
        let adds: Vec<DeltaFile> = m
            .files
            .iter()
            .filter(|f| !table.contains(&f.path))
            .map(|f| DeltaFile {
                path: f.path.clone(),
                day,
                rows: f.rows,
                bytes: f.bytes,
            })
            .collect();
        let mut removes: Vec<String> = m
            .supersedes
            .iter()
            .filter_map(|id| by_chunk.get(id.as_str()))
            .flatten()
            .map(|p| p.to_string())
            .collect();
        removes.sort();
        if !adds.is_empty() || !removes.is_empty() {
            out.push(ChunkCommit {
                chunk_id: m.chunk_id.clone(),
                adds,
                removes,
                settles: m.supersedes.clone(),
                replace_day: None,
            });
        }
    }
    out
}

/// How an object's table stands against its manifests.
pub struct Lag {
    pub state: TableState,
    /// The catch-up commits it needs, in commit order.
    pub todo: Vec<ChunkCommit>,
    /// Files it holds that no manifest names (e.g. a compaction's output).
    pub unmanaged: u64,
}

/// How far an object's table is behind its manifests. Reads the table, the manifest listing,
/// every backfill manifest and the manifests of chunks without a file in the table (not every
/// manifest). A chunk whose `txn` the log holds is not behind, even when a compaction has
/// replaced its files.
pub async fn lag(
    store: &Arc<dyn ObjectStore>,
    delta: &DeltaTables,
    object: &str,
) -> Result<Lag, SyncError> {
    let ids = manifest::list_all_chunks(store.as_ref(), object).await?;
    let state = delta
        .state(object)
        .await
        .map_err(crate::sink::SinkError::from)?;
    let named: HashSet<String> = ids.iter().map(|c| c.to_string()).collect();
    let unmanaged = state
        .files
        .iter()
        .filter(|p| file_chunk(p).is_none_or(|c| !named.contains(c)))
        .count() as u64;
    if ids.is_empty() {
        return Ok(Lag {
            state,
            todo: vec![],
            unmanaged,
        });
    }
    let represented: HashSet<&str> = state.files.iter().filter_map(|p| file_chunk(p)).collect();
    let wanted: Vec<_> = ids
        .into_iter()
        .filter(|id| !id.is_marker())
        .filter(|id| {
            id.kind == crate::sink::layout::ChunkKind::Backfill
                || !represented.contains(id.to_string().as_str())
        })
        .collect();
    let manifests = manifest::load_some(store.clone(), object, wanted).await?;
    let mut todo = behind(&manifests, &state.files);
    let done = delta
        .committed(object, todo.iter().map(|c| c.chunk_id.clone()).collect())
        .await
        .map_err(crate::sink::SinkError::from)?;
    todo.retain(|c| !done.contains(&c.chunk_id));
    Ok(Lag {
        state,
        todo,
        unmanaged,
    })
}

/// Brings an object's table level with its manifests (the commits a crash or an error
/// prevented), then deletes the files of superseded chunks that are left (the table no longer
/// lists them). Returns the catch-up commits made.
pub async fn settle(
    ctx: &Context,
    object: &str,
    arrow: &arrow::datatypes::Schema,
) -> Result<usize, SyncError> {
    let mut made = 0;
    if let Some(delta) = ctx.delta.as_deref() {
        let Lag { state, todo, .. } = lag(&ctx.store, delta, object).await?;
        // A retyped column cannot go into the table: refused before anything is fetched.
        if let Some(table) = &state.schema {
            let new = crate::sink::delta::table_schema(object, arrow)
                .map_err(crate::sink::SinkError::from)?;
            crate::sink::delta::schema_diff(object, table, &new)
                .map_err(crate::sink::SinkError::from)?;
        }
        if !todo.is_empty() {
            tracing::info!(
                object,
                commits = todo.len(),
                "making the Delta commits an earlier run did not make"
            );
        }
        for c in todo {
            if let DeltaOutcome::Committed(_) = delta
                .commit_chunk(object, arrow, c)
                .await
                .map_err(crate::sink::SinkError::from)?
            {
                made += 1;
            }
        }
    }
    let n = finish_supersedes(&ctx.store, object).await?;
    if n > 0 {
        tracing::info!(
            object,
            files = n,
            "removed files that an earlier backfill superseded"
        );
    }
    Ok(made)
}

/// Finishes deletions a crash may have interrupted: files of chunks that a committed backfill
/// chunk superseded.
pub async fn finish_supersedes(
    store: &Arc<dyn ObjectStore>,
    object: &str,
) -> Result<usize, crate::sink::SinkError> {
    let ids = manifest::list_chunks(store.as_ref(), object).await?;
    let mut deleted = 0;
    for id in ids.iter().filter(|c| c.kind == layout::ChunkKind::Backfill) {
        let m = manifest::load(store.as_ref(), &layout::manifest_path(object, id)).await?;
        for old_id in &m.supersedes {
            let Some(old) = ChunkId::parse(old_id) else {
                continue;
            };
            let Ok(old_m) =
                manifest::load(store.as_ref(), &layout::manifest_path(object, &old)).await
            else {
                continue;
            };
            for f in &old_m.files {
                let p = object_store::path::Path::from(f.path.as_str());
                if object_store::ObjectStoreExt::head(store.as_ref(), &p)
                    .await
                    .is_ok()
                {
                    crate::sink::store::delete_quietly(store, std::iter::once(f.path.clone()))
                        .await;
                    deleted += 1;
                }
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::manifest::FileEntry;

    fn m(id: &str, day: &str, files: &[&str], supersedes: &[&str], at: &str) -> Manifest {
        let chunk = ChunkId::parse(id).expect("a chunk id");
        let supersedes: Vec<String> = supersedes.iter().map(|s| s.to_string()).collect();
        Manifest {
            day: day.into(),
            window_start: String::new(),
            window_end: String::new(),
            files: files
                .iter()
                .map(|f| FileEntry {
                    path: f.to_string(),
                    rows: 3,
                    bytes: 100,
                })
                .collect(),
            rows: 3 * files.len() as u64,
            api_requests: 1,
            ..Manifest::example(&chunk, at, &supersedes)
        }
    }

    #[test]
    fn catch_up_adds_what_is_missing_and_removes_what_a_backfill_superseded() {
        let h = "Account/date=2024-01-01/historical-20240101-a1-0.parquet";
        let b = "Account/date=2024-01-01/backfill.x-20240101-b1-0.parquet";
        let h2 = "Account/date=2024-01-02/historical-20240102-a1-0.parquet";
        let manifests = vec![
            m(
                "historical-20240101",
                "2024-01-01",
                &[h],
                &[],
                "2024-02-01T00:00:00Z",
            ),
            m(
                "backfill.x-20240101",
                "2024-01-01",
                &[b],
                &["historical-20240101"],
                "2024-02-03T00:00:00Z",
            ),
            m(
                "historical-20240102",
                "2024-01-02",
                &[h2],
                &[],
                "2024-02-02T00:00:00Z",
            ),
        ];
        // the table has the first historical chunk; the backfill's commit never happened
        let table: HashSet<String> = [h.to_string()].into();
        let todo = behind(&manifests, &table);
        assert_eq!(todo.len(), 2);
        assert_eq!(todo[0].chunk_id, "historical-20240102");
        assert_eq!(todo[1].chunk_id, "backfill.x-20240101");
        assert_eq!(todo[1].adds[0].path, b);
        assert_eq!(todo[1].removes, vec![h.to_string()]);
        // level: nothing to do, and a superseded chunk is never added back
        let level: HashSet<String> = [b.to_string(), h2.to_string()].into();
        assert!(behind(&manifests, &level).is_empty());
        // an empty chunk changes nothing
        let empty = vec![m(
            "historical-20240103",
            "2024-01-03",
            &[],
            &[],
            "2024-02-04T00:00:00Z",
        )];
        assert!(behind(&empty, &HashSet::new()).is_empty());
    }
}
