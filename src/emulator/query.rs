//! `query` / `queryAll`: SOQL execution, GROUP BY day aggregates, `nextRecordsUrl` paging with cursors.

use super::*;

/// `/services/data/…`: Bulk API 2.0 query jobs (any method), else the GET resources.
pub(super) async fn data_api(
    st: State<Arc<Inner>>,
    method: axum::http::Method,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let parts: Vec<String> = uri
        .path()
        .trim_start_matches("/services/data/")
        .trim_end_matches('/')
        .split('/')
        .map(str::to_string)
        .collect();
    if parts.get(1).map(String::as_str) == Some("jobs")
        && parts.get(2).map(String::as_str) == Some("query")
    {
        return bulk::dispatch(&st.0, method, &headers, &uri, parts, body).await;
    }
    if method != axum::http::Method::GET {
        return not_found().await;
    }
    rest(st, headers, uri).await
}

pub(super) async fn rest(State(st): State<Arc<Inner>>, headers: HeaderMap, uri: Uri) -> Response {
    let n = match admit(&st, &headers).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    let daily_limit = st.daily_limit.load(Ordering::Relaxed);
    let path = uri
        .path()
        .trim_start_matches("/services/data/")
        .trim_end_matches('/');
    let parts: Vec<&str> = path.split('/').collect();
    let Some(version) = parts.first().and_then(|v| v.strip_prefix('v')) else {
        return rest_error(
            &st,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        );
    };
    let version = version.to_string();
    let batch = headers
        .get("sforce-query-options")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.split(',')
                .find_map(|p| p.trim().strip_prefix("batchSize="))
                .and_then(|v| v.trim().parse::<usize>().ok())
        })
        .unwrap_or(2000)
        .clamp(200, 2000);
    if matches!(parts.get(1), Some(&"query") | Some(&"queryAll")) {
        st.hold.point().await;
    }
    let query_param = || {
        uri.query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.into_owned())
        })
    };
    match &parts[1..] {
        [] => json_ok(&st, serde_json::json!({"limits": format!("/services/data/v{version}/limits"), "sobjects": format!("/services/data/v{version}/sobjects"), "query": format!("/services/data/v{version}/query"), "queryAll": format!("/services/data/v{version}/queryAll")}).to_string()),
        ["limits"] => {
            let used = n.min(daily_limit);
            json_ok(&st, serde_json::json!({
                "DailyApiRequests": {"Max": daily_limit, "Remaining": daily_limit - used},
                "DailyBulkV2QueryJobs": {"Max": st.cfg.bulk.daily_jobs, "Remaining": st.bulk_jobs_left.load(Ordering::SeqCst)},
                "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                "DataStorageMB": {"Max": 1024, "Remaining": 1000},
            }).to_string())
        }
        ["sobjects"] => {
            let body = global_describe(&st.data.read().expect("dataset lock"), &version).to_string();
            json_ok(&st, body)
        }
        ["sobjects", obj, "describe"] => {
            let hidden = st.cfg.faults.hidden_objects.iter().any(|h| h.eq_ignore_ascii_case(obj));
            let t = (!hidden)
                .then(|| st.data.read().expect("dataset lock").table_arc(obj))
                .flatten();
            match t {
                Some(t) => json_ok(&st, object_describe(&t.def, &version).to_string()),
                None => rest_error(&st, StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist"),
            }
        }
        ["sobjects", obj, "deleted"] => get_deleted(&st, obj, uri.query()),
        ["query"] | ["queryAll"] | ["query", _] | ["queryAll", _] if is_slow(&st) => {
            let d = st.cfg.faults.slow_first_queries.map(|(_, d)| d).unwrap_or_default();
            tokio::time::sleep(d).await;
            rest_error(&st, StatusCode::SERVICE_UNAVAILABLE, "SERVER_UNAVAILABLE", "Server Unavailable")
        }
        ["query"] | ["queryAll"] => {
            let all = parts[1] == "queryAll";
            match query_param() {
                None => rest_error(&st, StatusCode::BAD_REQUEST, "MALFORMED_QUERY", "A query string has to be specified"),
                Some(q) => start_query(&st, &q, all, batch, &version),
            }
        }
        ["query", loc] | ["queryAll", loc] => next_page(&st, loc, &version),
        _ => rest_error(&st, StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist"),
    }
}

/// Answers `SELECT DAY_ONLY(f), COUNT(Id) … GROUP BY DAY_ONLY(f)` (or a date field): one
/// `AggregateResult` record per day, in one batch — more than 2,000 groups is an error, as
/// aggregate queries cannot be continued with `queryMore`.
pub(super) fn aggregate_by_day(
    st: &Inner,
    table: &Table,
    g: &soql::GroupByDay,
    rows: &[u32],
) -> Response {
    if st.cfg.faults.refuse_aggregates {
        return rest_error(
            st,
            StatusCode::BAD_REQUEST,
            "QUERY_TIMEOUT",
            "Your query request was running for too long.",
        );
    }
    let monotone = table
        .synthetic
        .as_ref()
        .filter(|_| table.is_monotone(g.field));
    let mut days: std::collections::BTreeMap<Option<i32>, u64> = Default::default();
    for &i in rows {
        let day = match monotone {
            Some(s) => Some(s.stamp(i as u64).div_euclid(86_400_000) as i32),
            None => match table.row(i as usize)[g.field] {
                Cell::DateTime(ms) => Some(ms.div_euclid(86_400_000) as i32),
                Cell::Date(d) => Some(d),
                _ => None,
            },
        };
        *days.entry(day).or_default() += 1;
    }
    if days.len() > 2000 {
        return rest_error(
            st,
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            "Aggregate query does not support queryMore(), use LIMIT to restrict the results to a single batch",
        );
    }
    let records: Vec<serde_json::Value> = days
        .iter()
        .map(|(d, n)| {
            let day = d.and_then(|d| {
                chrono::DateTime::from_timestamp(d as i64 * 86_400, 0)
                    .map(|t| t.format("%Y-%m-%d").to_string())
            });
            let mut r = serde_json::Map::new();
            r.insert(
                "attributes".into(),
                serde_json::json!({"type": "AggregateResult"}),
            );
            r.insert(g.day_key.clone(), day.into());
            r.insert(g.count_key.clone(), (*n).into());
            serde_json::Value::Object(r)
        })
        .collect();
    json_ok(
        st,
        serde_json::json!({"totalSize": records.len(), "done": true, "records": records})
            .to_string(),
    )
}

/// Parses a query and finds the rows its WHERE clause selects (in table order, before any
/// ORDER BY, LIMIT or aggregation); `Err` is Salesforce's error answer.
pub(super) fn select(
    st: &Inner,
    q: &str,
    all: bool,
    timeouts: bool,
) -> Result<(soql::Query, Arc<Table>, Vec<u32>), Response> {
    let data: Vec<Arc<Table>> = st.data.read().expect("dataset lock").tables.clone();
    let parsed = soql::parse(q, |name| {
        data.iter()
            .find(|t| t.def.name.eq_ignore_ascii_case(name))
            .map(|t| &t.def)
    });
    let (query, _) = match parsed {
        Ok(p) => p,
        Err(e) => return Err(rest_error(st, StatusCode::BAD_REQUEST, e.code, &e.message)),
    };
    let table = data
        .iter()
        .find(|t| t.def.name == query.object)
        .expect("parsed object exists")
        .clone();
    let record_query = timeouts && !query.count && query.group.is_none();
    if let (Some(h), Some(c), true) = (st.cfg.faults.query_timeout_hours, &query.cond, record_query)
    {
        if let Some((lo, hi)) = c.datetime_span() {
            if hi - lo > h as i64 * 3_600_000 {
                return Err(rest_error(
                    st,
                    StatusCode::BAD_REQUEST,
                    "QUERY_TIMEOUT",
                    "Your query request was running for too long.",
                ));
            }
        }
    }
    let deleted_col = table.def.field_index("IsDeleted");
    // A synthetic table answers a bare range on its cursor exactly by index arithmetic (its
    // records are never deleted); everything else goes through the row-by-row filter.
    let exact = match (&table.synthetic, &query.cond) {
        (Some(s), None) => Some(0..s.n as u32),
        (Some(s), Some(c)) => s.monotone_fields().iter().find_map(|&f| {
            let (lo, hi) = c.exact_range_on(f)?;
            let a = s.first_at_or_after(lo);
            Some(a as u32..s.first_at_or_after(hi).max(a) as u32)
        }),
        _ => None,
    };
    let answered = exact.is_some();
    // Candidates: a datetime range answered from a sorted index, else every row.
    let candidates: Vec<u32> = match (exact, query.cond.as_ref().and_then(|c| c.datetime_range())) {
        (Some(r), _) => r.collect(),
        (None, Some((field, lo, hi))) => {
            let idx = datetime_index(st, &table, field);
            let a = idx.partition_point(|(v, _)| *v < lo);
            let b = idx.partition_point(|(v, _)| *v < hi);
            idx[a..b].iter().map(|(_, r)| *r).collect()
        }
        (None, None) => (0..table.len() as u32).collect(),
    };
    let rows: Vec<u32> = if answered {
        candidates
    } else {
        candidates
            .into_iter()
            .filter(|&i| {
                let r = table.row(i as usize);
                if !all {
                    if let Some(d) = deleted_col {
                        if r[d] == Cell::Bool(true) {
                            return false;
                        }
                    }
                }
                query.cond.as_ref().map(|c| c.eval(&r)).unwrap_or(true)
            })
            .collect()
    };
    Ok((query, table, rows))
}

/// The selected rows in the query's ORDER BY, past its OFFSET, up to its LIMIT.
pub(super) fn order_and_limit(query: &soql::Query, table: &Table, mut rows: Vec<u32>) -> Vec<u32> {
    let presorted = query
        .order
        .first()
        .is_some_and(|k| !k.desc && table.is_monotone(k.field));
    if !query.order.is_empty() && !presorted {
        rows.sort_by(|a, b| {
            soql::order_rows(
                &table.row(*a as usize),
                &table.row(*b as usize),
                &query.order,
            )
        });
    }
    rows.into_iter()
        .skip(query.offset)
        .take(query.limit.unwrap_or(usize::MAX))
        .collect()
}

pub(super) fn start_query(
    st: &Arc<Inner>,
    q: &str,
    all: bool,
    batch: usize,
    version: &str,
) -> Response {
    let (query, table, rows) = match select(st, q, all, true) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(g) = &query.group {
        return aggregate_by_day(st, &table, g, &rows);
    }
    let rows = order_and_limit(&query, &table, rows);
    if query.count {
        return json_ok(
            st,
            format!(
                "{{\"totalSize\":{},\"done\":true,\"records\":[]}}",
                rows.len()
            ),
        );
    }
    let seq = st.seq.fetch_add(1, Ordering::Relaxed);
    let locator = format!("01g5g00000{:08X}", seq);
    let cursor = Cursor {
        table,
        rows,
        fields: query.fields.clone(),
        rels: query.rels.clone(),
        pos: 0,
        batch,
        last_used: Instant::now(),
        seq,
    };
    render_and_advance(st, locator, cursor, version)
}

pub(super) fn render_cache(
    st: &Inner,
    table: &Arc<Table>,
    fields: &[usize],
) -> Arc<Vec<std::sync::OnceLock<Box<[u8]>>>> {
    let key = (table.def.name.clone(), fields.to_vec());
    let mut g = st.rendered.lock().expect("render cache");
    match g.get(&key) {
        Some((v, cache)) if *v == table.version && cache.len() == table.len() => cache.clone(),
        _ => {
            let cache: Arc<Vec<std::sync::OnceLock<Box<[u8]>>>> = Arc::new(
                (0..table.len())
                    .map(|_| std::sync::OnceLock::new())
                    .collect(),
            );
            g.insert(key, (table.version, cache.clone()));
            cache
        }
    }
}

/// The table's rows sorted by a datetime field (nulls left out), cached per table snapshot.
pub(super) fn datetime_index(st: &Inner, table: &Arc<Table>, field: usize) -> Arc<Vec<(i64, u32)>> {
    let key = (table.def.name.clone(), field);
    let id = table.version as usize;
    if let Some((snap, idx)) = st.indexes.lock().expect("index cache").get(&key) {
        if *snap == id {
            return idx.clone();
        }
    }
    let mut v: Vec<(i64, u32)> = (0..table.len())
        .filter_map(|i| match table.row(i)[field] {
            Cell::DateTime(ms) => Some((ms, i as u32)),
            _ => None,
        })
        .collect();
    v.sort_unstable();
    let idx = Arc::new(v);
    st.indexes
        .lock()
        .expect("index cache")
        .insert(key, (id, idx.clone()));
    idx
}

pub(super) fn next_page(st: &Arc<Inner>, loc: &str, version: &str) -> Response {
    let Some((id, offset)) = loc.rsplit_once('-') else {
        return rest_error(
            st,
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        );
    };
    let n = st.next_requests.fetch_add(1, Ordering::Relaxed) + 1;
    if st.cfg.faults.expire_locator_at == Some(n) {
        st.cursors.lock().expect("cursor map").remove(id);
        return rest_error(
            st,
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        );
    }
    let cursor = {
        let mut cs = st.cursors.lock().expect("cursor map");
        match cs.remove(id) {
            Some(c)
                if c.last_used.elapsed() <= st.cfg.locator_idle
                    && offset.parse::<usize>().ok() == Some(c.pos) =>
            {
                Some(c)
            }
            Some(c) if offset.parse::<usize>().ok() != Some(c.pos) => {
                // Re-reading an earlier page of a live cursor is allowed: rewind.
                match offset.parse::<usize>() {
                    Ok(o) if o < c.rows.len() && c.last_used.elapsed() <= st.cfg.locator_idle => {
                        Some(Cursor { pos: o, ..c })
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    };
    match cursor {
        Some(c) => render_and_advance(st, id.to_string(), c, version),
        None => rest_error(
            st,
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        ),
    }
}

pub(super) fn render_and_advance(
    st: &Arc<Inner>,
    locator: String,
    mut c: Cursor,
    version: &str,
) -> Response {
    let table = c.table.clone();
    let end = (c.pos + c.batch).min(c.rows.len());
    let done = end >= c.rows.len();
    // Sized for the page up front (one allocation; synthetic records are ~1.3 KB).
    let per_record = if table.synthetic.is_some() { 1600 } else { 600 };
    let mut out = Vec::with_capacity((end - c.pos) * per_record + 200);
    out.extend_from_slice(format!("{{\"totalSize\":{},\"done\":{}", c.rows.len(), done).as_bytes());
    if !done {
        out.extend_from_slice(
            format!(",\"nextRecordsUrl\":\"/services/data/v{version}/query/{locator}-{end}\"")
                .as_bytes(),
        );
    }
    out.extend_from_slice(b",\"records\":[");
    let bad = st
        .cfg
        .faults
        .bad_value
        .as_ref()
        .filter(|(o, _)| o.eq_ignore_ascii_case(&table.def.name))
        .and_then(|(_, f)| table.def.field_index(f));
    // Records with relationships are rendered from the parents as they are now (no caches).
    let fast = bad.is_none() && version == "62.0" && c.rels.is_empty();
    let data = (!c.rels.is_empty()).then(|| st.data.read().expect("dataset lock").clone());
    let parents = data.as_ref().map(|data| Parents {
        data,
        rels: &c.rels,
    });
    let cache = if fast && table.synthetic.is_none() {
        Some(render_cache(st, &table, &c.fields))
    } else {
        None
    };
    let templates = match &table.synthetic {
        Some(s) if fast => Some((s, templates(st, &table, &c.fields))),
        _ => None,
    };
    for (k, &ri) in c.rows[c.pos..end].iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        if let Some((s, t)) = &templates {
            render_synthetic(&mut out, &table.def, s, t, ri as u64, &c.fields);
            continue;
        }
        match &cache {
            Some(cache) => {
                let r = cache[ri as usize].get_or_init(|| {
                    let mut one = Vec::with_capacity(1024);
                    render_record(
                        &mut one,
                        &table.def,
                        &table.rows[ri as usize],
                        &c.fields,
                        version,
                        None,
                        None,
                        None,
                    );
                    one.into_boxed_slice()
                });
                out.extend_from_slice(r);
            }
            None => render_record(
                &mut out,
                &table.def,
                &table.row(ri as usize),
                &c.fields,
                version,
                bad,
                None,
                parents.as_ref(),
            ),
        }
    }
    out.extend_from_slice(b"]}");
    c.pos = end;
    c.last_used = Instant::now();
    if !done {
        let mut cs = st.cursors.lock().expect("cursor map");
        cs.insert(locator, c);
        // At most 10 open cursors per user: the oldest is released.
        while cs.len() > 10 {
            if let Some(oldest) = cs.iter().min_by_key(|(_, v)| v.seq).map(|(k, _)| k.clone()) {
                cs.remove(&oldest);
            }
        }
    }
    let page_no = st.query_pages.fetch_add(1, Ordering::Relaxed) + 1;
    if let Some(k) = st.cfg.faults.truncate_every {
        if k > 0 && page_no % k == 0 {
            out.truncate(out.len() / 2);
        }
    }
    if let Some(k) = st.cfg.faults.drop_body_every {
        if k > 0 && page_no % k == 0 {
            // Send half the body, then fail the stream: the connection drops mid-body.
            let half = bytes::Bytes::from(out[..out.len() / 2].to_vec());
            let stream = futures::stream::iter(vec![
                Ok::<_, std::io::Error>(half),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "emulated connection drop",
                )),
            ]);
            return with_limit(
                st,
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
                    Body::from_stream(stream),
                )
                    .into_response(),
            );
        }
    }
    json_ok(st, out)
}
