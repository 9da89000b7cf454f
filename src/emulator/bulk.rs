//! Bulk API 2.0 query jobs, as Salesforce serves them (`salesforce-api.md` §4): create (with
//! Salesforce's create-time refusals), the state machine `UploadComplete → InProgress →
//! JobComplete | Failed | Aborted` over a configurable processing delay, job info, list, abort,
//! delete, and CSV results paged by `Sforce-Locator` with `maxRecords` and
//! `Sforce-NumberOfRecords`, every field quoted and a header row on every page. Results must be
//! read with the job's API version (409 otherwise). `/limits` reports `DailyBulkV2QueryJobs`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::Query;
use axum::http::{header, HeaderMap, StatusCode};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::data::{java_double, Cell, FieldDef, Table};
use super::{admit, json_ok, rest_error, select, Inner};

/// Objects Salesforce's Bulk API refuses (the list Airbyte keeps, `salesforce-api.md` §4.7).
pub const REFUSED_OBJECTS: [&str; 18] = [
    "AcceptedEventRelation",
    "Attachment",
    "CaseStatus",
    "ContractStatus",
    "DeclinedEventRelation",
    "EventWhoRelation",
    "FieldSecurityClassification",
    "OrderStatus",
    "PartnerRole",
    "RecentlyViewed",
    "ServiceAppointmentStatus",
    "SolutionStatus",
    "TaskPriority",
    "TaskStatus",
    "TaskWhoRelation",
    "UndecidedEventRelation",
    "QuoteTemplateRichTextData",
    "AssetTokenEvent",
];

/// Rows per results page when the request names no `maxRecords`.
pub const DEFAULT_MAX_RECORDS: usize = 50_000;

/// Bulk settings of an emulator.
#[derive(Debug, Clone)]
pub struct BulkConfig {
    /// From create to `JobComplete` (the first third `UploadComplete`, then `InProgress`).
    pub processing: Duration,
    /// The first N jobs end `Failed`.
    pub fail_jobs: u64,
    /// The Nth results page (counting every results request) is cut short, once.
    pub cut_page: Option<u64>,
    /// `DailyBulkV2QueryJobs.Max`; jobs past it are refused with `LIMIT_EXCEEDED`.
    pub daily_jobs: u64,
    /// Objects answered `INVALIDENTITY` besides [`REFUSED_OBJECTS`].
    pub refuse: Vec<String>,
}

impl Default for BulkConfig {
    fn default() -> Self {
        Self {
            processing: Duration::from_millis(1000),
            fail_jobs: 0,
            cut_page: None,
            daily_jobs: 10_000,
            refuse: Vec::new(),
        }
    }
}

/// One query job. Its rows are selected when it is created (a consistent snapshot).
pub(super) struct Job {
    id: String,
    operation: &'static str,
    object: String,
    api_version: String,
    created: Instant,
    created_at: String,
    table: Arc<Table>,
    rows: Vec<u32>,
    fields: Vec<usize>,
    /// Relationship paths selected (`Owner.Name`): columns after `fields`.
    rels: Vec<(usize, super::soql::RelSelect)>,
    fail: bool,
    aborted: bool,
    delimiter: u8,
    crlf: bool,
    delimiter_name: String,
    line_ending: String,
}

impl Job {
    pub fn state_name(&self, processing: Duration) -> &'static str {
        self.state(processing)
    }

    fn state(&self, processing: Duration) -> &'static str {
        let t = self.created.elapsed();
        if self.aborted {
            "Aborted"
        } else if t < processing / 3 {
            "UploadComplete"
        } else if t < processing {
            "InProgress"
        } else if self.fail {
            "Failed"
        } else {
            "JobComplete"
        }
    }

    fn info(&self, processing: Duration) -> serde_json::Value {
        let state = self.state(processing);
        let mut v = serde_json::json!({
            "id": self.id, "operation": self.operation, "object": self.object,
            "createdById": "005R0000000GiwjIAC", "createdDate": self.created_at,
            "systemModstamp": self.created_at, "state": state,
            "concurrencyMode": "Parallel", "contentType": "CSV",
            "apiVersion": self.api_version.parse::<f64>().unwrap_or(62.0),
            "jobType": "V2Query", "lineEnding": self.line_ending,
            "columnDelimiter": self.delimiter_name,
            "numberRecordsProcessed": if state == "JobComplete" { self.rows.len() } else { 0 },
            "retries": 0,
            "totalProcessingTime": if state == "JobComplete" { processing.as_millis() as u64 } else { 0 },
            "isPkChunkingSupported": true,
        });
        if state == "Failed" {
            v["errorMessage"] = "InternalServerError : Retried more than 15 times".into();
        }
        v
    }
}

