//! The commit gate: for each object and each instant of its cursor time, at most one live
//! (not superseded) chunk covers it — whatever runs at once, on any number of machines. The
//! deletes chunks (tombstones) are a lane of their own: they are decided only against each
//! other, and record versions only against record versions.
//!
//! Chunk ids alone cannot keep that: two runs planned from the same state cut different windows
//! (an incremental window ends at each run's own `now − lag`), and both would commit. So every
//! commit of a day goes through that day's **commit log**
//! (`_forcelake/commits/<Object>/date=…/<seq>.json`): the committer reads the log (and the
//! day's manifests, for lakes written before the log existed), decides against every live
//! chunk of the day ([`decide`]), and claims the next sequence number with a create-only put
//! holding its manifest. Two writers that read the same log race for the same number; the
//! loser reads again and now sees the winner. The claim is the commit; the manifest under
//! `_forcelake/manifests/` is written right after it, and a crash between the two is made good
//! by the next commit of that day (or the next attempt of the chunk), which writes every
//! claimed manifest still missing.
//!
//! The rule ([`decide`]):
//! - a chunk whose id is committed is `Already` committed;
//! - an incremental or historical chunk that overlaps a live chunk **yields**: its files are
//!   dropped, the live chunk stands, and the next run plans from the coverage (the incremental
//!   position is the end of the contiguous coverage by chunks of any kind);
//! - a backfill chunk supersedes every live chunk inside what its backfill covers of the day
//!   (itself and its committed siblings) — except a chunk of *another* backfill committed after
//!   this one began, which makes this one yield (both pulled the day whole); a live chunk that
//!   reaches past the backfill's end (an incremental run committed past a "today" backfill's
//!   cut while it ran) makes the chunk [`Overtaken`](crate::context::SyncError::Overtaken): it is
//!   fetched again, its end moved to cover that chunk (`runner::widen_backfill`);
//! - the one exception: a backfill day cut into several chunks (a window boundary inside the
//!   day, or halves after `QUERY_TIMEOUT`) keeps the old chunks that reach past its first parts
//!   until its last part commits and supersedes them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};

use crate::context::{LogCache, SyncError};
use crate::ranges::subtract;
use crate::sink::layout::{self, ChunkId, ChunkKind};
use crate::sink::manifest::{self, Manifest};
use crate::sink::store::list_paths;
use crate::sink::SinkError;

/// What the gate decided for a chunk.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// This chunk id is committed already (by an earlier attempt or another worker).
    Already,
    /// A live chunk covers (part of) this one: it is not committed.
    Yield { by: String },
    /// A backfill chunk must be fetched again: a live chunk reaches past its end.
    Overtaken { by: String },
    /// Commit, superseding these chunks; `whole_day`: the backfill now covers its whole day.
    Commit {
        supersedes: Vec<Manifest>,
        whole_day: bool,
    },
}

/// A backfill chunk's side of the rule.
#[derive(Debug, Clone, Copy)]
pub struct BackfillRule {
    /// When this attempt's query began.
    pub began: DateTime<Utc>,
    /// The planned window this chunk (with its siblings) replaces.
    pub replaces: (DateTime<Utc>, DateTime<Utc>),
}

fn time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn overlaps(a: &ChunkId, b: &ChunkId) -> bool {
    !a.is_marker() && !b.is_marker() && a.start < b.end && b.start < a.end
}

fn within(k: &ChunkId, cover: &[(DateTime<Utc>, DateTime<Utc>)]) -> bool {
    subtract(k.start, k.end, cover).is_empty()
}

