//! Bulk API 2.0 query jobs (`salesforce-api.md` §4): create, poll, abort, and results pages
//! read by `Sforce-Locator` as byte streams (a page is never held whole in memory).

use bytes::Bytes;
use futures::Stream;
use serde::Deserialize;

use super::{transport, Client, SfError};

/// A job's state as `GET /jobs/query/{id}` reports it (only the keys forcelake reads).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobInfo {
    pub id: String,
    pub state: String,
    #[serde(default)]
    pub number_records_processed: u64,
    #[serde(default)]
    pub error_message: Option<String>,
    /// A JSON number (`62.0`).
    #[serde(default)]
    pub api_version: Option<f64>,
}

impl JobInfo {
    /// `JobComplete`, `Failed` or `Aborted`.
    pub fn is_terminal(&self) -> bool {
        matches!(self.state.as_str(), "JobComplete" | "Failed" | "Aborted")
    }
}

/// One results page: its row count and the locator of the next page, and the CSV body.
pub struct ResultsPage {
    /// `Sforce-NumberOfRecords`.
    pub records: u64,
    /// `Sforce-Locator`; `None` when it is the literal `null` (the last page).
    pub next: Option<String>,
    pub body: reqwest::Response,
}

impl ResultsPage {
    /// The body as a stream of byte chunks (decompressed when gzip was negotiated).
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, reqwest::Error>> {
        self.body.bytes_stream()
    }
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

impl Client {
    fn jobs_path(&self, rest: &str) -> String {
        self.data_path(&format!("jobs/query{rest}"))
    }

    /// A JSON request (retried), its body read.
    async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        what: &str,
        body: &serde_json::Value,
    ) -> Result<Bytes, SfError> {
        self.retried(|| async {
            let resp = self
                .send_once(method.clone(), path, what, Some(body), None)
                .await?;
            resp.bytes().await.map_err(|e| transport(what, &e))
        })
        .await
    }

    fn job_info_from(&self, body: &[u8], what: &str) -> Result<JobInfo, SfError> {
        serde_json::from_slice(body).map_err(|e| SfError::Protocol {
            what: what.into(),
            message: e.to_string(),
        })
    }

    /// Creates a `query` (or `queryAll`) job for `soql`, CSV with commas and LF.
    pub async fn create_query_job(
        &self,
        soql: &str,
        all: bool,
        what: &str,
    ) -> Result<JobInfo, SfError> {
        let body = serde_json::json!({
            "operation": if all { "queryAll" } else { "query" },
            "query": soql,
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
        });
        let b = self
            .send_json(reqwest::Method::POST, &self.jobs_path(""), what, &body)
            .await?;
        self.job_info_from(&b, what)
    }

    pub async fn job_info(&self, id: &str, what: &str) -> Result<JobInfo, SfError> {
        let b = self
            .get(&self.jobs_path(&format!("/{id}")), what, None)
            .await?;
        self.job_info_from(&b, what)
    }

    /// Aborts a job that is still queued or running.
    pub async fn abort_job(&self, id: &str, what: &str) -> Result<(), SfError> {
        let body = serde_json::json!({"state": "Aborted"});
        self.send_json(
            reqwest::Method::PATCH,
            &self.jobs_path(&format!("/{id}")),
            what,
            &body,
        )
        .await
        .map(|_| ())
    }

    /// Requests one results page (retried until its headers arrive; the body is streamed by
    /// the caller).
    pub async fn job_results(
        &self,
        id: &str,
        locator: Option<&str>,
        max_records: u64,
        what: &str,
    ) -> Result<ResultsPage, SfError> {
        let mut q = format!("/{id}/results?maxRecords={max_records}");
        if let Some(l) = locator {
            q.push_str("&locator=");
            q.extend(url::form_urlencoded::byte_serialize(l.as_bytes()));
        }
        let path = self.jobs_path(&q);
        let resp = self
            .retried(|| self.send_once(reqwest::Method::GET, &path, what, None, None))
            .await?;
        let records = header(&resp, "sforce-numberofrecords")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| SfError::Protocol {
                what: what.into(),
                message: "the results page has no Sforce-NumberOfRecords header".into(),
            })?;
        let next = match header(&resp, "sforce-locator").map(str::trim) {
            None | Some("") | Some("null") => None,
            Some(l) => Some(l.to_string()),
        };
        Ok(ResultsPage {
            records,
            next,
            body: resp,
        })
    }
}