/// Routes `/services/data/vXX.X/jobs/query[/{id}[/results]]` by method.
pub(super) async fn dispatch(
    st: &Arc<Inner>,
    method: Method,
    headers: &HeaderMap,
    uri: &Uri,
    parts: Vec<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = admit(st, headers).await {
        return r;
    }
    let ver = parts[0].as_str();
    match (
        &method,
        parts.get(3),
        parts.get(4).map(String::as_str),
        parts.len(),
    ) {
        (&Method::POST, None, None, 3) => create(st, ver, &body),
        (&Method::GET, None, None, 3) => list(st),
        (&Method::GET, Some(id), None, 4) => info(st, id),
        (&Method::PATCH, Some(id), None, 4) => abort(st, id, &body),
        (&Method::DELETE, Some(id), None, 4) => delete(st, id),
        (&Method::GET, Some(id), Some("results"), 5) => {
            let params = Query::<ResultsParams>::try_from_uri(uri)
                .map(|q| q.0)
                .unwrap_or(ResultsParams {
                    locator: None,
                    max_records: None,
                });
            results(st, ver, id, params).await
        }
        _ => super::not_found().await,
    }
}

fn version_of(v: &str) -> Option<&str> {
    v.strip_prefix('v')
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    #[serde(default)]
    operation: String,
    #[serde(default)]
    query: String,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    column_delimiter: Option<String>,
    #[serde(default)]
    line_ending: Option<String>,
}

fn bad_request(st: &Inner, code: &str, message: &str) -> Response {
    rest_error(st, StatusCode::BAD_REQUEST, code, message)
}

/// `POST /services/data/vXX.X/jobs/query`.
fn create(st: &Inner, ver: &str, body: &[u8]) -> Response {
    let Some(version) = version_of(&ver) else {
        return rest_error(
            &st,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        );
    };
    let b: CreateBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return bad_request(
                &st,
                "INVALIDJOB",
                &format!("Unable to parse the job request: {e}"),
            )
        }
    };
    let (operation, delimiter, delimiter_name, line_ending) = match job_format(st, &b) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(r) = refuse_object(st, &b.query) {
        return r;
    }
    let (query, table, rows) = match select(&st, &b.query, operation == "queryAll", false) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if query.count || query.group.is_some() {
        return bad_request(
            &st,
            "API_ERROR",
            "Implementation restriction: aggregate queries and GROUP BY are not supported in Bulk Query",
        );
    }
    if let Some(r) = refuse_selection(st, &query, &table) {
        return r;
    }
    if let Some(r) = take_daily_job(st) {
        return r;
    }
    let rows = super::order_and_limit(&query, &table, rows);
    let n = st.bulk_jobs_created.fetch_add(1, Ordering::SeqCst) + 1;
    let seq = st.seq.fetch_add(1, Ordering::Relaxed);
    let id = format!("750R{:014X}", seq);
    let job = Job {
        id: id.clone(),
        operation,
        object: table.def.name.clone(),
        api_version: version.to_string(),
        created: Instant::now(),
        created_at: chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
            .to_string(),
        table,
        rows,
        fields: query.fields,
        rels: query.rels,
        fail: n <= st.cfg.bulk.fail_jobs,
        aborted: false,
        delimiter,
        crlf: line_ending == "CRLF",
        delimiter_name,
        line_ending,
    };
    let mut info = job.info(st.processing());
    info["state"] = "UploadComplete".into();
    st.jobs.lock().expect("job map").insert(id, job);
    json_ok(&st, info.to_string())
}

