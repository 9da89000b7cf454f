use super::*;
use crate::emulator::data::object_defs;

fn parse_q(q: &str) -> Result<Query, SoqlError> {
    let defs = object_defs();
    parse(q, |n| defs.iter().find(|d| d.name.eq_ignore_ascii_case(n))).map(|(q, _)| q)
}

#[test]
fn parses_forcelakes_chunk_query() {
    let q = parse_q("SELECT Id, Name FROM Account WHERE LastModifiedDate >= 2024-01-01T00:00:00Z AND LastModifiedDate < 2024-01-02T00:00:00Z ORDER BY LastModifiedDate, Id").unwrap();
    assert_eq!(q.fields.len(), 2);
    assert_eq!(q.order.len(), 2);
    assert_eq!(
        q.cond.as_ref().unwrap().datetime_span(),
        Some((1704067200000, 1704153600000))
    );
    let q =
        parse_q("select count() from account where (IsDeleted = false or Name != null) limit 5")
            .unwrap();
    assert!(q.count);
    assert_eq!(q.limit, Some(5));
}

#[test]
fn errors_are_salesforce_shaped() {
    let e = parse_q("SELECT Id, Foo__c FROM Account").unwrap_err();
    assert_eq!(e.code, "INVALID_FIELD");
    assert!(
        e.message
            .contains("No such column 'Foo__c' on entity 'Account'"),
        "{}",
        e.message
    );
    assert_eq!(
        parse_q("SELECT Id FROM Nope").unwrap_err().code,
        "INVALID_TYPE"
    );
    assert_eq!(
        parse_q("SELECT Id FROM Account WHERE").unwrap_err().code,
        "MALFORMED_QUERY"
    );
    assert_eq!(
        parse_q("SELECT Id FROM Account WHERE CreatedDate > 2024-01-01")
            .unwrap_err()
            .code,
        "INVALID_FIELD"
    );
    assert_eq!(
        parse_q("SELECT Id, Id FROM Account").unwrap_err().message,
        "duplicate field selected: Id"
    );
}