/// The rule, on the committed manifests of the chunk's day (those of its lake that matter:
/// every chunk of the day that overlaps it, and every backfill chunk of the day).
pub fn decide(chunk: &ChunkId, rule: Option<&BackfillRule>, day: &[Manifest]) -> Decision {
    let me = chunk.to_string();
    if day.iter().any(|m| m.chunk_id == me) {
        return Decision::Already;
    }
    let superseded: HashSet<&str> = day
        .iter()
        .flat_map(|m| m.supersedes.iter().map(String::as_str))
        .collect();
    let live: Vec<(ChunkId, &Manifest)> = day
        .iter()
        .filter(|m| !superseded.contains(m.chunk_id.as_str()))
        .filter_map(|m| Some((ChunkId::parse(&m.chunk_id)?, m)))
        .filter(|(k, _)| !k.is_marker())
        // the lanes never meet: tombstones beside record versions of the same time
        .filter(|(k, _)| k.lane() == chunk.lane())
        .collect();
    let Some(rule) = rule.filter(|_| chunk.kind == ChunkKind::Backfill) else {
        return match live.iter().find(|(k, _)| overlaps(k, chunk)) {
            Some((k, _)) => Decision::Yield { by: k.to_string() },
            None => Decision::Commit {
                supersedes: vec![],
                whole_day: false,
            },
        };
    };
    let own = |k: &ChunkId| k.kind == ChunkKind::Backfill && k.tag == chunk.tag;
    // What this backfill covers of the day once this chunk commits, and when it began there.
    let mut cover = vec![(chunk.start, chunk.end)];
    let mut began = rule.began;
    for (k, m) in live.iter().filter(|(k, _)| own(k) && !overlaps(k, chunk)) {
        cover.push((k.start, k.end));
        if let Some(t) = time(&m.started_at) {
            began = began.min(t);
        }
    }
    let mut supersedes = Vec::new();
    for (k, m) in live.iter().filter(|(k, _)| overlaps(k, chunk)) {
        if own(k) {
            // an earlier, shorter attempt of this very part (a "today" chunk whose end moved on)
            if !within(k, &[(chunk.start, chunk.end)]) {
                return Decision::Overtaken { by: k.to_string() };
            }
            supersedes.push((*m).clone());
        } else if within(k, &cover) {
            let later = time(&m.committed_at).is_none_or(|t| t >= began);
            if k.kind == ChunkKind::Backfill && later {
                return Decision::Yield { by: k.to_string() };
            }
            supersedes.push((*m).clone());
        } else if !within(k, &[rule.replaces]) {
            return Decision::Overtaken { by: k.to_string() };
        }
        // else: it reaches into a part of the planned window a sibling chunk of this backfill
        // fetches; the last of them supersedes it.
    }
    let d0 = crate::timefmt::day_start(chunk.day());
    let whole_day = within(
        &ChunkId::new(chunk.kind, d0, d0 + chrono::Duration::days(1)),
        &cover,
    );
    Decision::Commit {
        supersedes,
        whole_day,
    }
}

/// What a gated commit did.
#[derive(Debug)]
pub enum GateOutcome {
    /// Committed; the chunks it superseded; whether its backfill now holds the whole day.
    Committed {
        superseded: Vec<Manifest>,
        whole_day: bool,
    },
    Already,
    /// Not committed: the live chunk `by` covers (part of) it.
    Yielded {
        by: String,
    },
}

/// A chunk whose claim this committer found without its manifest (its writer stopped between
/// the two) and completed: the manifest is written; its Delta commit and the deletion of what
/// it superseded are the caller's to make.
#[derive(Debug, Clone)]
pub struct Completed {
    pub manifest: Manifest,
    pub superseded: Vec<Manifest>,
}

