//! Relationship paths (issue 15): `Owner.Name`, `Account.Owner.Email`, `Account__r.Name` and a
//! polymorphic `Case.Owner` as struct columns, equal to the emulator's parents, through REST
//! and Bulk; a parent renamed between incremental runs; a typo at each step.

use std::time::Duration;

use arrow::array::{Array, AsArray};
use chrono::Utc;
use forcelake::emulator::data::{record_serial, Cell};

use crate::util::*;

/// One- and two-level paths, a custom `__r` relationship, a polymorphic owner; Contact's
/// AccountId and Invoice__c's Account__c are empty on about a third of the records.
const OBJECTS: &str = "[[objects]]\nname = \"Contact\"\nfields = [\"Id\", \"LastName\", \"AccountId\", \"Account.Name\", \"Account.Owner.Email\", \"Account.BillingCity\", \"owner.name\", \"LastModifiedDate\"]\n\n[[objects]]\nname = \"Invoice__c\"\nfields = [\"Id\", \"Name\", \"Account__r.Name\", \"Account__r.Owner.Manager.Name\", \"LastModifiedDate\"]\n\n[[objects]]\nname = \"Case\"\nfields = [\"Id\", \"Subject\", \"Owner.Name\", \"Owner.Type\", \"Owner.Email\", \"Owner.Alias\", \"Contact.Account.Name\", \"LastModifiedDate\"]\n";