/// The job's format fields, checked as Salesforce checks them: the operation, a query, CSV,
/// the column delimiter (its byte and name) and the line ending.
#[allow(clippy::type_complexity)]
fn job_format(st: &Inner, b: &CreateBody) -> Result<(&'static str, u8, String, String), Response> {
    let operation = match b.operation.as_str() {
        "query" => "query",
        "queryAll" => "queryAll",
        other => {
            return Err(bad_request(
                &st,
                "INVALIDJOB",
                &format!("Invalid value: '{other}' supplied for property: 'operation'"),
            ))
        }
    };
    if b.query.trim().is_empty() {
        return Err(bad_request(
            &st,
            "INVALIDJOB",
            "Invalid value: '' supplied for property: 'query'",
        ));
    }
    if b.content_type.as_deref().is_some_and(|c| c != "CSV") {
        return Err(bad_request(
            &st,
            "INVALIDJOB",
            "Invalid value supplied for property: 'contentType'",
        ));
    }
    let delimiter_name = b.column_delimiter.clone().unwrap_or_else(|| "COMMA".into());
    let delimiter = match delimiter_name.as_str() {
        "COMMA" => b',',
        "TAB" => b'\t',
        "PIPE" => b'|',
        "SEMICOLON" => b';',
        "CARET" => b'^',
        "BACKQUOTE" => b'`',
        _ => {
            return Err(bad_request(
                &st,
                "INVALIDJOB",
                &format!(
                    "Invalid value: '{delimiter_name}' supplied for property: 'columnDelimiter'"
                ),
            ))
        }
    };
    let line_ending = b.line_ending.clone().unwrap_or_else(|| "LF".into());
    if line_ending != "LF" && line_ending != "CRLF" {
        return Err(bad_request(
            &st,
            "INVALIDJOB",
            &format!("Invalid value: '{line_ending}' supplied for property: 'lineEnding'"),
        ));
    }
    Ok((operation, delimiter, delimiter_name, line_ending))
}

/// An object the Bulk API does not serve is refused before the query is looked at.
fn refuse_object(st: &Inner, query: &str) -> Option<Response> {
    let from = query
        .split_whitespace()
        .skip_while(|w| !w.eq_ignore_ascii_case("FROM"))
        .nth(1)
        .unwrap_or("")
        .to_string();
    if REFUSED_OBJECTS
        .iter()
        .any(|o| o.eq_ignore_ascii_case(&from))
        || st
            .cfg
            .bulk
            .refuse
            .iter()
            .any(|o| o.eq_ignore_ascii_case(&from))
    {
        return Some(bad_request(
            &st,
            "INVALIDENTITY",
            &format!("Entity '{from}' is not supported by the Bulk API."),
        ));
    }
    if query.contains("(SELECT") || query.contains("(select") {
        return Some(bad_request(
            &st,
            "API_ERROR",
            "Aggregate Relationships not supported in Bulk Query",
        ));
    }
    None
}

/// Selections the Bulk API refuses: compound fields (addresses, geolocations) and base64.
fn refuse_selection(st: &Inner, query: &super::soql::Query, table: &Table) -> Option<Response> {
    let mut selected: Vec<&FieldDef> = query.fields.iter().map(|&f| &table.def.fields[f]).collect();
    // The parent fields the relationship paths select (a polymorphic parent's are text).
    let data = st.data.read().expect("dataset lock").clone();
    for (_, r) in &query.rels {
        for (_, chain, leaf) in r.paths() {
            let last = chain.last().expect("a path has a step");
            if let [t] = last.targets.as_slice() {
                if let Some(f) = data
                    .table(t)
                    .and_then(|t| t.def.field_index(leaf).map(|i| &t.def.fields[i]))
                {
                    selected.push(f);
                }
            }
        }
    }
    if selected
        .iter()
        .any(|f| matches!(f.ftype, "address" | "location"))
    {
        return Some(bad_request(
            &st,
            "API_ERROR",
            "Selecting compound data not supported in Bulk Query",
        ));
    }
    if selected.iter().any(|f| f.ftype == "base64") {
        return Some(bad_request(
            &st,
            "API_ERROR",
            "Selecting base64 data not supported in Bulk Query",
        ));
    }
    None
}