/// The day's committed manifests that matter to `chunk` (see [`decide`]), the highest
/// sequence number of its log, and the claimed chunks whose manifests were missing (written
/// here).
async fn read_day(
    store: &Arc<dyn ObjectStore>,
    cache: &LogCache,
    object: &str,
    day: NaiveDate,
    chunk: &ChunkId,
) -> Result<(Vec<Manifest>, Option<u64>, Vec<Completed>), SinkError> {
    let (log_dir, manifest_dir) = (
        layout::commit_log_dir(object, day),
        layout::day_manifests_dir(object, day),
    );
    let (log, named) = futures::try_join!(
        list_paths(store.as_ref(), &log_dir),
        list_paths(store.as_ref(), &manifest_dir),
    )?;
    let mut seqs: Vec<(u64, Path)> = log
        .into_iter()
        .filter_map(|p| Some((layout::parse_commit_log_seq(&p)?, p)))
        .collect();
    seqs.sort();
    let last = seqs.last().map(|(s, _)| *s);
    let logged: Vec<Arc<Manifest>> = futures::stream::iter(seqs.into_iter().map(|(_, p)| {
        let store = store.clone();
        async move {
            if let Some(m) = cache.get(&p) {
                return Ok(m);
            }
            let m = Arc::new(manifest::load(store.as_ref(), &p).await?);
            cache.put(&p, m.clone());
            Ok::<_, SinkError>(m)
        }
    }))
    .buffered(16)
    .try_collect()
    .await?;
    let named: HashMap<String, Path> = named
        .into_iter()
        .filter_map(|p| Some((layout::parse_manifest_path(&p)?.1.to_string(), p)))
        .collect();
    let mut out: Vec<Manifest> = Vec::with_capacity(logged.len());
    let mut seen = HashSet::new();
    let mut completed = Vec::new();
    for m in &logged {
        if !named.contains_key(&m.chunk_id) {
            // claimed, but its writer stopped before the manifest: written for it
            if manifest::commit(store.as_ref(), m).await? == manifest::CommitOutcome::Committed {
                tracing::info!(object, chunk = %m.chunk_id, "completed a commit whose writer stopped between its claim and its manifest");
                let mut superseded = Vec::with_capacity(m.supersedes.len());
                for id in &m.supersedes {
                    match logged.iter().find(|o| o.chunk_id == *id) {
                        Some(o) => superseded.push((**o).clone()),
                        // committed before the day had a log
                        None => {
                            if let Some(p) = named.get(id) {
                                superseded.push(manifest::load(store.as_ref(), p).await?);
                            }
                        }
                    }
                }
                completed.push(Completed {
                    manifest: (**m).clone(),
                    superseded,
                });
            }
        }
        seen.insert(m.chunk_id.clone());
        out.push((**m).clone());
    }
    // Manifests committed before the day had a log: read those that can matter.
    let me = chunk.to_string();
    let legacy: Vec<&Path> = named
        .iter()
        .filter(|(id, _)| !seen.contains(*id))
        .filter(|(id, _)| {
            **id == me
                || ChunkId::parse(id)
                    .is_some_and(|k| k.kind == ChunkKind::Backfill || overlaps(&k, chunk))
        })
        .map(|(_, p)| p)
        .collect();
    for p in legacy {
        out.push(manifest::load(store.as_ref(), p).await?);
    }
    Ok((out, last, completed))
}