fn assert_lake_is_the_truth(emu: &forcelake::emulator::RunningEmulator, p: &Pipeline) {
    let data = emu.dataset();
    for object in ["Contact", "Invoice__c", "Case"] {
        let batches = read_object(&p.lake, object);
        let n = assert_matches_truth(&data, object, &batches, "LastModifiedDate");
        assert_eq!(
            n,
            data.table(object).unwrap().len(),
            "{object}: every record"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relationship_paths_are_struct_columns_equal_to_the_parents_and_cost_no_request() {
    let emu = start(emulator_config(120)).await;
    let p = pipeline(&emu.url, OBJECTS, "concurrency = 2");
    let out = run(&p, &["sync", "--json"]).await;
    assert_eq!(json(&out)["status"], "complete", "{}", text(&out));
    assert_lake_is_the_truth(&emu, &p);
    let with_paths = emu.requests();

    // The columns: one struct per relationship, nested for deeper paths, named as written in
    // SOQL (canonical case), typed from the parent's describe.
    let contact = sorted_by_id(&p.lake, "Contact");
    let names: Vec<String> = contact
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        [
            "Id",
            "LastName",
            "AccountId",
            "Account",
            "Owner",
            "LastModifiedDate"
        ]
    );
    let account = contact.column(3).as_struct();
    let empty = (0..contact.num_rows())
        .filter(|&r| account.is_null(r))
        .count();
    assert!(
        empty > 0 && empty < contact.num_rows(),
        "some contacts have no account ({empty} of {})",
        contact.num_rows()
    );
    let owner_email = account.column_by_name("Owner").unwrap().as_struct();
    assert!(owner_email.column_by_name("Email").is_some());
    // A polymorphic owner: users and queues, the queue's fields a user lacks are null.
    let case = sorted_by_id(&p.lake, "Case");
    let owner = case.column_by_name("Owner").unwrap().as_struct();
    let types: std::collections::HashSet<&str> = owner
        .column_by_name("Type")
        .unwrap()
        .as_string::<i32>()
        .iter()
        .flatten()
        .collect();
    assert_eq!(
        types,
        ["User", "Queue"].into_iter().collect(),
        "cases are owned by users and queues"
    );

    // The same records without the paths cost exactly as many requests: the parents come in
    // the same pages.
    let plain = "[[objects]]\nname = \"Contact\"\nfields = [\"Id\", \"LastName\", \"AccountId\", \"LastModifiedDate\"]\n\n[[objects]]\nname = \"Invoice__c\"\nfields = [\"Id\", \"Name\", \"LastModifiedDate\"]\n\n[[objects]]\nname = \"Case\"\nfields = [\"Id\", \"Subject\", \"LastModifiedDate\"]\n";
    let p2 = pipeline(&emu.url, plain, "concurrency = 2");
    let before = emu.requests();
    let out = run(&p2, &["sync", "--json"]).await;
    assert_eq!(json(&out)["status"], "complete", "{}", text(&out));
    let without = emu.requests() - before;
    // the path run also read the parents' describes (Account, User) once each
    assert_eq!(
        with_paths,
        without + 2,
        "paths cost only their parents' describes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_builds_the_same_relationship_structs_as_rest() {
    let mut cfg = emulator_config(150);
    cfg.bulk.processing = Duration::from_millis(100);
    let emu = start(cfg).await;
    let rest = pipeline(&emu.url, OBJECTS, "concurrency = 2\napi = \"rest\"");
    let bulk = pipeline(&emu.url, OBJECTS, "concurrency = 2\napi = \"bulk\"");
    for p in [&rest, &bulk] {
        let out = run(p, &["sync", "--json"]).await;
        assert_eq!(json(&out)["status"], "complete", "{}", text(&out));
    }
    assert!(emu.bulk_jobs_created() > 0);
    assert_lake_is_the_truth(&emu, &bulk);
    for object in ["Contact", "Invoice__c", "Case"] {
        assert_eq!(
            sorted_by_id(&rest.lake, object),
            sorted_by_id(&bulk.lake, object),
            "{object}: the Bulk lake equals the REST lake"
        );
    }
}

/// (LastModifiedDate ms, Owner.Name) of every version of one record in the lake.
fn versions(p: &Pipeline, object: &str, id: &str) -> Vec<(i64, Option<String>)> {
    let mut out = Vec::new();
    for (_, b) in read_object(&p.lake, object) {
        let ids = b.column_by_name("Id").unwrap().as_string::<i32>();
        let lmd = b
            .column_by_name("LastModifiedDate")
            .unwrap()
            .as_primitive::<arrow::datatypes::TimestampMillisecondType>();
        let owner = b.column_by_name("Owner").unwrap().as_struct();
        let name = owner.column_by_name("Name").unwrap().as_string::<i32>();
        for r in 0..b.num_rows() {
            if ids.value(r) == id {
                out.push((
                    lmd.value(r),
                    (!name.is_null(r)).then(|| name.value(r).to_string()),
                ));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_renamed_between_incremental_runs_reaches_the_childs_next_version() {
    let emu = start(recent(4, 40, 20)).await;
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Account\"\nfields = [\"Id\", \"Name\", \"OwnerId\", \"Owner.Name\", \"Owner.Email\", \"LastModifiedDate\"]\n",
        "mode = \"incremental\"\nlag_s = 1",
    );
    // The first run records where incremental starts.
    let out = run(&p, &["sync", "--json"]).await;
    assert_eq!(json(&out)["status"], "complete", "{}", text(&out));
    let data = emu.dataset();
    let accounts = data.table("Account").unwrap();
    let (id_i, owner_i) = (
        accounts.def.field_index("Id").unwrap(),
        accounts.def.field_index("OwnerId").unwrap(),
    );
    let row = accounts.row(0);
    let (Cell::Str(id), Cell::Str(owner)) = (&row[id_i], &row[owner_i]) else {
        panic!("account 0 has an Id and an owner")
    };
    let (id, owner) = (id.clone(), owner.clone());
    let user_idx = record_serial(&owner).unwrap() as usize - 1;
    let user_name = |d: &forcelake::emulator::data::Dataset| {
        let u = d.table("User").unwrap();
        match &u.row(user_idx)[u.def.field_index("Name").unwrap()] {
            Cell::Str(s) => s.clone(),
            c => panic!("{c:?}"),
        }
    };
    let old_name = user_name(&data);
    let edit = |rename: bool| {
        emu.mutate(|d| {
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(9);
            let now = Utc::now().timestamp_millis();
            if rename {
                d.table_mut("User").unwrap().update(user_idx, now, &mut rng);
            }
            d.table_mut("Account").unwrap().update(0, now, &mut rng);
        })
    };

    // The account changes: its new version carries its owner's name.
    edit(false);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let out = run(&p, &["sync", "--json"]).await;
    assert_eq!(json(&out)["status"], "complete", "{}", text(&out));
    assert_eq!(
        versions(&p, "Account", &id).last().unwrap().1.as_deref(),
        Some(old_name.as_str())
    );

    // The owner is renamed, then the account changes again: the next version has the new name.
    edit(true);
    let new_name = user_name(&emu.dataset());
    assert_ne!(new_name, old_name);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let out = run(&p, &["sync", "--json"]).await;
    assert_eq!(json(&out)["status"], "complete", "{}", text(&out));
    let v = versions(&p, "Account", &id);
    assert_eq!(v.len(), 2, "two versions of {id}: {v:?}");
    assert_eq!(v[0].1.as_deref(), Some(old_name.as_str()));
    assert_eq!(v[1].1.as_deref(), Some(new_name.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typo_at_each_step_exits_2_naming_the_step_and_what_exists_there() {
    let emu = start(emulator_config(5)).await;
    for (object, field, said) in [
        (
            "Contact",
            "Acount.Name",
            "Contact has no relationship Acount (step 1",
        ),
        (
            "Contact",
            "Account.Ownr.Email",
            "did you mean Owner (→ User)",
        ),
        (
            "Contact",
            "Account.Owner.Emial",
            "User has no field Emial (step 3 of the path); did you mean Email",
        ),
        (
            "Invoice__c",
            "Account__c.Name",
            "a path follows its relationship name: Account__r",
        ),
        (
            "Case",
            "Owner.Department",
            "No such column 'Department' on entity 'Name'",
        ),
        (
            "Contact",
            "Account.Owner",
            "Owner is a relationship of Account (→ User), not a field",
        ),
    ] {
        let p = pipeline(
            &emu.url,
            &format!("[[objects]]\nname = \"{object}\"\nfields = [\"Id\", \"{field}\"]\n"),
            "",
        );
        for cmd in ["check", "sync"] {
            let out = run(&p, &[cmd]).await;
            assert_eq!(out.status.code(), Some(2), "{cmd} {field}: {}", text(&out));
            let t = text(&out);
            assert!(t.contains(field) && t.contains(said), "{cmd} {field}: {t}");
        }
        assert!(parquet_files(&p.lake, object).is_empty());
    }
    // A parent the Run-As user cannot see is named with the path that needs it.
    let mut cfg = emulator_config(5);
    cfg.faults.hidden_objects = vec!["User".into()];
    let hidden = start(cfg).await;
    let p = pipeline(
        &hidden.url,
        "[[objects]]\nname = \"Account\"\nfields = [\"Id\", \"Owner.Name\"]\n",
        "",
    );
    let out = run(&p, &["check"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(
            "Account field \"Owner.Name\": its parent object User cannot be described (NOT_FOUND"
        ),
        "{}",
        text(&out)
    );
    // Past five relationships, or a path that is not one, is refused with the config file.
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Contact\"\nfields = [\"Id\", \"Account..Name\"]\n",
        "",
    );
    let out = run(&p, &["check"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("relationship path"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_answers_relationship_paths_as_salesforce_does() {
    let emu = start(emulator_config(30)).await;
    let http = reqwest::Client::new();
    let token = token(&http, &emu).await;
    let get = |q: &str| {
        http.get(format!("{}/services/data/v62.0/query", emu.url))
            .query(&[("q", q)])
            .bearer_auth(&token)
            .send()
    };
    let r = get("SELECT Id, Owner.Name, Account.Name FROM Case LIMIT 30")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let recs = v["records"].as_array().unwrap();
    assert!(recs
        .iter()
        .any(|r| r["Owner"]["attributes"]["type"] == "Name"
            && r["Owner"]["attributes"]["url"]
                .as_str()
                .unwrap()
                .contains("/sobjects/Group/")));
    assert!(recs.iter().any(|r| r["Account"].is_null()));
    assert!(recs.iter().any(
        |r| r["Account"]["attributes"]["type"] == "Account" && r["Account"]["Name"].is_string()
    ));
    for (q, said) in [
        (
            "SELECT Id, Acount.Name FROM Contact",
            "Didn't understand relationship 'Acount' in field path",
        ),
        (
            "SELECT Id, Owner.Department FROM Case",
            "No such column 'Department' on entity 'Name'",
        ),
        (
            "SELECT Id, Account.Nmae FROM Contact",
            "No such column 'Nmae' on entity 'Account'",
        ),
    ] {
        let r = get(q).await.unwrap();
        assert_eq!(r.status(), 400, "{q}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v[0]["errorCode"], "INVALID_FIELD", "{q}: {v}");
        assert!(v[0]["message"].as_str().unwrap().contains(said), "{q}: {v}");
    }
    // discover shows each lookup's relationship name and where it leads
    let p = pipeline(&emu.url, "[[objects]]\nname = \"Case\"\n", "");
    let out = run(&p, &["discover", "Case"]).await;
    let t = text(&out);
    assert!(t.contains("-> Owner (Group, User; polymorphic"), "{t}");
    assert!(t.contains("-> Contact (Contact)"), "{t}");
    let d = json(&run(&p, &["discover", "Case", "--json"]).await);
    let owner = d["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "OwnerId")
        .unwrap()
        .clone();
    assert_eq!(owner["relationship_name"], "Owner");
    assert_eq!(owner["polymorphic"], true);
}
