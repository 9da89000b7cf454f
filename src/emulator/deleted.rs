//! getDeleted: `GET /services/data/vXX.X/sobjects/{Object}/deleted/?start=…&end=…`, as the REST
//! guide documents it: the records deleted in `[start, end)` from the object's delete log,
//! `earliestDateAvailable` (15 days before the day of the call, or later after a purge of the
//! log), `latestDateCovered` (≤ `end`, never after now); the seconds of `start` and `end` are
//! ignored; a `start` before `earliestDateAvailable` is `INVALID_REPLICATION_DATE`; more ids
//! than the limit (600,000) is `EXCEEDED_ID_LIMIT`; only `replicateable` objects answer.

use super::*;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
/// How far back the delete log answers: 15 days before the day of the call.
const WINDOW_DAYS: i64 = 15;

fn parse_instant(s: &str) -> Option<i64> {
    // `2026-12-01T10:00:00Z`, `…+00:00` and Salesforce's own `…+0000`
    chrono::DateTime::parse_from_rfc3339(s)
        .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.timestamp_millis())
}

fn bad(st: &Inner, code: &str, message: &str) -> Response {
    rest_error(st, StatusCode::BAD_REQUEST, code, message)
}

pub(super) fn get_deleted(st: &Inner, object: &str, query: Option<&str>) -> Response {
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let data = st.data.read().expect("dataset lock");
    let Some(table) = data.table(object) else {
        return rest_error(
            st,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        );
    };
    if !table.def.replicateable {
        return bad(
            st,
            "INVALID_TYPE",
            &format!(
                "sObject type '{}' is not supported for replication (describe: replicateable = false)",
                table.def.name
            ),
        );
    }
    let mut bounds = [0i64; 2];
    for (k, name) in ["start", "end"].iter().enumerate() {
        let Some(v) = params.get(*name) else {
            return bad(st, "MISSING_ARGUMENT", &format!("{name} was not specified"));
        };
        let Some(ms) = parse_instant(v) else {
            return bad(
                st,
                "INVALID_DATE_FORMAT",
                &format!("{name}: {v} is not a valid dateTime (e.g. 2026-12-01T10:00:00+00:00)"),
            );
        };
        bounds[k] = ms - ms.rem_euclid(MINUTE_MS); // the seconds are ignored
    }
    let [start, end] = bounds;
    let now = chrono::Utc::now().timestamp_millis();
    let today = now - now.rem_euclid(DAY_MS);
    let earliest = (today - WINDOW_DAYS * DAY_MS).max(table.delete_log_from);
    let earliest = earliest - earliest.rem_euclid(MINUTE_MS);
    if end <= start {
        return bad(
            st,
            "INVALID_REPLICATION_DATE",
            "start date must chronologically precede end date by at least one minute",
        );
    }
    if start < earliest {
        return bad(
            st,
            "INVALID_REPLICATION_DATE",
            &format!(
                "start date cannot be before the earliest date available, {}",
                render::sf_datetime(earliest)
            ),
        );
    }
    let covered = end.min(now - now.rem_euclid(MINUTE_MS));
    let found: Vec<&(String, i64)> = table
        .deleted
        .iter()
        .filter(|(_, t)| *t >= start && *t < covered)
        .collect();
    if found.len() > st.cfg.deleted_id_limit {
        return bad(
            st,
            "EXCEEDED_ID_LIMIT",
            &format!(
                "The number of IDs returned exceeds the limit of {}: choose start and end dates that are closer together",
                st.cfg.deleted_id_limit
            ),
        );
    }
    let records: Vec<serde_json::Value> = found
        .iter()
        .map(|(id, t)| serde_json::json!({"id": id, "deletedDate": render::sf_datetime(*t)}))
        .collect();
    json_ok(
        st,
        serde_json::json!({
            "deletedRecords": records,
            "earliestDateAvailable": render::sf_datetime(earliest),
            "latestDateCovered": render::sf_datetime(covered),
        })
        .to_string(),
    )
}
