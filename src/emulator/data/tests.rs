use super::*;

#[test]
fn java_double_text() {
    assert_eq!(java_double(1234567.0), "1234567.0");
    assert_eq!(java_double(12345678.0), "1.2345678E7");
    assert_eq!(java_double(10000000.0), "1.0E7");
    assert_eq!(java_double(12.5), "12.5");
    assert_eq!(java_double(0.0001), "1.0E-4");
    assert_eq!(java_double(-123456789.25), "-1.2345678925E8");
}

#[test]
fn generation_is_deterministic() {
    let cfg = GenConfig {
        seed: 7,
        rows: HashMap::new(),
        default_rows: 50,
        anchor_ms: 1_767_225_600_000,
        days: 730,
        synthetic: HashMap::new(),
    };
    let a = generate(&cfg);
    let b = generate(&cfg);
    assert_eq!(a.tables[0].rows, b.tables[0].rows);
    assert_eq!(a.tables.len(), 9);
    assert_eq!(a.table("User").unwrap().rows.len(), DEFAULT_USERS);
    assert_eq!(a.table("Group").unwrap().rows.len(), DEFAULT_QUEUES);
    // every lookup points to a record that exists (or is empty)
    for t in &a.tables {
        for (fi, f) in t.def.fields.iter().enumerate() {
            for r in &t.rows {
                if let (Cell::Str(id), false) = (&r[fi], f.reference_to.is_empty()) {
                    let to: Vec<String> = f.reference_to.iter().map(|s| s.to_string()).collect();
                    assert!(
                        a.record(id, &to).is_some(),
                        "{}.{} = {id}",
                        t.def.name,
                        f.name
                    );
                    assert_eq!(
                        record_serial(id).map(|n| record_id(&id[..3], n)),
                        Some(id.clone())
                    );
                }
            }
        }
    }
    assert_eq!(a.table("AccountHistory").unwrap().rows.len(), 0);
    assert_eq!(a.table("Wide__c").unwrap().rows.len(), 0);
    let ids: std::collections::HashSet<_> = a.tables[0]
        .rows
        .iter()
        .map(|r| format!("{:?}", r[0]))
        .collect();
    assert_eq!(ids.len(), 50);
    assert_eq!(record_id("001", 1).len(), 18);
    // case-safe: ids that differ only in case differ case-insensitively too
    let a = record_id("001", 36); // ...A
    let b = record_id("001", 10); // ...a? (serials map to different cases)
    assert_ne!(a.to_lowercase(), b.to_lowercase());
    let all: std::collections::HashSet<String> = (0..5000)
        .map(|i| record_id("a01", i).to_lowercase())
        .collect();
    assert_eq!(all.len(), 5000);
}

#[test]
fn synthetic_records_are_deterministic_and_ordered_by_cursor() {
    let mut synthetic = HashMap::new();
    synthetic.insert("Account".to_string(), 200_000u64);
    let cfg = GenConfig {
        seed: 7,
        rows: HashMap::new(),
        default_rows: 0,
        anchor_ms: 1_767_225_600_000,
        days: 10,
        synthetic,
    };
    let t = generate(&cfg).table_arc("Account").unwrap();
    let s = t.synthetic.clone().unwrap();
    assert_eq!(t.len(), 200_000);
    assert_eq!(s.pool_len() as u64, SYNTHETIC_POOL);
    let lm = t.def.field_index("LastModifiedDate").unwrap();
    let id = t.def.field_index("Id").unwrap();
    assert!(t.is_monotone(lm));
    assert!(!t.is_monotone(id));
    let (a, b) = (t.row(70_000), t.row(70_001));
    assert_eq!(*a, s.row(70_000));
    assert_ne!(a[id], t.row(70_000 + SYNTHETIC_POOL as usize)[id]);
    match (&a[lm], &b[lm]) {
        (Cell::DateTime(x), Cell::DateTime(y)) => assert!(x < y),
        other => panic!("{other:?}"),
    }
    // every stamp falls inside the window and the search finds range bounds
    assert!(s.stamp(0) >= cfg.anchor_ms - 10 * 86_400_000);
    assert!(s.stamp(199_999) < cfg.anchor_ms);
    let t0 = s.stamp(123_456);
    assert_eq!(s.first_at_or_after(t0), 123_456);
    assert_eq!(s.first_at_or_after(t0 + 1), 123_457);
    assert_eq!(s.first_at_or_after(i64::MIN), 0);
    assert_eq!(s.first_at_or_after(i64::MAX), 200_000);
}
