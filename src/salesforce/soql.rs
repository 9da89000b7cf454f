//! Pure SOQL text for what forcelake asks Salesforce.

use chrono::{DateTime, Utc};

use crate::timefmt::soql_datetime;

/// A cursor bound as SOQL wants it for the field's type: a datetime literal
/// (`2026-07-01T00:00:00Z`) for a datetime cursor, a date literal (`2026-07-01`) for a date one
/// (date-cursor windows are whole UTC days, so the bound is a midnight).
pub fn bound(t: DateTime<Utc>, date: bool) -> String {
    if date {
        t.format("%Y-%m-%d").to_string()
    } else {
        soql_datetime(t)
    }
}

/// `SELECT <fields> FROM <object> WHERE <cursor> >= start AND <cursor> < end ORDER BY <cursor>, Id`.
///
/// Names must already be validated identifiers (see [`super::ident`]).
pub fn chunk_query(
    object: &str,
    fields: &[String],
    cursor: &str,
    date: bool,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> String {
    // Id breaks ties between equal cursor values, so paging never reorders them.
    format!(
        "{} ORDER BY {cursor}, Id",
        bulk_query(object, fields, cursor, date, start, end)
    )
}

/// A Bulk API 2.0 window's query: the range without ORDER BY (Bulk jobs are not ordered, and
/// an ORDER BY disables PK chunking).
pub fn bulk_query(
    object: &str,
    fields: &[String],
    cursor: &str,
    date: bool,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> String {
    format!(
        "SELECT {} FROM {} WHERE {} >= {} AND {} < {}",
        fields.join(", "),
        object,
        cursor,
        bound(start, date),
        cursor,
        bound(end, date),
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
    date: bool,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> String {
    match window {
        None => format!("SELECT COUNT() FROM {object}"),
        Some((a, b)) => format!(
            "SELECT COUNT() FROM {object} WHERE {cursor} >= {} AND {cursor} < {}",
            bound(a, date),
            bound(b, date)
        ),
    }
}

/// Records per UTC day of the cursor in `[a, b)`, one aggregate query: `DAY_ONLY()` of a
/// datetime cursor (date functions work in UTC unless `convertTimezone()` is asked for), or
/// the date cursor itself. Results come back as `AggregateResult` records in one batch, so a
/// query must not span more than 2,000 days.
pub fn day_counts_query(
    object: &str,
    cursor: &str,
    date: bool,
    a: DateTime<Utc>,
    b: DateTime<Utc>,
) -> String {
    let day = if date {
        cursor.to_string()
    } else {
        format!("DAY_ONLY({cursor})")
    };
    format!(
        "SELECT {day}, COUNT(Id) FROM {object} WHERE {cursor} >= {} AND {cursor} < {} GROUP BY {day}",
        bound(a, date),
        bound(b, date)
    )
}

/// Records whose cursor is null: they belong to no day, so no window ever fetches them.
pub fn null_cursor_count_query(object: &str, cursor: &str) -> String {
    format!("SELECT COUNT() FROM {object} WHERE {cursor} = null")
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
            false,
            a,
            b,
        );
        assert_eq!(
            q,
            "SELECT Id, Name FROM Account WHERE LastModifiedDate >= 2024-01-01T00:00:00Z AND LastModifiedDate < 2024-01-02T00:00:00Z ORDER BY LastModifiedDate, Id"
        );
    }

    #[test]
    fn a_date_cursor_is_bounded_with_date_literals() {
        let a = DateOrTime::parse("2026-07-01").unwrap().as_start();
        let b = DateOrTime::parse("2026-07-31").unwrap().as_end();
        let q = chunk_query("Opportunity", &["Id".into()], "CloseDate", true, a, b);
        assert_eq!(
            q,
            "SELECT Id FROM Opportunity WHERE CloseDate >= 2026-07-01 AND CloseDate < 2026-08-01 ORDER BY CloseDate, Id"
        );
        assert_eq!(
            count_query("Opportunity", "CloseDate", true, Some((a, b))),
            "SELECT COUNT() FROM Opportunity WHERE CloseDate >= 2026-07-01 AND CloseDate < 2026-08-01"
        );
    }
}
