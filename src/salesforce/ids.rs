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
