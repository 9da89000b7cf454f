use super::*;

#[test]
fn locators_are_base64_of_the_offset() {
    assert_eq!(encode_locator(10000), "MTAwMDA");
    assert_eq!(decode_locator("MTAwMDA"), Some(10000));
    for n in [0usize, 1, 12, 123, 50_000, 999_999] {
        assert_eq!(decode_locator(&encode_locator(n)), Some(n));
    }
}

#[test]
fn cells_are_quoted_with_inner_quotes_doubled() {
    let f = FieldDef::new_for_tests("Name", "string");
    let mut out = Vec::new();
    push_cell(&mut out, &f, &Cell::Str("a \"b\", c\nd".into()));
    assert_eq!(out, b"\"a \"\"b\"\", c\nd\"");
    out.clear();
    push_cell(&mut out, &f, &Cell::Null);
    assert_eq!(out, b"\"\"");
    out.clear();
    push_cell(&mut out, &f, &Cell::DateTime(0));
    assert_eq!(out, b"\"1970-01-01T00:00:00.000Z\"");
    out.clear();
    push_cell(&mut out, &f, &Cell::Num(99213206.0));
    assert_eq!(out, b"\"9.9213206E7\"");
}
