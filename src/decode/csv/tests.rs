use super::*;
use crate::decode::PageDecoder;
use crate::salesforce::describe::ObjectDescribe;
use arrow::array::Array;
use proptest::prelude::*;

/// Account with one field of every type, a compound address with its components, and
/// a custom location.
fn schema() -> ObjectSchema {
    let mut fields: Vec<serde_json::Value> = [
        ("Id", "id"),
        ("Name", "string"),
        ("Flag__c", "boolean"),
        ("Count__c", "int"),
        ("Big__c", "long"),
        ("Ratio__c", "double"),
        ("Amount__c", "currency"),
        ("Day__c", "date"),
        ("LastModifiedDate", "datetime"),
        ("At__c", "time"),
        ("Tags__c", "multipicklist"),
        ("Any__c", "anyType"),
        ("BillingAddress", "address"),
        ("Spot__c", "location"),
    ]
    .iter()
    .map(
        |(n, t)| serde_json::json!({"name": n, "type": t, "label": n, "precision": 18, "scale": 2}),
    )
    .collect();
    for (n, t) in [
        ("BillingStreet", "textarea"),
        ("BillingCity", "string"),
        ("BillingState", "string"),
        ("BillingPostalCode", "string"),
        ("BillingCountry", "string"),
        ("BillingLatitude", "double"),
        ("BillingLongitude", "double"),
        ("BillingGeocodeAccuracy", "picklist"),
    ] {
        fields
            .push(serde_json::json!({"name": n, "type": t, "compoundFieldName": "BillingAddress"}));
    }
    for n in ["Spot__Latitude__s", "Spot__Longitude__s"] {
        fields
            .push(serde_json::json!({"name": n, "type": "double", "compoundFieldName": "Spot__c"}));
    }
    for (n, to) in [("OwnerId", "User"), ("ParentId", "Account")] {
        fields.push(
            serde_json::json!({"name": n, "type": "reference", "referenceTo": [to],
            "relationshipName": n.trim_end_matches("Id")}),
        );
    }
    let d: ObjectDescribe =
        serde_json::from_value(serde_json::json!({"name": "Account", "fields": fields})).unwrap();
    let mut known = crate::schema::Describes::default();
    known.insert(std::sync::Arc::new(d.clone()));
    known.insert(std::sync::Arc::new(crate::schema::fixtures::user()));
    let list: Vec<String> = [
        "Id",
        "Name",
        "Flag__c",
        "Count__c",
        "Big__c",
        "Ratio__c",
        "Amount__c",
        "Day__c",
        "LastModifiedDate",
        "At__c",
        "Tags__c",
        "Any__c",
        "BillingAddress",
        "Spot__c",
        "Owner.Name",
        "Owner.IsActive",
        "Parent.Owner.Name",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    ObjectSchema::resolve(&d, Some(&list), "LastModifiedDate", &known).unwrap()
}

/// One record's values as Salesforce text (None = null), in `schema()` column order, with
/// the address and location as their components.
#[derive(Debug, Clone)]
struct Rec {
    name: Option<String>,
    flag: Option<bool>,
    count: Option<i32>,
    big: Option<i64>,
    ratio: Option<String>,
    amount: Option<String>,
    day: Option<String>,
    at: Option<String>,
    tags: Option<String>,
    street: Option<String>,
    city: Option<String>,
    lat: Option<String>,
    spot: Option<(String, String)>,
    /// `Owner.Name`, `Owner.IsActive`; None: an empty lookup.
    owner: Option<(Option<String>, Option<bool>)>,
    /// `Parent.Owner.Name`: no parent, a parent without owner, or the owner's name.
    parent: Option<Option<Option<String>>>,
    ms: i64,
}

impl Rec {
    fn empty(ms: i64) -> Self {
        Rec {
            name: None,
            flag: None,
            count: None,
            big: None,
            ratio: None,
            amount: None,
            day: None,
            at: None,
            tags: None,
            street: None,
            city: None,
            lat: None,
            spot: None,
            owner: None,
            parent: None,
            ms,
        }
    }
}

fn json_str(v: &Option<String>) -> String {
    v.as_ref()
        .map(|s| serde_json::to_string(s).unwrap())
        .unwrap_or_else(|| "null".into())
}

fn json_page(recs: &[Rec]) -> String {
    let mut out = format!("{{\"totalSize\":{},\"done\":true,\"records\":[", recs.len());
    for (i, r) in recs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let addr = if r.street.is_none() && r.city.is_none() && r.lat.is_none() {
            "null".to_string()
        } else {
            format!(
                "{{\"street\":{},\"city\":{},\"state\":null,\"postalCode\":null,\"country\":null,\"latitude\":{},\"longitude\":null,\"geocodeAccuracy\":null}}",
                json_str(&r.street),
                json_str(&r.city),
                r.lat.clone().unwrap_or_else(|| "null".into())
            )
        };
        let spot = r
            .spot
            .as_ref()
            .map(|(a, b)| format!("{{\"latitude\":{a},\"longitude\":{b}}}"))
            .unwrap_or_else(|| "null".into());
        let ts = sf_text(r.ms, "+0000");
        let user = r#""attributes":{"type":"User","url":"/services/data/v62.0/sobjects/User/005"}"#;
        let owner = match &r.owner {
            None => "null".to_string(),
            Some((n, a)) => format!(
                "{{{user},\"Name\":{},\"IsActive\":{}}}",
                json_str(n),
                a.map(|b| b.to_string()).unwrap_or_else(|| "null".into())
            ),
        };
        let parent = match &r.parent {
            None => "null".to_string(),
            Some(o) => format!(
                "{{\"attributes\":{{\"type\":\"Account\"}},\"Owner\":{}}}",
                o.as_ref()
                    .map(|n| format!("{{{user},\"Name\":{}}}", json_str(n)))
                    .unwrap_or_else(|| "null".into())
            ),
        };
        out.push_str(&format!(
            "{{\"attributes\":{{\"type\":\"Account\"}},\"Id\":\"001{i:015}\",\"Name\":{},\"Flag__c\":{},\"Count__c\":{},\"Big__c\":{},\"Ratio__c\":{},\"Amount__c\":{},\"Day__c\":{},\"LastModifiedDate\":\"{ts}\",\"At__c\":{},\"Tags__c\":{},\"Any__c\":{},\"BillingAddress\":{addr},\"Spot__c\":{spot},\"Owner\":{owner},\"Parent\":{parent}}}",
            json_str(&r.name),
            r.flag.map(|b| b.to_string()).unwrap_or_else(|| "null".into()),
            r.count.map(|b| b.to_string()).unwrap_or_else(|| "null".into()),
            r.big.map(|b| b.to_string()).unwrap_or_else(|| "null".into()),
            r.ratio.clone().unwrap_or_else(|| "null".into()),
            r.amount.clone().unwrap_or_else(|| "null".into()),
            json_str(&r.day),
            json_str(&r.at),
            json_str(&r.tags),
            json_str(&r.name),
        ));
    }
    out.push_str("]}");
    out
}

