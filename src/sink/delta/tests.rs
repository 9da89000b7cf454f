use super::*;

fn st(fields: Vec<StructField>) -> StructType {
    StructType::try_new(fields).unwrap()
}

#[test]
fn new_columns_at_any_depth_and_type_changes_are_found() {
    let owner = |extra: bool| {
        let mut f = vec![StructField::nullable("Name", DataType::STRING)];
        if extra {
            f.push(StructField::nullable("Email", DataType::STRING));
        }
        DataType::Struct(Box::new(st(f)))
    };
    let table = st(vec![
        StructField::new("Id", DataType::STRING, false),
        StructField::nullable("Owner", owner(false)),
    ]);
    let new = st(vec![
        StructField::new("Id", DataType::STRING, false),
        StructField::nullable("Owner", owner(true)),
        StructField::new("Rating", DataType::LONG, false),
    ]);
    let d = schema_diff("Account", &table, &new).unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].parent, vec!["Owner".to_string()]);
    assert_eq!(d[0].field.name(), "Email");
    assert!(d[1].parent.is_empty() && d[1].field.is_nullable());
    assert!(schema_diff("Account", &new, &new).unwrap().is_empty());
    // a column the schema no longer has stays in the table: not a change
    assert!(schema_diff("Account", &new, &table).unwrap().is_empty());
    let retyped = st(vec![StructField::nullable("Id", DataType::LONG)]);
    let e = schema_diff("Account", &table, &retyped)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("column Id is string") && e.contains("long"),
        "{e}"
    );
}

fn file(day: u32, chunk: &str) -> DeltaFile {
    let day = NaiveDate::from_ymd_opt(2024, 1, day).unwrap();
    DeltaFile {
        path: format!("Account/date={day}/{chunk}-0000-0.parquet"),
        day,
        rows: 1,
        bytes: 10,
    }
}

/// Chunks committed at once share log versions, each chunk exactly once; a chunk settled by
/// another chunk of the same batch is not added; a second commit of a chunk finds it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_chunks_are_grouped_into_few_commits_each_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("Account")).unwrap(); // where the data files go
    let (store, root) =
        crate::sink::store::open_root(dir.path().to_str().unwrap(), &Default::default()).unwrap();
    let tables = Arc::new(DeltaTables::new(store, root));
    let schema = Arc::new(ArrowSchema::new(vec![ArrowField::new(
        "Id",
        ArrowType::Utf8,
        false,
    )]));
    let mut tasks = Vec::new();
    for d in 1..=24u32 {
        let (tables, schema) = (tables.clone(), schema.clone());
        tasks.push(tokio::spawn(async move {
            let id = format!("historical-202401{d:02}");
            let c = ChunkCommit {
                chunk_id: id.clone(),
                adds: vec![file(d, &id)],
                ..Default::default()
            };
            tables.commit_chunk("Account", &schema, c).await.unwrap()
        }));
    }
    let mut versions = HashSet::new();
    for t in tasks {
        match t.await.unwrap() {
            DeltaOutcome::Committed(v) => {
                versions.insert(v);
            }
            DeltaOutcome::AlreadyThere => panic!("a new chunk was found committed"),
        }
    }
    let state = tables.state("Account").await.unwrap();
    assert_eq!(state.files.len(), 24, "{:?}", state.files);
    assert!(versions.len() < 24, "no commit was grouped: {versions:?}");
    assert_eq!(state.version, versions.iter().max().copied());
    // a commit of a chunk already in the log changes nothing
    let again = ChunkCommit {
        chunk_id: "historical-20240105".into(),
        adds: vec![file(5, "historical-20240105-again")],
        ..Default::default()
    };
    assert_eq!(
        tables
            .commit_chunk("Account", &schema, again)
            .await
            .unwrap(),
        DeltaOutcome::AlreadyThere
    );
    // one batch: a backfill settling a chunk that comes in the same batch
    let engine = tables.engine.clone();
    let url = tables.table_url("Account").unwrap();
    let delta_schema = table_schema("Account", &schema).unwrap();
    let start = tables.slot("Account").snapshot.lock().await.clone();
    let batch = vec![
        ChunkCommit {
            chunk_id: "historical-20240201".into(),
            adds: vec![file(30, "historical-20240201")],
            ..Default::default()
        },
        ChunkCommit {
            chunk_id: "backfill-x-20240201".into(),
            adds: vec![file(31, "backfill-x-20240201")],
            settles: vec!["historical-20240201".into()],
            ..Default::default()
        },
    ];
    let (outcomes, _) = tokio::task::spawn_blocking(move || {
        commit_blocking(&engine, &url, "Account", &delta_schema, &batch, start)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(outcomes[0], DeltaOutcome::AlreadyThere);
    assert!(matches!(outcomes[1], DeltaOutcome::Committed(_)));
    *tables.slot("Account").snapshot.lock().await = None;
    let files = tables.state("Account").await.unwrap().files;
    assert!(files.iter().any(|f| f.contains("backfill-x")));
    assert!(!files.iter().any(|f| f.contains("historical-20240201")));
}

#[test]
fn the_partition_column_is_added_and_a_date_column_is_refused() {
    let a = ArrowSchema::new(vec![ArrowField::new("Id", ArrowType::Utf8, false)]);
    let s = table_schema("Account", &a).unwrap();
    assert_eq!(
        s.fields().map(|f| f.name().as_str()).collect::<Vec<_>>(),
        ["Id", "date"]
    );
    let b = ArrowSchema::new(vec![ArrowField::new("Date", ArrowType::Date32, true)]);
    assert!(table_schema("Event", &b).is_err());
}
