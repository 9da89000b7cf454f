//! getDeleted: `GET /services/data/vXX.X/sobjects/{Object}/deleted/?start=…&end=…`, the records
//! deleted in a time range (REST API 29.0+). Salesforce ignores the seconds of `start` and
//! `end`, answers at most 15 days back (`earliestDateAvailable`), covers at most up to
//! `latestDateCovered` (the next call's start), and refuses more than 600,000 ids
//! (`EXCEEDED_ID_LIMIT`: the caller narrows the range).

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{Client, SfError};

/// One call's answer.
#[derive(Debug, Clone)]
pub struct DeletedRecords {
    /// `(Id, deletedDate)`, as listed.
    pub records: Vec<(String, DateTime<Utc>)>,
    pub earliest_available: Option<DateTime<Utc>>,
    /// Deletions up to here are listed; those after it must be asked for again from here.
    pub latest_covered: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDeleted {
    #[serde(default)]
    deleted_records: Vec<RawRecord>,
    #[serde(default)]
    earliest_date_available: Option<String>,
    #[serde(default)]
    latest_date_covered: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRecord {
    id: String,
    deleted_date: String,
}

/// A Salesforce dateTime (`2026-12-01T10:00:00.000+0000`, or RFC 3339): the decoder's parser.
pub fn parse_sf_datetime(s: &str) -> Option<DateTime<Utc>> {
    crate::decode::parse_datetime_ms(s).and_then(DateTime::from_timestamp_millis)
}

/// getDeleted's dateTime parameter: whole minutes (the seconds are ignored anyway), UTC.
fn param(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:00Z").to_string()
}

impl Client {
    /// One getDeleted call for `object` over `[start, end)` (whole minutes).
    pub async fn get_deleted(
        &self,
        object: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<DeletedRecords, SfError> {
        let what = format!("getDeleted of {object} {}..{}", param(start), param(end));
        let path = self.data_path(&format!(
            "sobjects/{object}/deleted/?start={}&end={}",
            param(start),
            param(end)
        ));
        let body = self.get(&path, &what, None).await?;
        let raw: RawDeleted = serde_json::from_slice(&body).map_err(|e| SfError::Protocol {
            what: what.clone(),
            message: e.to_string(),
        })?;
        let mut records = Vec::with_capacity(raw.deleted_records.len());
        for r in raw.deleted_records {
            let t = parse_sf_datetime(&r.deleted_date).ok_or_else(|| SfError::Protocol {
                what: what.clone(),
                message: format!(
                    "record {}: deletedDate {:?} is not a dateTime",
                    r.id, r.deleted_date
                ),
            })?;
            records.push((r.id, t));
        }
        Ok(DeletedRecords {
            records,
            earliest_available: raw
                .earliest_date_available
                .as_deref()
                .and_then(parse_sf_datetime),
            latest_covered: raw
                .latest_date_covered
                .as_deref()
                .and_then(parse_sf_datetime),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salesforce_datetimes_parse_in_both_forms() {
        let a = parse_sf_datetime("2026-12-01T10:00:05.123+0000").unwrap();
        let b = parse_sf_datetime("2026-12-01T10:00:05.123Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.timestamp_millis() % 1000, 123);
        assert!(parse_sf_datetime("yesterday").is_none());
    }

    #[test]
    fn parameters_are_whole_utc_minutes() {
        let t = parse_sf_datetime("2026-12-01T10:07:59.999+0000").unwrap();
        assert_eq!(param(t), "2026-12-01T10:07:00Z");
    }
}
