//! The live Ids of an object: `SELECT Id FROM <Object>` through `query` (not `queryAll`, so
//! deleted records are not listed), page by page — what a reconciliation compares the lake with.

use serde::Deserialize;

use super::{Client, SfError};

#[derive(Deserialize)]
struct Page {
    #[serde(rename = "nextRecordsUrl")]
    next: Option<String>,
    #[serde(default)]
    done: bool,
    records: Vec<IdRow>,
}

#[derive(Deserialize)]
struct IdRow {
    #[serde(rename = "Id")]
    id: String,
}

impl Client {
    /// Calls `on` with every live record's Id; returns the requests made.
    pub async fn live_ids(
        &self,
        object: &str,
        mut on: impl FnMut(&str) -> Result<(), SfError>,
    ) -> Result<u64, SfError> {
        let what = format!("{object} live Ids");
        let soql = format!("SELECT Id FROM {object}");
        let mut body = self.query_first(&soql, false, &what).await?;
        let mut requests = 1;
        loop {
            let page: Page = serde_json::from_slice(&body).map_err(|e| SfError::Protocol {
                what: what.clone(),
                message: format!("a query page: {e}"),
            })?;
            for r in &page.records {
                on(&r.id)?;
            }
            match page.next {
                Some(next) if !page.done => {
                    body = self.query_next(&next, &what).await?;
                    requests += 1;
                }
                _ => return Ok(requests),
            }
        }
    }
}

impl Client {
    /// As [`Client::live_ids`], through one Bulk API 2.0 `query` job (`SELECT Id`, CSV): a
    /// request per 200,000 Ids rather than per 2,000, for large objects. Returns the requests
    /// made (create, polls, result pages).
    pub async fn live_ids_bulk(
        &self,
        object: &str,
        mut on: impl FnMut(&str) -> Result<(), SfError>,
    ) -> Result<u64, SfError> {
        use backon::BackoffBuilder;
        let what = format!("{object} live Ids (Bulk API 2.0)");
        let job = self
            .create_query_job(&format!("SELECT Id FROM {object}"), false, &what)
            .await?;
        let mut requests = 1;
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(std::time::Duration::from_millis(500))
            .with_factor(1.5)
            .with_max_delay(std::time::Duration::from_secs(15))
            .without_max_times()
            .build();
        let info = loop {
            let d = delays.next().unwrap_or(std::time::Duration::from_secs(15));
            tokio::time::sleep(d).await;
            let info = self.job_info(&job.id, &what).await?;
            requests += 1;
            if info.is_terminal() {
                break info;
            }
        };
        if info.state != "JobComplete" {
            return Err(SfError::Protocol {
                what,
                message: format!(
                    "Bulk job {} ended {}{}",
                    job.id,
                    info.state,
                    info.error_message
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
            });
        }
        let mut locator: Option<String> = None;
        loop {
            let page = self
                .job_results(&job.id, locator.as_deref(), 200_000, &what)
                .await?;
            requests += 1;
            let next = page.next.clone();
            let body = page
                .body
                .bytes()
                .await
                .map_err(|e| super::transport(&what, &e))?;
            for line in body.split(|b| *b == b'\n') {
                let id = std::str::from_utf8(line)
                    .map_err(|e| SfError::Protocol {
                        what: what.clone(),
                        message: format!("a results line is not UTF-8: {e}"),
                    })?
                    .trim_end_matches('\r')
                    .trim_matches('"');
                // every page starts with the CSV header
                if !id.is_empty() && id != "Id" {
                    on(id)?;
                }
            }
            match next {
                Some(l) => locator = Some(l),
                None => return Ok(requests),
            }
        }
    }
}
