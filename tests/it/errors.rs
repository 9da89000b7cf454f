//! Bad input: each gets a clear message, the SPEC's exit code, and leaves no partial chunk.

use crate::util::*;
use forcelake::emulator;

const ACCOUNT: &str = "[[objects]]\nname = \"Account\"\n";

fn assert_no_partial_chunks(p: &Pipeline, object: &str) {
    assert_files_match_manifests(&p.lake, object);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_errors_name_the_key_and_exit_2() {
    let emu = start(emulator_config(50)).await;
    let cases: &[(&str, &str, &str)] = &[
        ("sync.concurency=3", "concurency", "unknown key"),
        (
            "sync.query_limit=0",
            "query_limit cannot be 0",
            "query_limit",
        ),
        (
            "salesforce.instance_url=https://login.salesforce.com",
            "My Domain",
            "login host",
        ),
        ("sync.mode=incremental", "", "placeholder"),
    ];
    for (set, needle, what) in cases.iter().take(3) {
        let p = pipeline(&emu.url, ACCOUNT, "");
        let out = run(&p, &["sync", "--set", set]).await;
        assert_eq!(out.status.code(), Some(2), "{what}: {}", text(&out));
        assert!(text(&out).contains(needle), "{what}: {}", text(&out));
        assert!(!p.lake.exists() || parquet_files(&p.lake, "Account").is_empty());
    }
    let _ = cases;
    // start_date with incremental is explained
    let p = pipeline(&emu.url, ACCOUNT, "");
    let out = run(
        &p,
        &[
            "sync",
            "--set",
            "sync.mode=incremental",
            "--set",
            "sync.start_date=2025-01-01",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("incremental never looks back"),
        "{}",
        text(&out)
    );
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_errors_say_what_to_fix_and_never_print_the_secret() {
    let emu = start(emulator_config(50)).await;
    let p = pipeline(&emu.url, ACCOUNT, "");
    let wrong = "wrong-secret-value-0123";
    let out = run_with_secret(&p, &["check"], wrong).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("Consumer Key or Secret is wrong"),
        "{}",
        text(&out)
    );
    assert!(
        !text(&out).contains(wrong),
        "the secret leaked: {}",
        text(&out)
    );
    emu.stop().await;

    let mut cfg = emulator_config(50);
    cfg.faults.no_run_as_user = true;
    let emu = start(cfg).await;
    let p = pipeline(&emu.url, ACCOUNT, "");
    let out = run(&p, &["sync"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no Run-As user is set"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(emulator::DEMO_CLIENT_SECRET));
    emu.stop().await;

    let mut cfg = emulator_config(50);
    cfg.faults.no_scopes = true;
    let emu = start(cfg).await;
    let p = pipeline(&emu.url, ACCOUNT, "");
    let out = run(&p, &["check"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("add the `api` scope"), "{}", text(&out));
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_object_field_and_bad_cursor_are_named_with_suggestions() {
    let emu = start(emulator_config(50)).await;
    let p = pipeline(&emu.url, "[[objects]]\nname = \"Acount\"\n", "");
    let out = run(&p, &["sync"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("\"Acount\"") && text(&out).contains("did you mean Account"),
        "{}",
        text(&out)
    );

    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Account\"\nfields = [\"Id\", \"Nmae\"]\n",
        "",
    );
    let out = run(&p, &["check"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("Nmae") && text(&out).contains("did you mean Name"),
        "{}",
        text(&out)
    );

    let p = pipeline(&emu.url, ACCOUNT, "cursor_field = \"Name\"");
    let out = run(&p, &["sync"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("Account.Name is a string field"),
        "{}",
        text(&out)
    );

    // hostile names never reach SOQL or a path
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Account\"\nfields = [\"Id FROM User --\"]\n",
        "",
    );
    let out = run(&p, &["sync"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("field API name"), "{}", text(&out));
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_of_the_wrong_type_fails_its_chunks_cleanly() {
    let mut cfg = emulator_config(200);
    cfg.faults.bad_value = Some(("Account".into(), "NumberOfEmployees".into()));
    let emu = start(cfg).await;
    let p = pipeline(&emu.url, ACCOUNT, "");
    let out = run(&p, &["sync"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("Account record Id 0015g")
            && t.contains("field NumberOfEmployees")
            && t.contains("\"not-a-int\""),
        "{t}"
    );
    // chunks without the bad value committed; failed ones left nothing behind
    assert_no_partial_chunks(&p, "Account");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_page_is_retried_and_a_permanently_cut_page_fails_cleanly() {
    // every 3rd page cut: chunk retries finish the job, no duplicates
    let mut cfg = emulator_config(300);
    cfg.faults.truncate_every = Some(3);
    let emu = start(cfg).await;
    let data = emu.dataset();
    let p = pipeline(&emu.url, ACCOUNT, "concurrency = 1");
    let out = run(&p, &["sync"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let batches = read_object(&p.lake, "Account");
    assert_eq!(
        assert_matches_truth(&data, "Account", &batches, "LastModifiedDate"),
        data.table("Account").unwrap().rows.len()
    );
    assert_no_partial_chunks(&p, "Account");
    emu.stop().await;

    // every page cut: the chunk fails after its retries, exit 1, nothing partial
    let mut cfg = emulator_config(30);
    cfg.faults.truncate_every = Some(1);
    let emu = start(cfg).await;
    let p = pipeline(
        &emu.url,
        ACCOUNT,
        "start_date = \"2025-11-02\"\nend_date = \"2025-12-31\"",
    );
    let out = run(&p, &["sync"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("cut short"), "{}", text(&out));
    assert!(manifests(&p.lake, "Account").is_empty());
    assert!(parquet_files(&p.lake, "Account").is_empty());
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_expiring_tokens_are_survived() {
    let mut cfg = emulator_config(300);
    cfg.faults.fail_every = Some(5);
    cfg.faults.token_ttl = Some(std::time::Duration::from_millis(300));
    let emu = start(cfg).await;
    let data = emu.dataset();
    let p = pipeline(
        &emu.url,
        "[[objects]]\nname = \"Invoice__c\"\n",
        "concurrency = 2",
    );
    let out = run(&p, &["sync", "-v"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let batches = read_object(&p.lake, "Invoice__c");
    assert_eq!(
        assert_matches_truth(&data, "Invoice__c", &batches, "LastModifiedDate"),
        data.table("Invoice__c").unwrap().rows.len()
    );
    // nothing a run writes or prints carries the secret or a token
    let all = text(&out);
    assert!(
        !all.contains(emulator::DEMO_CLIENT_SECRET) && !all.contains("00D5g000004EMUL!"),
        "secret or token in output"
    );
    for m in manifests(&p.lake, "Invoice__c") {
        let s = m.to_string();
        assert!(!s.contains(emulator::DEMO_CLIENT_SECRET) && !s.contains("00D5g000004EMUL!"));
    }
    emu.stop().await;
}