fn q(v: &Option<String>) -> String {
    format!("\"{}\"", v.clone().unwrap_or_default().replace('"', "\"\""))
}

/// A CSV page as Bulk sends it: header, every field quoted, columns in another order than
/// the schema's (the header decides).
fn csv_page(recs: &[Rec]) -> String {
    let mut out = String::from("\"Name\",\"Id\",\"Flag__c\",\"Count__c\",\"Big__c\",\"Ratio__c\",\"Amount__c\",\"Day__c\",\"LastModifiedDate\",\"At__c\",\"Tags__c\",\"Any__c\",\"BillingStreet\",\"BillingCity\",\"BillingState\",\"BillingPostalCode\",\"BillingCountry\",\"BillingLatitude\",\"BillingLongitude\",\"BillingGeocodeAccuracy\",\"Spot__Latitude__s\",\"Spot__Longitude__s\",\"Owner.Name\",\"Owner.IsActive\",\"Owner.Id\",\"Parent.Owner.Name\",\"Parent.Owner.Id\",\"Parent.Id\"\n");
    for (i, r) in recs.iter().enumerate() {
        let ts = sf_text(r.ms, "Z");
        let cells = [
            q(&r.name),
            format!("\"001{i:015}\""),
            q(&r.flag.map(|b| b.to_string())),
            q(&r.count.map(|b| b.to_string())),
            q(&r.big.map(|b| b.to_string())),
            q(&r.ratio),
            q(&r.amount),
            q(&r.day),
            format!("\"{ts}\""),
            q(&r.at),
            q(&r.tags),
            q(&r.name),
            q(&r.street),
            q(&r.city),
            "\"\"".into(),
            "\"\"".into(),
            "\"\"".into(),
            q(&r.lat),
            "\"\"".into(),
            "\"\"".into(),
            q(&r.spot.as_ref().map(|s| s.0.clone())),
            q(&r.spot.as_ref().map(|s| s.1.clone())),
            q(&r.owner.as_ref().and_then(|o| o.0.clone())),
            q(&r.owner.as_ref().and_then(|o| o.1.map(|b| b.to_string()))),
            q(&r.owner.as_ref().map(|_| "005000000000000001".to_string())),
            q(&r.parent.as_ref().and_then(|p| p.clone().flatten())),
            q(&r.parent
                .as_ref()
                .and_then(|p| p.as_ref().map(|_| "005000000000000002".to_string()))),
            q(&r.parent.as_ref().map(|_| "001000000000000009".to_string())),
        ];
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

fn decode_json(page: &str) -> RecordBatch {
    let s = schema();
    let mut d = PageDecoder::new(&s);
    d.decode_page(page.as_bytes()).unwrap();
    d.finish_batch().unwrap()
}

/// A datetime as Salesforce writes it: `+0000` in REST JSON, `Z` in Bulk CSV.
fn sf_text(ms: i64, zone: &str) -> String {
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap();
    format!("{}{zone}", t.format("%Y-%m-%dT%H:%M:%S%.3f"))
}

fn decode_csv(pages: &[String], step: usize) -> RecordBatch {
    let s = schema();
    let mut d = CsvDecoder::new(&s);
    for p in pages {
        d.start_page();
        for c in p.as_bytes().chunks(step.max(1)) {
            d.feed(c).unwrap();
        }
        d.end_page().unwrap();
    }
    d.finish_batch().unwrap()
}

/// Non-empty text with what breaks CSV: quotes, commas, CR/LF, non-ASCII.
fn awkward() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("\"".to_string()),
            Just(",".to_string()),
            Just("\r\n".to_string()),
            Just("\n".to_string()),
            Just("é".to_string()),
            Just("日本".to_string()),
            Just("😀".to_string()),
            Just(" ".to_string()),
            "[a-z0-9]{1,5}",
        ],
        1..6,
    )
    .prop_map(|v| v.concat())
}

