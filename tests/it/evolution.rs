//! Schema changes that keep the data (SPEC §5): a widened currency keeps syncing into the
//! Delta table's column type, and a field that disappears from describe (deleted, or hidden by
//! field-level security) fails only its object, with a message that says so, while the other
//! objects advance.

use arrow::datatypes::DataType;

use crate::util::*;

const OBJECTS: &str = "[[objects]]\nname = \"Account\"\nfields = [\"Id\", \"Name\", \"AnnualRevenue\", \"Credit_Limit__c\", \"LastModifiedDate\"]\n\n[[objects]]\nname = \"Invoice__c\"\nfields = [\"Id\", \"Name\", \"Amount__c\", \"LastModifiedDate\"]\n";

fn decimal_type(lake: &std::path::Path, object: &str, column: &str) -> DataType {
    let (_, b) = read_object(lake, object).into_iter().last().unwrap();
    b.schema()
        .field_with_name(column)
        .unwrap()
        .data_type()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_widened_currency_keeps_syncing_and_a_vanished_field_fails_only_its_object() {
    let emu = start(emulator_config(300)).await;
    let p = pipeline(&emu.url, OBJECTS, "end_date = \"2025-12-10\"");
    json(&run(&p, &["sync", "--json"]).await);
    assert_eq!(
        decimal_type(&p.lake, "Invoice__c", "Amount__c"),
        DataType::Decimal128(16, 2)
    );

    // a routine widening: (16,2) → (18,2)
    emu.mutate(|d| {
        d.table_mut("Invoice__c")
            .unwrap()
            .change_field_scale("Amount__c", 18, 2);
    });
    let out = run(&p, &["sync", "--json", "--set", "sync.end_date=2025-12-20"]).await;
    let s = json(&out);
    assert_eq!(s["status"], "complete", "{s}");
    for o in s["objects"].as_array().unwrap() {
        assert!(o["chunks_committed"].as_u64().unwrap() > 0, "{o}");
    }
    assert!(
        s.to_string().contains("widened"),
        "the widening is not reported: {s}"
    );
    for object in ["Account", "Invoice__c"] {
        assert_files_match_manifests(&p.lake, object);
        let rows = read_object(&p.lake, object);
        assert_matches_truth(&emu.dataset(), object, &rows, "LastModifiedDate");
    }

    // (18,0) → (18,2): the table's Decimal128(18, 0) cannot hold cents; the first value with
    // cents fails Account's window, naming the record, while Invoice__c goes on
    emu.mutate(|d| {
        d.table_mut("Account")
            .unwrap()
            .change_field_scale("AnnualRevenue", 18, 2)
    });
    let out = run(&p, &["sync", "--json", "--set", "sync.end_date=2025-12-25"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["objects"][0]["status"], "failed", "{s}");
    let msg = s["objects"][0]["errors"][0].as_str().unwrap();
    assert!(
        msg.contains("Account record Id") && msg.contains("AnnualRevenue"),
        "{msg}"
    );
    assert_eq!(s["objects"][1]["status"], "complete", "{s}");
    assert_files_match_manifests(&p.lake, "Account");
    emu.mutate(|d| {
        d.table_mut("Account")
            .unwrap()
            .change_field_scale("AnnualRevenue", 18, 0)
    });

    // Credit_Limit__c is deleted (or hidden by field-level security)
    emu.mutate(|d| {
        d.table_mut("Account")
            .unwrap()
            .remove_field("Credit_Limit__c")
    });
    let before = manifests(&p.lake, "Account").len();
    let out = run(&p, &["sync", "--json", "--set", "sync.end_date=2025-12-31"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_name = |n: &str| {
        s["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["object"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n} not in {s}"))
    };
    let account = by_name("Account");
    assert_eq!(account["status"], "failed", "{s}");
    let msg = account["errors"][0].as_str().unwrap();
    assert!(
        msg.contains("Account.Credit_Limit__c was in the lake")
            && msg.contains("field-level security"),
        "{msg}"
    );
    assert!(!msg.contains("did you mean"), "{msg}");
    let invoice = by_name("Invoice__c");
    assert_eq!(invoice["status"], "complete", "{s}");
    assert!(invoice["chunks_committed"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(
        manifests(&p.lake, "Account").len(),
        before,
        "Account was written"
    );

    // a typo in a new configuration is still a configuration error of the whole run
    let typo = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Account\"\nfields = [\"Id\", \"Nmae\", \"LastModifiedDate\"]\n",
        "",
    );
    let out = run(&typo, &["sync"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("did you mean Name"), "{}", text(&out));
    emu.stop().await;
}