/// Takes one of the day's Bulk query jobs, or the `LIMIT_EXCEEDED` refusal.
fn take_daily_job(st: &Inner) -> Option<Response> {
    let left = st.bulk_jobs_left.load(Ordering::SeqCst);
    if left == 0
        || st
            .bulk_jobs_left
            .compare_exchange(left, left - 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
    {
        return Some(bad_request(
            &st,
            "LIMIT_EXCEEDED",
            &format!(
                "Max bulk v2 query jobs ({}) per 24 hrs has been reached",
                st.cfg.bulk.daily_jobs
            ),
        ));
    }
    None
}

/// `GET /services/data/vXX.X/jobs/query`.
fn list(st: &Inner) -> Response {
    let jobs = st.jobs.lock().expect("job map");
    let mut records: Vec<(&String, serde_json::Value)> = jobs
        .iter()
        .map(|(id, j)| (id, j.info(st.processing())))
        .collect();
    records.sort_by(|a, b| a.0.cmp(b.0));
    let records: Vec<serde_json::Value> = records.into_iter().map(|(_, v)| v).collect();
    json_ok(
        &st,
        serde_json::json!({"done": true, "records": records, "nextRecordsUrl": null}).to_string(),
    )
}

fn no_job(st: &Inner) -> Response {
    rest_error(
        st,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The requested resource does not exist",
    )
}

/// `GET /services/data/vXX.X/jobs/query/{id}`.
fn info(st: &Inner, id: &str) -> Response {
    let jobs = st.jobs.lock().expect("job map");
    match jobs.get(id) {
        Some(j) => json_ok(&st, j.info(st.processing()).to_string()),
        None => no_job(&st),
    }
}

#[derive(Deserialize)]
struct StateBody {
    state: String,
}

/// `PATCH /services/data/vXX.X/jobs/query/{id}` with `{"state":"Aborted"}`.
fn abort(st: &Inner, id: &str, body: &[u8]) -> Response {
    let Ok(b) = serde_json::from_slice::<StateBody>(&body) else {
        return bad_request(&st, "INVALIDJOB", "Unable to parse the job state change");
    };
    if b.state != "Aborted" {
        return bad_request(
            &st,
            "INVALIDJOB",
            &format!(
                "Invalid value: '{}' supplied for property: 'state'",
                b.state
            ),
        );
    }
    let mut jobs = st.jobs.lock().expect("job map");
    let processing = st.processing();
    match jobs.get_mut(id) {
        Some(j) if matches!(j.state(processing), "JobComplete" | "Failed") => bad_request(
            &st,
            "INVALIDJOBSTATE",
            "Cannot abort a job that has already finished",
        ),
        Some(j) => {
            j.aborted = true;
            json_ok(&st, j.info(processing).to_string())
        }
        None => no_job(&st),
    }
}

/// `DELETE /services/data/vXX.X/jobs/query/{id}`: 204.
fn delete(st: &Inner, id: &str) -> Response {
    match st.jobs.lock().expect("job map").remove(id) {
        Some(_) => super::with_limit(&st, StatusCode::NO_CONTENT.into_response()),
        None => no_job(&st),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ResultsParams {
    locator: Option<String>,
    max_records: Option<usize>,
}

/// Locators are base64 of the next row's offset, like Salesforce's (`MTAwMDA` = "10000").
fn encode_locator(offset: usize) -> String {
    use base64_lite::encode;
    encode(offset.to_string().as_bytes())
}

fn decode_locator(l: &str) -> Option<usize> {
    super::base64_decode(l)?.parse().ok()
}

mod base64_lite {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    /// Unpadded base64 (Salesforce's locators carry no `=`).
    pub fn encode(b: &[u8]) -> String {
        let mut out = String::new();
        for c in b.chunks(3) {
            let n = (c[0] as u32) << 16
                | (*c.get(1).unwrap_or(&0) as u32) << 8
                | *c.get(2).unwrap_or(&0) as u32;
            for k in 0..=c.len() {
                out.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
            }
        }
        out
    }
}

/// `GET /services/data/vXX.X/jobs/query/{id}/results?locator=&maxRecords=`.
async fn results(st: &Arc<Inner>, ver: &str, id: &str, p: ResultsParams) -> Response {
    st.hold.point().await;
    let page_no = st.bulk_pages.fetch_add(1, Ordering::SeqCst) + 1;
    let processing = st.processing();
    // Rendering happens outside the job map's lock: take what the page needs.
    let (table, rows, fields, rels, delimiter, crlf, total) = {
        let jobs = st.jobs.lock().expect("job map");
        let Some(j) = jobs.get(id) else {
            return no_job(&st);
        };
        if version_of(&ver) != Some(j.api_version.as_str()) {
            return rest_error(
                &st,
                StatusCode::CONFLICT,
                "INVALIDJOBSTATE",
                &format!(
                    "The results of job {id} must be read with its API version v{} (this request used {ver})",
                    j.api_version
                ),
            );
        }
        if j.state(processing) != "JobComplete" {
            return bad_request(
                &st,
                "INVALIDJOBSTATE",
                &format!("Job {id} is not complete (state {})", j.state(processing)),
            );
        }
        let from = match p.locator.as_deref() {
            None | Some("") => 0,
            Some(l) => match decode_locator(l) {
                Some(o) if o <= j.rows.len() => o,
                _ => return bad_request(&st, "INVALID_LOCATOR", "Invalid locator"),
            },
        };
        let max = p.max_records.unwrap_or(DEFAULT_MAX_RECORDS).max(1);
        let to = (from + max).min(j.rows.len());
        (
            j.table.clone(),
            j.rows[from..to].to_vec(),
            j.fields.clone(),
            j.rels.clone(),
            j.delimiter,
            j.crlf,
            (to, j.rows.len()),
        )
    };
    let (to, len) = total;
    let st2 = st.clone();
    let n = rows.len();
    let rendered = tokio::task::spawn_blocking(move || {
        if rels.is_empty() {
            render_csv(&st2, &table, &rows, &fields, delimiter, crlf)
        } else {
            let data = st2.data.read().expect("dataset lock").clone();
            render_csv_with_parents(&data, &table, &rows, &fields, &rels, delimiter, crlf)
        }
    })
    .await;
    let Ok(mut out) = rendered else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if st.cfg.bulk.cut_page == Some(page_no) {
        out.truncate(out.len() / 2);
    }
    let locator = if to < len {
        encode_locator(to)
    } else {
        "null".to_string()
    };
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/csv")],
        axum::body::Body::from(out),
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(
        "Sforce-NumberOfRecords",
        n.to_string().parse().expect("a number is a header value"),
    );
    h.insert(
        "Sforce-Locator",
        locator.parse().expect("base64 is a header value"),
    );
    super::with_limit(&st, r)
}

/// A page of CSV: the header row, then one row per record, every field quoted.
fn render_csv(
    st: &Inner,
    table: &Table,
    rows: &[u32],
    fields: &[usize],
    delimiter: u8,
    crlf: bool,
) -> Vec<u8> {
    let def = &table.def;
    let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    let mut out = Vec::with_capacity(rows.len() * 64 * fields.len().max(1) / 4 + 256);
    for (k, &fi) in fields.iter().enumerate() {
        if k > 0 {
            out.push(delimiter);
        }
        push_quoted(&mut out, def.fields[fi].name.as_bytes());
    }
    out.extend_from_slice(eol);
    match &table.synthetic {
        Some(s) => {
            let t = super::csv_templates(st, table, fields);
            for &ri in rows {
                let p = s.pool_index(ri as u64);
                let tpl = t[p].get_or_init(|| {
                    let mut bytes = Vec::with_capacity(1024);
                    let mut slots = Vec::new();
                    let row = s.pool_row(p);
                    for (k, &fi) in fields.iter().enumerate() {
                        if k > 0 {
                            bytes.push(delimiter);
                        }
                        if s.is_dynamic(fi) {
                            slots.push((bytes.len(), fi));
                        } else {
                            push_cell(&mut bytes, &def.fields[fi], &row[fi]);
                        }
                    }
                    super::Template {
                        bytes: bytes.into_boxed_slice(),
                        slots: slots.into_boxed_slice(),
                    }
                });
                let mut at = 0;
                for &(off, fi) in tpl.slots.iter() {
                    out.extend_from_slice(&tpl.bytes[at..off]);
                    at = off;
                    out.push(b'"');
                    s.push_dynamic_bulk(&mut out, ri as u64, fi);
                    out.push(b'"');
                }
                out.extend_from_slice(&tpl.bytes[at..]);
                out.extend_from_slice(eol);
            }
        }
        None => push_rows(&mut out, table, rows, fields, delimiter, eol),
    }
    out
}

/// A page of CSV for a query with relationship paths: plain fields, then a column per path
/// (headed `Owner.Name`; empty when the lookup is empty), from the parents as they are now.
fn render_csv_with_parents(
    data: &super::data::Dataset,
    table: &Table,
    rows: &[u32],
    fields: &[usize],
    rels: &[(usize, super::soql::RelSelect)],
    delimiter: u8,
    crlf: bool,
) -> Vec<u8> {
    let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    let paths: Vec<_> = rels.iter().flat_map(|(_, r)| r.paths()).collect();
    let mut out = Vec::new();
    let headers = fields
        .iter()
        .map(|&fi| table.def.fields[fi].name.clone())
        .chain(paths.iter().map(|(name, ..)| name.clone()));
    for (k, h) in headers.enumerate() {
        if k > 0 {
            out.push(delimiter);
        }
        push_quoted(&mut out, h.as_bytes());
    }
    out.extend_from_slice(eol);
    for &ri in rows {
        let row = table.row(ri as usize);
        for (k, &fi) in fields.iter().enumerate() {
            if k > 0 {
                out.push(delimiter);
            }
            push_cell(&mut out, &table.def.fields[fi], &row[fi]);
        }
        for (k, (_, chain, leaf)) in paths.iter().enumerate() {
            if k > 0 || !fields.is_empty() {
                out.push(delimiter);
            }
            let mut at: Option<(Arc<Table>, super::data::Row)> = None;
            for r in chain {
                let from = match &at {
                    None => row.clone(),
                    Some((_, prow)) => prow.clone(),
                };
                at = super::parent_record(data, &from, r);
                if at.is_none() {
                    break;
                }
            }
            match at {
                Some((pt, prow)) => match pt.def.field_index(leaf) {
                    Some(fi) => push_cell(&mut out, &pt.def.fields[fi], &prow[fi]),
                    None if *leaf == "Type" => push_quoted(&mut out, pt.def.name.as_bytes()),
                    None => push_quoted(&mut out, b""),
                },
                None => push_quoted(&mut out, b""),
            }
        }
        out.extend_from_slice(eol);
    }
    out
}

fn push_rows(
    out: &mut Vec<u8>,
    table: &Table,
    rows: &[u32],
    fields: &[usize],
    delimiter: u8,
    eol: &[u8],
) {
    for &ri in rows {
        let row = table.row(ri as usize);
        for (k, &fi) in fields.iter().enumerate() {
            if k > 0 {
                out.push(delimiter);
            }
            push_cell(out, &table.def.fields[fi], &row[fi]);
        }
        out.extend_from_slice(eol);
    }
}

/// One Bulk results page of a stored table (comma, LF): the header of `fields`, then `rows`
/// (for the micro-benchmark and tests).
pub fn csv_page(table: &Table, rows: &[u32], fields: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, &fi) in fields.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        push_quoted(&mut out, table.def.fields[fi].name.as_bytes());
    }
    out.push(b'\n');
    push_rows(&mut out, table, rows, fields, b',', b"\n");
    out
}

fn push_quoted(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        if c == b'"' {
            out.push(b'"');
        }
        out.push(c);
    }
    out.push(b'"');
}

/// One value as Bulk API 2.0 CSV text: quoted; null is `""`; numbers in Java's double text;
/// datetimes `…000Z`.
pub fn push_cell(out: &mut Vec<u8>, f: &FieldDef, c: &Cell) {
    let text: String = match c {
        Cell::Null => String::new(),
        Cell::Str(s) => {
            push_quoted(out, s.as_bytes());
            return;
        }
        Cell::Num(v) => java_double(*v),
        Cell::Cents(units) => java_double(*units as f64 / 10f64.powi(f.scale)),
        Cell::Int(v) => v.to_string(),
        Cell::Bool(b) => b.to_string(),
        Cell::DateTime(ms) => {
            out.push(b'"');
            super::render::push_bulk_datetime(out, *ms);
            out.push(b'"');
            return;
        }
        Cell::Date(d) => chrono::DateTime::from_timestamp(*d as i64 * 86_400, 0)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        Cell::Time(ms) => {
            let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
            format!("{h:02}:{m:02}:{s:02}.{milli:03}Z")
        }
        // Refused at create time; never rendered.
        Cell::Address(_) | Cell::Location(..) => String::new(),
    };
    push_quoted(out, text.as_bytes());
}

#[cfg(test)]
mod tests;
