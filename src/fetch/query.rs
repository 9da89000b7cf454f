//! Fetching a chunk's pages: one query, or — when the field list makes the request URI too
//! long for Salesforce — several queries over groups of fields, read in lockstep and joined by
//! Id into synthetic pages. Either way pages go to the decoder through a bounded channel, so
//! memory stays at a few pages whatever the chunk's size.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::context::{Budget, SyncError};
use crate::decode::parse_envelope;
use crate::salesforce::{soql, Client};
use crate::schema::ObjectSchema;

/// Salesforce caps URI plus headers at 16,384 bytes; keep the URI well under it.
pub const MAX_URI: usize = 15_000;

/// How a fetch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchEnd {
    Done { total_size: u64 },
    BudgetSpent,
}

/// A part of a split query: what it selects, and the JSON keys its records bring (a
/// relationship's paths come as one nested object under the relationship's name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldGroup {
    pub select: Vec<String>,
    pub keys: Vec<String>,
}

/// Splits the select list into groups whose query URI fits (each group also selects Id; the
/// paths of one relationship stay in one group, so its object is never cut in two).
pub fn field_groups(
    client: &Client,
    obj: &ObjectSchema,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    all: bool,
    max_uri: usize,
) -> Vec<FieldGroup> {
    let query = |fields: &[String]| {
        soql::chunk_query(
            &obj.object,
            fields,
            &obj.cursor_field,
            obj.cursor_is_date,
            start,
            end,
        )
    };
    let whole = FieldGroup {
        select: obj.select_list(),
        keys: obj.columns.iter().map(|c| c.name.clone()).collect(),
    };
    if client.query_uri_len(&query(&whole.select), all) <= max_uri {
        return vec![whole];
    }
    let id = || FieldGroup {
        select: vec!["Id".to_string()],
        keys: vec!["Id".to_string()],
    };
    let mut groups: Vec<FieldGroup> = Vec::new();
    let mut cur = id();
    for c in obj.columns.iter().filter(|c| c.name != "Id") {
        let paths = c.select_paths();
        let before = cur.select.len();
        cur.select.extend(paths.iter().cloned());
        cur.keys.push(c.name.clone());
        if client.query_uri_len(&query(&cur.select), all) > max_uri && cur.keys.len() > 2 {
            cur.select.truncate(before);
            cur.keys.pop();
            let mut next = id();
            next.select.extend(paths);
            next.keys.push(c.name.clone());
            groups.push(std::mem::replace(&mut cur, next));
        }
    }
    groups.push(cur);
    groups
}

pub struct Fetcher<'a> {
    pub client: &'a Arc<Client>,
    pub budget: &'a Budget,
    pub what: &'a str,
    pub object: &'a str,
    pub all: bool,
    /// Requests sent so far (read by the committer while pages are still being fetched).
    pub requests: &'a std::sync::atomic::AtomicU64,
    /// Permits for pages not yet decoded (single queries); the decoder returns one per page.
    pub ahead: Option<Arc<tokio::sync::Semaphore>>,
}