/// Commits `m` (its `supersedes` and `committed_at` filled in here) through its day's commit
/// log under the rule of [`decide`]. On `Yielded` and `Already` nothing was written.
/// Also returns the claims of the day it found without their manifest and completed.
pub async fn commit(
    store: &Arc<dyn ObjectStore>,
    cache: &LogCache,
    m: &mut Manifest,
    rule: Option<&BackfillRule>,
) -> Result<(GateOutcome, Vec<Completed>), SyncError> {
    let chunk = ChunkId::parse(&m.chunk_id)
        .ok_or_else(|| SyncError::Internal(format!("{} is not a chunk id", m.chunk_id)))?;
    let day = chunk.day();
    let mut completed = Vec::new();
    for attempt in 0u32.. {
        let (known, last, done) = read_day(store, cache, &m.object, day, &chunk).await?;
        completed.extend(done);
        let (superseded, whole_day) = match decide(&chunk, rule, &known) {
            Decision::Already => return Ok((GateOutcome::Already, completed)),
            Decision::Yield { by } => return Ok((GateOutcome::Yielded { by }, completed)),
            Decision::Overtaken { by } => {
                return Err(SyncError::Overtaken {
                    object: m.object.clone(),
                    chunk: m.chunk_id.clone(),
                    by,
                })
            }
            Decision::Commit {
                supersedes,
                whole_day,
            } => (supersedes, whole_day),
        };
        m.supersedes = superseded.iter().map(|s| s.chunk_id.clone()).collect();
        m.committed_at = crate::timefmt::rfc3339(Utc::now());
        let seq = last.map_or(0, |s| s + 1);
        let path = layout::commit_log_path(&m.object, day, seq);
        let body = crate::sink::json_line(&*m).map_err(|e| SyncError::Internal(e.to_string()))?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match store.put_opts(&path, PutPayload::from(body), opts).await {
            Ok(_) => {
                cache.put(&path, Arc::new(m.clone()));
                // the claim is the commit; the manifest follows it
                manifest::commit(store.as_ref(), m).await?;
                return Ok((
                    GateOutcome::Committed {
                        superseded,
                        whole_day,
                    },
                    completed,
                ));
            }
            Err(object_store::Error::AlreadyExists { .. }) => {
                tracing::debug!(object = %m.object, chunk = %m.chunk_id, seq, attempt, "another writer took the day's next commit; reading the log again");
                let jitter = rand::random::<u64>() % 20;
                tokio::time::sleep(std::time::Duration::from_millis(
                    (5 * attempt as u64).min(200) + jitter,
                ))
                .await;
            }
            Err(e) => return Err(SinkError::store(format!("committing {path}"), e).into()),
        }
    }
    unreachable!("the loop only ends by returning")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::rfc3339;
    use chrono::Duration;
    use object_store::ObjectStoreExt;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        crate::timefmt::day_start(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap())
    }

    fn man(id: &ChunkId, committed_min: i64, supersedes: &[&ChunkId]) -> Manifest {
        let at = rfc3339(t0() + Duration::minutes(committed_min));
        let supersedes: Vec<String> = supersedes.iter().map(|s| s.to_string()).collect();
        Manifest::example(id, &at, &supersedes)
    }

    fn h(kind: ChunkKind, a: i64, b: i64) -> ChunkId {
        ChunkId::new(kind, t0() + Duration::hours(a), t0() + Duration::hours(b))
    }

    #[test]
    fn a_second_incremental_window_over_the_same_time_yields() {
        let a = h(ChunkKind::Incremental, 1, 5);
        let b = h(ChunkKind::Incremental, 1, 6);
        let day = vec![man(&a, 0, &[])];
        assert_eq!(
            decide(&b, None, &day),
            Decision::Yield { by: a.to_string() }
        );
        assert_eq!(decide(&a, None, &day), Decision::Already);
        let c = h(ChunkKind::Incremental, 5, 6);
        assert!(matches!(decide(&c, None, &day), Decision::Commit { .. }));
    }

    #[test]
    fn a_backfill_supersedes_what_it_covers_and_is_overtaken_by_what_reaches_past_it() {
        let inc1 = h(ChunkKind::Incremental, 1, 5);
        let inc2 = h(ChunkKind::Incremental, 5, 9);
        let rule = BackfillRule {
            began: t0() + Duration::minutes(600),
            replaces: (t0(), t0() + Duration::hours(8)),
        };
        let bf = h(ChunkKind::Backfill, 0, 8).with_tag("B1");
        let day = vec![man(&inc1, 0, &[]), man(&inc2, 700, &[])];
        assert_eq!(
            decide(&bf, Some(&rule), &day),
            Decision::Overtaken {
                by: inc2.to_string()
            }
        );
        let wide = h(ChunkKind::Backfill, 0, 9).with_tag("B1");
        let rule = BackfillRule {
            replaces: (t0(), t0() + Duration::hours(9)),
            ..rule
        };
        match decide(&wide, Some(&rule), &day) {
            Decision::Commit {
                supersedes,
                whole_day,
            } => {
                assert_eq!(supersedes.len(), 2);
                assert!(!whole_day);
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn of_two_backfills_of_a_day_the_later_committer_yields_to_one_that_committed_after_it_began() {
        let b1 = h(ChunkKind::Backfill, 0, 24).with_tag("B1");
        let b2 = h(ChunkKind::Backfill, 0, 24).with_tag("B2");
        let rule = BackfillRule {
            began: t0() + Duration::minutes(10),
            replaces: (b2.start, b2.end),
        };
        assert_eq!(
            decide(&b2, Some(&rule), &[man(&b1, 20, &[])]),
            Decision::Yield { by: b1.to_string() }
        );
        match decide(&b2, Some(&rule), &[man(&b1, 5, &[])]) {
            Decision::Commit {
                supersedes,
                whole_day,
            } => {
                assert_eq!(supersedes[0].chunk_id, b1.to_string());
                assert!(whole_day);
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn the_parts_of_a_split_backfill_day_keep_old_chunks_until_the_last_part() {
        let hist = h(ChunkKind::Historical, 0, 24);
        let rule = BackfillRule {
            began: t0() + Duration::minutes(10),
            replaces: (hist.start, hist.end),
        };
        let p1 = h(ChunkKind::Backfill, 0, 12).with_tag("B1");
        let p2 = h(ChunkKind::Backfill, 12, 24).with_tag("B1");
        let mut day = vec![man(&hist, 0, &[])];
        assert_eq!(
            decide(&p1, Some(&rule), &day),
            Decision::Commit {
                supersedes: vec![],
                whole_day: false
            }
        );
        day.push(man(&p1, 20, &[]));
        match decide(&p2, Some(&rule), &day) {
            Decision::Commit {
                supersedes,
                whole_day,
            } => {
                assert_eq!(supersedes.len(), 1);
                assert!(whole_day);
            }
            d => panic!("{d:?}"),
        }
    }

    #[tokio::test]
    async fn a_claim_without_its_manifest_is_completed_by_the_next_commit_of_its_day() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let cache = LogCache::default();
        let first = h(ChunkKind::Historical, 0, 12);
        let m = man(&first, 0, &[]);
        // a writer that stopped between its claim and its manifest
        let claim = layout::commit_log_path("Account", first.day(), 0);
        store
            .put(
                &claim,
                PutPayload::from(crate::sink::json_line(&m).unwrap()),
            )
            .await
            .unwrap();
        // the same chunk again: already committed, and completed
        let mut again = man(&first, 5, &[]);
        let (o, done) = commit(&store, &LogCache::default(), &mut again, None)
            .await
            .unwrap();
        assert!(matches!(o, GateOutcome::Already), "{o:?}");
        assert_eq!(done.len(), 1);
        assert!(
            store.head(&m.path().unwrap()).await.is_ok(),
            "manifest written"
        );
        // a later commit of the day finds nothing left to complete and takes seq 1
        let mut next = man(&h(ChunkKind::Historical, 12, 24), 9, &[]);
        let (o, done) = commit(&store, &cache, &mut next, None).await.unwrap();
        assert!(matches!(o, GateOutcome::Committed { .. }), "{o:?}");
        assert!(done.is_empty());
        let seq1 = layout::commit_log_path("Account", first.day(), 1);
        assert!(store.head(&seq1).await.is_ok());
        // an overlapping chunk yields
        let mut over = man(&h(ChunkKind::Incremental, 6, 18), 10, &[]);
        let (o, _) = commit(&store, &cache, &mut over, None).await.unwrap();
        assert!(matches!(o, GateOutcome::Yielded { .. }), "{o:?}");
    }

    // Any sequence of commits through the rule leaves no instant under two live chunks.
    proptest! {
        #[test]
        fn live_chunks_never_overlap(ops in proptest::collection::vec((0u8..3, 0i64..24, 1i64..24, 0u8..3), 1..25)) {
            let mut day: Vec<Manifest> = Vec::new();
            for (n, (kind, a, len, tag)) in ops.into_iter().enumerate() {
                let b = (a + len).min(24);
                let kind = [ChunkKind::Historical, ChunkKind::Incremental, ChunkKind::Backfill][kind as usize];
                let mut id = h(kind, a, b);
                let rule = BackfillRule { began: t0() + Duration::minutes(n as i64 * 10 - 5), replaces: (id.start, id.end) };
                if kind == ChunkKind::Backfill {
                    id = id.with_tag(format!("B{tag}"));
                }
                if let Decision::Commit { supersedes, .. } = decide(&id, Some(&rule), &day) {
                    let s: Vec<&ChunkId> = vec![];
                    let mut m = man(&id, n as i64 * 10, &s);
                    m.supersedes = supersedes.iter().map(|x| x.chunk_id.clone()).collect();
                    day.push(m);
                }
                let gone: HashSet<String> = day.iter().flat_map(|m| m.supersedes.clone()).collect();
                let live: Vec<ChunkId> = day.iter().filter(|m| !gone.contains(&m.chunk_id)).filter_map(|m| ChunkId::parse(&m.chunk_id)).collect();
                for (i, x) in live.iter().enumerate() {
                    for y in &live[i + 1..] {
                        prop_assert!(!overlaps(x, y), "{} and {} both live", x, y);
                    }
                }
            }
        }
    }
}
