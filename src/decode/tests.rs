use super::*;
use crate::salesforce::describe::ObjectDescribe;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{Decimal128Type, Float64Type, Int32Type, TimestampMillisecondType};
use proptest::prelude::*;

fn schema(fields: &[(&str, &str)]) -> ObjectSchema {
    let d: ObjectDescribe = serde_json::from_value(serde_json::json!({
        "name": "Account",
        "fields": fields.iter().map(|(n, t)| serde_json::json!({"name": n, "type": t, "label": n, "precision": 18, "scale": 2})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let list: Vec<String> = fields.iter().map(|(n, _)| n.to_string()).collect();
    ObjectSchema::resolve(&d, Some(&list), "LastModifiedDate", &Default::default()).unwrap()
}

#[test]
fn decodes_every_type_exactly() {
    let s = schema(&[
        ("Id", "id"),
        ("AnnualRevenue", "currency"),
        ("N", "int"),
        ("P", "percent"),
        ("LastModifiedDate", "datetime"),
        ("D", "date"),
        ("T", "time"),
        ("M", "multipicklist"),
        ("B", "boolean"),
        ("A", "address"),
        ("L", "location"),
        ("J", "anyType"),
    ]);
    let mut d = PageDecoder::new(&s);
    let page = br#"{"totalSize":2,"done":true,"records":[
        {"attributes":{"type":"Account","url":"/x"},"Id":"001000000000001AAA","AnnualRevenue":1.2345678E7,"N":42,"P":12.5,
         "LastModifiedDate":"2024-03-01T12:34:56.789+0000","D":"2024-02-29","T":"10:30:00.000Z","M":"A;B;C","B":true,
         "A":{"street":"1 Main\nSt","city":"M\u00fcnchen","latitude":48.1,"longitude":11.5,"geocodeAccuracy":null},
         "L":{"latitude":37.79,"longitude":-122.39},"J":"x\"y","Owner":{"attributes":{},"Name":"n"}},
        {"Id":"001000000000002AAA","AnnualRevenue":null,"N":null,"P":null,"LastModifiedDate":null,"D":null,"T":null,"M":null,"B":false,"A":null,"L":null,"J":5}
    ]}"#;
    let info = d.decode_page(page).unwrap();
    assert_eq!(
        info,
        PageInfo {
            total_size: 2,
            done: true,
            next_records_url: None,
            records: 2
        }
    );
    let b = d.finish_batch().unwrap();
    assert_eq!(b.num_rows(), 2);
    let rev = b.column(1).as_primitive::<Decimal128Type>();
    assert_eq!(rev.value(0), 1_234_567_800);
    assert!(rev.is_null(1));
    assert_eq!(b.column(2).as_primitive::<Int32Type>().value(0), 42);
    assert_eq!(b.column(3).as_primitive::<Float64Type>().value(0), 12.5);
    assert_eq!(
        b.column(4)
            .as_primitive::<TimestampMillisecondType>()
            .value(0),
        1709296496789
    );
    assert_eq!(
        b.column(5)
            .as_primitive::<arrow::datatypes::Date32Type>()
            .value(0),
        19782
    );
    assert_eq!(b.column(6).as_string::<i32>().value(0), "10:30:00.000");
    let m = b.column(7).as_list::<i32>();
    assert_eq!(
        m.value(0)
            .as_string::<i32>()
            .iter()
            .flatten()
            .collect::<Vec<_>>(),
        ["A", "B", "C"]
    );
    assert!(m.is_null(1));
    assert!(b.column(8).as_boolean().value(0));
    let a = b.column(9).as_struct();
    assert_eq!(
        a.column_by_name("city")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "München"
    );
    assert_eq!(
        a.column_by_name("street")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "1 Main\nSt"
    );
    assert!(a.column_by_name("state").unwrap().is_null(0));
    assert!(a.is_null(1));
    assert_eq!(
        b.column(10)
            .as_struct()
            .column(1)
            .as_primitive::<Float64Type>()
            .value(0),
        -122.39
    );
    assert_eq!(b.column(11).as_string::<i32>().value(0), "x\"y");
    assert_eq!(b.column(11).as_string::<i32>().value(1), "5");
}

#[test]
fn missing_keys_become_nulls_and_next_url_is_read() {
    let s = schema(&[
        ("Id", "id"),
        ("Name", "string"),
        ("LastModifiedDate", "datetime"),
    ]);
    let mut d = PageDecoder::new(&s);
    let info = d
        .decode_page(br#"{"totalSize":5,"done":false,"nextRecordsUrl":"/services/data/v62.0/query/01gX-2","records":[{"Id":"a"},{"Name":"n","Id":"b"}]}"#)
        .unwrap();
    assert_eq!(
        info.next_records_url.as_deref(),
        Some("/services/data/v62.0/query/01gX-2")
    );
    let b = d.finish_batch().unwrap();
    assert!(b.column(1).is_null(0));
    assert_eq!(b.column(1).as_string::<i32>().value(1), "n");
}

#[test]
fn wrong_type_names_object_record_field_and_value() {
    let s = schema(&[("Id", "id"), ("N", "int"), ("LastModifiedDate", "datetime")]);
    let mut d = PageDecoder::new(&s);
    let e = d
        .decode_page(br#"{"totalSize":2,"done":true,"records":[{"Id":"001A","N":1},{"Id":"001B","N":42.5}]}"#)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Account")
            && e.contains("Id 001B")
            && e.contains("field N")
            && e.contains("42.5"),
        "{e}"
    );
    let mut d = PageDecoder::new(&s);
    let e = d
        .decode_page(br#"{"totalSize":1,"done":true,"records":[{"Id":"001A","N":"seven"}]}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"seven\""), "{e}");
}

#[test]
fn truncated_page_is_retryable_malformed() {
    let s = schema(&[("Id", "id"), ("LastModifiedDate", "datetime")]);
    let mut d = PageDecoder::new(&s);
    let e = d
        .decode_page(br#"{"totalSize":2,"done":true,"records":[{"Id":"001A"},{"Id":"0"#)
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains("cut short"));
}

#[test]
fn envelope_fast_path_agrees_with_the_full_parse() {
    for page in [
        &br#"{"totalSize":5,"done":false,"nextRecordsUrl":"/services/data/v62.0/query/01gX-2","records":[{"Id":"a"}]}"#[..],
        br#"{"totalSize":1,"done":true,"records":[]}"#,
        br#"{"records":[],"totalSize":1,"done":true}"#,
        br#"{ "totalSize" : 3 , "done" : true , "records" : [ ] }"#,
    ] {
        assert_eq!(parse_envelope("A", page).unwrap(), parse_envelope_full("A", page).unwrap());
    }
    assert!(parse_envelope("A", br#"{"totalSize":1,"do"#).is_err());
}

#[test]
fn relationships_decode_as_nested_structs_null_when_the_lookup_is_empty() {
    use crate::schema::fixtures;
    let d = fixtures::describe(
        "Contact",
        &[
            ("Id", "id"),
            ("AccountId", "reference:Account"),
            ("LastModifiedDate", "datetime"),
        ],
    );
    let acct = fixtures::describe(
        "Account",
        &[
            ("Id", "id"),
            ("Name", "string"),
            ("OwnerId", "reference:User"),
        ],
    );
    let s = fixtures::resolve(
        &d,
        &[
            "Id",
            "Account.Name",
            "Account.Owner.Name",
            "Account.Owner.IsActive",
        ],
        &[acct, fixtures::user()],
    )
    .unwrap();
    let page = r#"{"totalSize":3,"done":true,"records":[
        {"attributes":{"type":"Contact"},"Id":"003A","Account":{"attributes":{"type":"Account","url":"/a"},"Name":"Acme","Owner":{"attributes":{"type":"User"},"Name":"Ann","IsActive":true}},"LastModifiedDate":"2024-01-01T00:00:00.000+0000"},
        {"attributes":{"type":"Contact"},"Id":"003B","Account":null,"LastModifiedDate":"2024-01-01T00:00:00.000+0000"},
        {"attributes":{"type":"Contact"},"Id":"003C","Account":{"attributes":{"type":"Account"},"Name":null,"Owner":null},"LastModifiedDate":"2024-01-01T00:00:00.000+0000"}]}"#;
    for fast in [true, false] {
        let mut dec = PageDecoder::new(&s);
        if !fast {
            dec = dec.without_fast_reader();
        }
        dec.decode_page(page.as_bytes()).unwrap();
        let b = dec.finish_batch().unwrap();
        let account = b.column(1).as_struct();
        assert_eq!(
            (0..3).map(|i| account.is_valid(i)).collect::<Vec<_>>(),
            [true, false, true]
        );
        let name = account.column(0).as_string::<i32>();
        assert_eq!(name.value(0), "Acme");
        assert!(name.is_null(2));
        let owner = account.column(1).as_struct();
        assert_eq!(
            (0..3).map(|i| owner.is_valid(i)).collect::<Vec<_>>(),
            [true, false, false]
        );
        assert_eq!(owner.column(0).as_string::<i32>().value(0), "Ann");
        assert!(owner.column(1).as_boolean().value(0));
    }
    // a wrong type inside a parent names the path
    let bad = page.replace(r#""IsActive":true"#, r#""IsActive":"yes""#);
    let e = PageDecoder::new(&s)
        .decode_page(bad.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("field Account.Owner.IsActive = \"yes\" is not a valid boolean"),
        "{e}"
    );
}

#[test]
fn null_id_is_an_error() {
    let s = schema(&[("Id", "id"), ("LastModifiedDate", "datetime")]);
    let mut d = PageDecoder::new(&s);
    assert!(d
        .decode_page(br#"{"totalSize":1,"done":true,"records":[{"Id":null}]}"#)
        .is_err());
}

#[test]
fn decimals_are_exact() {
    assert_eq!(
        parse_decimal("12345678901234567.12", 38, 2),
        Ok(1234567890123456712)
    );
    assert_eq!(parse_decimal("1.2345678E7", 18, 2), Ok(1234567800));
    assert_eq!(parse_decimal("-0.5", 18, 2), Ok(-50));
    assert_eq!(parse_decimal("100", 18, 0), Ok(100));
    assert!(parse_decimal("12.345", 18, 2).is_err());
    assert!(parse_decimal("12345.6", 5, 2).is_err());
    assert_eq!(parse_decimal("12.340", 18, 2), Ok(1234));
    assert_eq!(parse_integer("4.2E1"), Ok(42));
    assert_eq!(parse_integer("212009.0"), Ok(212009));
    assert!(parse_integer("42.5").is_err());
    assert!(parse_integer("abc").is_err());
}

#[test]
fn times_and_dates_parse() {
    assert_eq!(parse_time_ms("00:00:00.001Z"), Some(1));
    assert_eq!(parse_time_ms("23:59:59"), Some(86_399_000));
    assert_eq!(parse_time_ms("24:00:00.000Z"), None);
    let mut buf = [0; 12];
    assert_eq!(time_text(1, &mut buf), "00:00:00.001");
    assert_eq!(time_text(86_399_999, &mut buf), "23:59:59.999");
    assert_eq!(
        time_text(parse_time_ms("10:30:05.5Z").unwrap(), &mut buf),
        "10:30:05.500"
    );
    assert_eq!(parse_date_days("1970-01-01"), Some(0));
    assert_eq!(parse_date_days("2023-02-29"), None);
    assert_eq!(
        parse_datetime_ms("2024-03-01T12:34:56.000-0800"),
        Some(1709325296000)
    );
    assert_eq!(
        parse_datetime_ms("2024-03-01T12:34:56Z"),
        Some(1709296496000)
    );
}

proptest! {
    #[test]
    fn fast_datetime_path_agrees_with_chrono(ms in 0i64..4_102_444_800_000) {
        let text = chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
            .to_string();
        prop_assert_eq!(parse_datetime_ms(&text), Some(ms));
    }

    #[test]
    fn decimal_text_round_trips(units in -999_999_999_999_999i64..999_999_999_999_999i64) {
        let text = format!("{}.{:02}", units / 100, (units % 100).abs());
        let text = if units < 0 && units / 100 == 0 { format!("-{text}") } else { text };
        prop_assert_eq!(parse_decimal(&text, 18, 2), Ok(units as i128));
    }
}