fn rec() -> impl Strategy<Value = Rec> {
    let num = prop_oneof![
        Just("1.0".to_string()),
        Just("9.9213206E7".to_string()),
        Just("-0.001".to_string()),
        Just("1.2345678E-5".to_string()),
        (-1_000_000i64..1_000_000).prop_map(|v| format!("{}.{}", v / 100, (v % 100).abs())),
    ];
    (
        (
            proptest::option::of(awkward()),
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<i32>()),
            proptest::option::of(any::<i64>()),
            proptest::option::of(num.clone()),
            proptest::option::of(
                (0i64..10_000_000).prop_map(|c| format!("{}.{:02}", c / 100, c % 100)),
            ),
            proptest::option::of((0i64..20_000).prop_map(|d| {
                chrono::DateTime::from_timestamp(d * 86_400, 0)
                    .unwrap()
                    .format("%Y-%m-%d")
                    .to_string()
            })),
        ),
        (
            proptest::option::of((0i32..86_400_000).prop_map(|ms| {
                format!(
                    "{:02}:{:02}:{:02}.{:03}Z",
                    ms / 3_600_000,
                    ms / 60_000 % 60,
                    ms / 1000 % 60,
                    ms % 1000
                )
            })),
            proptest::option::of(
                proptest::collection::vec("[A-Za-z ]{1,6}", 1..4).prop_map(|v| v.join(";")),
            ),
            proptest::option::of(awkward()),
            proptest::option::of(awkward()),
            proptest::option::of(num.clone()),
            proptest::option::of((num.clone(), num)),
            0i64..4_000_000_000_000,
        ),
        (
            proptest::option::of((
                proptest::option::of(awkward()),
                proptest::option::of(any::<bool>()),
            )),
            proptest::option::of(proptest::option::of(proptest::option::of(awkward()))),
        ),
    )
        .prop_map(
            |(
                (name, flag, count, big, ratio, amount, day),
                (at, tags, street, city, lat, spot, ms),
                (owner, parent),
            )| Rec {
                owner,
                parent,
                name,
                flag,
                count,
                big,
                ratio,
                amount,
                day,
                at,
                tags,
                street,
                city,
                lat,
                spot,
                ms,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The same records through a REST JSON page and through Bulk CSV pages (split at
    /// any byte, several pages with a header each) give identical Arrow batches.
    #[test]
    fn csv_and_json_decode_to_the_same_batch(recs in proptest::collection::vec(rec(), 1..12), step in 1usize..64, cut in 0usize..12) {
        let json = decode_json(&json_page(&recs));
        let cut = cut.min(recs.len());
        let pages = vec![csv_page(&recs[..cut]), csv_page(&recs[cut..])];
        // Ids restart per page in csv_page: renumber the second page's by decoding both halves
        let first = decode_csv(&pages[..1], step);
        let second = decode_csv(&pages[1..], step);
        let json_first = json.slice(0, cut);
        prop_assert_eq!(&first, &json_first);
        let json_second = decode_json(&json_page(&recs[cut..]));
        prop_assert_eq!(&second, &json_second);
    }
}

#[test]
fn pages_join_and_feeding_a_byte_at_a_time_changes_nothing() {
    let recs: Vec<Rec> = (0..5)
        .map(|i| Rec {
            name: Some(format!("a \"quoted\", name\r\nline {i}")),
            flag: Some(i % 2 == 0),
            count: Some(i),
            big: None,
            ratio: Some("9.9213206E7".into()),
            amount: Some("12.50".into()),
            day: Some("2024-02-29".into()),
            at: Some("10:30:00.000Z".into()),
            tags: Some("A;B".into()),
            street: (i % 2 == 1).then(|| "1 Main St\nSuite 2".to_string()),
            city: None,
            lat: None,
            spot: (i == 3).then(|| ("1.5".to_string(), "-2.25".to_string())),
            owner: (i != 2).then(|| (Some(format!("Owner \"{i}\", Jr.")), None)),
            parent: (i > 1).then(|| (i > 2).then(|| (i == 4).then(|| "Boss".to_string()))),
            ms: 1_700_000_000_000 + i as i64,
        })
        .collect();
    let page = csv_page(&recs);
    let whole = decode_csv(std::slice::from_ref(&page), usize::MAX);
    let bytewise = decode_csv(std::slice::from_ref(&page), 1);
    assert_eq!(whole, bytewise);
    assert_eq!(whole, decode_json(&json_page(&recs)));
    let two = decode_csv(&[page.clone(), page.clone()], 7);
    assert_eq!(two.num_rows(), 10);
}

#[test]
fn feed_until_stops_at_the_row_limit_and_loses_nothing() {
    let recs: Vec<Rec> = (0..7)
        .map(|i| Rec {
            name: Some(format!("row \"{i}\",\r\nnext")),
            ..Rec::empty(i)
        })
        .collect();
    let page = csv_page(&recs);
    let s = schema();
    let mut d = CsvDecoder::new(&s);
    d.start_page();
    let mut batches = Vec::new();
    let mut rest = page.as_bytes();
    while !rest.is_empty() {
        rest = &rest[d.feed_until(rest, 2).unwrap()..];
        assert!(d.buffered_rows() <= 2, "one chunk decoded past the limit");
        if d.buffered_rows() == 2 {
            batches.push(d.finish_batch().unwrap());
        }
    }
    assert_eq!(d.end_page().unwrap(), 7);
    batches.push(d.finish_batch().unwrap());
    assert_eq!(batches.len(), 4);
    let joined = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    assert_eq!(joined, decode_csv(&[page], usize::MAX));
}

#[test]
fn empty_and_quoted_empty_are_null_and_a_missing_header_column_is_an_error() {
    let rec = Rec::empty(0);
    let quoted = csv_page(std::slice::from_ref(&rec));
    assert!(quoted.lines().nth(1).unwrap().starts_with("\"\",\"001"));
    let bare = quoted.replace("\"\"", "");
    let a = decode_csv(&[quoted], 5);
    let b = decode_csv(&[bare], 5);
    assert_eq!(a, b);
    assert_eq!(a, decode_json(&json_page(&[rec])));
    assert_eq!(a.column(1).null_count(), 1);
    let s = schema();
    let mut d = CsvDecoder::new(&s);
    d.start_page();
    let e = d
        .feed(b"\"Id\",\"Name\"\n\"001\",\"\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no column Flag__c"), "{e}");
}

#[test]
fn a_bad_value_names_record_field_and_value() {
    let recs = vec![Rec {
        name: Some("x".into()),
        ..Rec::empty(0)
    }];
    let page = csv_page(&recs).replacen(
        "\"\",\"\",\"\",\"\",\"\",\"\",\"",
        "\"maybe\",\"\",\"\",\"\",\"\",\"\",\"",
        1,
    );
    let s = schema();
    let mut d = CsvDecoder::new(&s);
    d.start_page();
    let e = d
        .feed(page.as_bytes())
        .and_then(|_| d.end_page().map(|_| ()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("Account record Id 001000000000000000: field Flag__c = \"maybe\" is not a valid boolean"), "{e}");
}

#[test]
fn an_empty_body_is_an_empty_page() {
    let s = schema();
    let mut d = CsvDecoder::new(&s);
    d.start_page();
    assert_eq!(d.end_page().unwrap(), 0);
    d.start_page();
    d.feed(b"\n").unwrap();
    assert!(
        d.end_page().is_err(),
        "a body without a header row is not a page"
    );
}

#[test]
fn a_page_cut_mid_row_is_a_retryable_error() {
    let recs: Vec<Rec> = vec![];
    let mut page = csv_page(&recs);
    page.push_str("\"x\",\"001\",\"tr");
    let s = schema();
    let mut d = CsvDecoder::new(&s);
    d.start_page();
    d.feed(page.as_bytes()).unwrap();
    let e = d.end_page().unwrap_err();
    assert!(e.is_retryable(), "{e}");
}
