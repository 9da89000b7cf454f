//! Pure SOQL text for what forcelake asks Salesforce.

use chrono::{DateTime, Utc};

use crate::timefmt::soql_datetime;

/// `SELECT <fields> FROM <object> WHERE <cursor> >= start AND <cursor> < end ORDER BY <cursor>, Id`.
///
/// Names must already be validated identifiers (see [`super::ident`]).
pub fn chunk_query(
    object: &str,
    fields: &[String],
    cursor: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> String {
    // Id breaks ties between equal cursor values, so paging never reorders them.
    let order = format!("{cursor}, Id");
    format!(
        "SELECT {} FROM {} WHERE {} >= {} AND {} < {} ORDER BY {}",
        fields.join(", "),
        object,
        cursor,
        soql_datetime(start),
        cursor,
        soql_datetime(end),
        order
    )
}

/// The earliest cursor value of an object (one small query).
pub fn earliest_query(object: &str, cursor: &str) -> String {
    format!("SELECT {cursor} FROM {object} WHERE {cursor} != null ORDER BY {cursor} ASC LIMIT 1")
}

/// `SELECT COUNT() FROM <object>` with an optional window.
pub fn count_query(
    object: &str,
    cursor: &str,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> String {
    match window {
        None => format!("SELECT COUNT() FROM {object}"),
        Some((a, b)) => format!(
            "SELECT COUNT() FROM {object} WHERE {cursor} >= {} AND {cursor} < {}",
            soql_datetime(a),
            soql_datetime(b)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::DateOrTime;

    #[test]
    fn chunk_query_orders_by_cursor_then_id() {
        let a = DateOrTime::parse("2024-01-01").unwrap().as_start();
        let b = DateOrTime::parse("2024-01-01").unwrap().as_end();
        let q = chunk_query(
            "Account",
            &["Id".into(), "Name".into()],
            "LastModifiedDate",
            a,
            b,
        );
        assert_eq!(
            q,
            "SELECT Id, Name FROM Account WHERE LastModifiedDate >= 2024-01-01T00:00:00Z AND LastModifiedDate < 2024-01-02T00:00:00Z ORDER BY LastModifiedDate, Id"
        );
    }
}