impl Fetcher<'_> {
    async fn get(
        &mut self,
        first: Option<&str>,
        next: Option<&str>,
    ) -> Result<Option<Bytes>, SyncError> {
        if !self.budget.try_take() {
            return Ok(None);
        }
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body = match (first, next) {
            (_, Some(u)) => self.client.query_next(u, self.what).await?,
            (Some(q), None) => self.client.query_first(q, self.all, self.what).await?,
            (None, None) => return Err(SyncError::Internal("fetch without a query".into())),
        };
        Ok(Some(body))
    }

    /// One query: pages go to `tx` as they arrive.
    pub async fn single(
        &mut self,
        q: &str,
        tx: &tokio::sync::mpsc::Sender<Bytes>,
    ) -> Result<FetchEnd, SyncError> {
        let mut next: Option<String> = None;
        let mut total_size = 0;
        loop {
            // A page is fetched only once the decoder has room for it (`ahead` permits, see
            // `ChunkJob::pages_ahead`), so a chunk holds a bounded number of pages.
            if let Some(ahead) = &self.ahead {
                match ahead.acquire().await {
                    Ok(p) => p.forget(),
                    Err(_) => return Ok(FetchEnd::Done { total_size }),
                }
            }
            let Ok(permit) = tx.reserve().await else {
                return Ok(FetchEnd::Done { total_size }); // the encoder stopped: its error is reported by the caller
            };
            let Some(body) = self.get(Some(q), next.as_deref()).await? else {
                return Ok(FetchEnd::BudgetSpent);
            };
            let env = parse_envelope(self.object, &body)?;
            if next.is_none() {
                total_size = env.total_size;
            }
            permit.send(body);
            match (env.done, env.next_records_url) {
                (true, _) => return Ok(FetchEnd::Done { total_size }),
                (false, Some(u)) => next = Some(u),
                (false, None) => {
                    return Err(SyncError::Internal(format!(
                        "{}: page says done=false but has no nextRecordsUrl",
                        self.what
                    )))
                }
            }
        }
    }

    /// Several queries over groups of fields, joined by Id in lockstep into synthetic pages;
    /// each query comes with the JSON keys its records bring ([`FieldGroup::keys`]).
    pub async fn split(
        &mut self,
        queries: &[(String, Vec<String>)],
        tx: &tokio::sync::mpsc::Sender<Bytes>,
    ) -> Result<FetchEnd, SyncError> {
        let mut groups: Vec<Group> = queries
            .iter()
            .map(|(q, f)| Group {
                query: q.clone(),
                fields: f.clone(),
                next: None,
                started: false,
                done: false,
                total: 0,
                buf: VecDeque::new(),
            })
            .collect();
        let mut total_size = None;
        loop {
            for g in groups.iter_mut() {
                if g.buf.is_empty() && !g.done && !self.fill(g).await? {
                    return Ok(FetchEnd::BudgetSpent);
                }
            }
            let totals: Vec<u64> = groups.iter().map(|g| g.total).collect();
            if totals.iter().any(|t| *t != totals[0]) {
                return Err(SyncError::CountMismatch {
                    object: self.object.to_string(),
                    chunk: format!("{} (split query: field groups disagree)", self.what),
                    received: totals[1..].iter().copied().max().unwrap_or(0),
                    total: totals[0],
                });
            }
            total_size.get_or_insert(totals[0]);
            let n = groups.iter().map(|g| g.buf.len()).min().unwrap_or(0);
            if n == 0 {
                if groups.iter().all(|g| g.done && g.buf.is_empty()) {
                    return Ok(FetchEnd::Done {
                        total_size: total_size.unwrap_or(0),
                    });
                }
                if groups.iter().any(|g| g.done && g.buf.is_empty()) {
                    return Err(SyncError::CountMismatch {
                        object: self.object.to_string(),
                        chunk: format!("{} (split query: a field group ended early)", self.what),
                        received: 0,
                        total: totals[0],
                    });
                }
                continue;
            }
            let out = self.merge(&mut groups, n, totals[0])?;
            if tx.send(Bytes::from(out)).await.is_err() {
                return Ok(FetchEnd::Done {
                    total_size: totals[0],
                });
            }
        }
    }

    /// Fetches a field group's next page into its buffer; false when the request budget is spent.
    async fn fill(&mut self, g: &mut Group) -> Result<bool, SyncError> {
        let first = (!g.started).then_some(g.query.as_str());
        let Some(body) = self.get(first, g.next.as_deref()).await? else {
            return Ok(false);
        };
        let page: RawPage =
            serde_json::from_slice(&body).map_err(|e| crate::decode::DecodeError::Malformed {
                object: self.object.to_string(),
                message: e.to_string(),
                truncated: e.is_eof(),
            })?;
        if !g.started {
            g.total = page.total_size;
            g.started = true;
        }
        g.done = page.done;
        g.next = page.next;
        if !g.done && g.next.is_none() {
            return Err(SyncError::Internal(format!(
                "{}: page says done=false but has no nextRecordsUrl",
                self.what
            )));
        }
        g.buf.extend(page.records);
        Ok(true)
    }

    /// Joins the next `n` records of every field group into one page: every group must hold
    /// the same Id at the same position.
    fn merge(&self, groups: &mut [Group], n: usize, total: u64) -> Result<Vec<u8>, SyncError> {
        let mut out = Vec::with_capacity(n * 512);
        out.extend_from_slice(
            format!("{{\"totalSize\":{},\"done\":false,\"records\":[", total).as_bytes(),
        );
        for k in 0..n {
            let recs: Vec<HashMap<String, Box<RawValue>>> = groups
                .iter_mut()
                .map(|g| g.buf.pop_front().expect("n records buffered"))
                .collect();
            let id = recs[0]
                .get("Id")
                .map(|v| v.get().to_string())
                .unwrap_or_default();
            if recs
                .iter()
                .any(|r| r.get("Id").map(|v| v.get()) != Some(id.as_str()))
            {
                return Err(SyncError::CountMismatch {
                    object: self.object.to_string(),
                    chunk: format!(
                        "{} (split query: records changed between the field groups' queries)",
                        self.what
                    ),
                    received: 0,
                    total,
                });
            }
            if k > 0 {
                out.push(b',');
            }
            out.push(b'{');
            let mut first = true;
            for (g, r) in groups.iter().zip(recs.iter()) {
                for f in &g.fields {
                    if f == "Id" && !first {
                        continue;
                    }
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    serde_json::to_writer(&mut out, f)
                        .map_err(|e| SyncError::Internal(e.to_string()))?;
                    out.push(b':');
                    out.extend_from_slice(
                        r.get(f.as_str())
                            .map(|v| v.get())
                            .unwrap_or("null")
                            .as_bytes(),
                    );
                }
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        Ok(out)
    }
}

#[derive(Deserialize)]
/// A query page as the split fetch reads it: each record kept as raw JSON values.
struct RawPage {
    #[serde(rename = "totalSize", default)]
    total_size: u64,
    #[serde(default)]
    done: bool,
    #[serde(rename = "nextRecordsUrl", default)]
    next: Option<String>,
    records: Vec<HashMap<String, Box<RawValue>>>,
}
/// One field group's query: its cursor and the records fetched but not yet merged.
struct Group {
    query: String,
    fields: Vec<String>,
    next: Option<String>,
    started: bool,
    done: bool,
    total: u64,
    buf: VecDeque<HashMap<String, Box<RawValue>>>,
}
