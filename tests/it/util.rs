//! Test support: an emulator on 127.0.0.1, a temp lake, the binary, and readers for the lake.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Output;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type,
    TimestampMillisecondType,
};
use forcelake::emulator::data::{Cell, Dataset, Table};
use forcelake::emulator::{self, EmulatorConfig, RunningEmulator};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

pub const BIN: &str = env!("CARGO_BIN_EXE_forcelake");
/// Data ends at this day (exclusive); 60 days of history keep tests small.
pub const ANCHOR: &str = "2026-01-01";
pub const DAYS: i64 = 60;

pub fn emulator_config(rows: usize) -> EmulatorConfig {
    let mut cfg = EmulatorConfig::default();
    cfg.gen.seed = 7;
    cfg.gen.default_rows = rows;
    cfg.gen.anchor_ms = forcelake::timefmt::day_start(ANCHOR.parse().unwrap()).timestamp_millis();
    cfg.gen.days = DAYS;
    cfg
}

pub async fn start(cfg: EmulatorConfig) -> RunningEmulator {
    emulator::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator starts")
}

/// A temp dir with a pipeline file pointing at `url`.
pub struct Pipeline {
    pub _dir: tempfile::TempDir,
    pub config: PathBuf,
    pub lake: PathBuf,
}

pub fn pipeline(url: &str, objects_toml: &str, sync_toml: &str) -> Pipeline {
    pipeline_at(url, objects_toml, sync_toml, None, &[])
}

/// A pipeline writing to `dest` (default: a local folder in the temp dir) with store options.
pub fn pipeline_at(
    url: &str,
    objects_toml: &str,
    sync_toml: &str,
    dest: Option<&str>,
    options: &[(String, String)],
) -> Pipeline {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let config = dir.path().join("forcelake.toml");
    // Bounded ranges keep runs deterministic (no partial "today" chunk) and small.
    let mut sync_toml = if sync_toml.contains("end_date") || sync_toml.contains("incremental") {
        sync_toml.to_string()
    } else {
        format!("end_date = \"2025-12-31\"\n{sync_toml}")
    };
    if !sync_toml.contains("mode =") {
        sync_toml = format!("mode = \"historical\"\n{sync_toml}");
    }
    let dest_url = dest
        .map(str::to_string)
        .unwrap_or_else(|| lake.display().to_string());
    let mut opts = String::new();
    if !options.is_empty() {
        opts.push_str("\n[destination.options]\n");
        for (k, v) in options {
            opts.push_str(&format!("{k} = \"{v}\"\n"));
        }
    }
    let text = format!(
        "[salesforce]\ninstance_url = \"{url}\"\nclient_id = \"{}\"\n\n{objects_toml}\n\n[sync]\nrate_limit = 10000\nquery_limit = 100000\n{sync_toml}\n\n[destination]\nurl = \"{dest_url}\"\n{opts}",
        emulator::DEMO_CLIENT_ID,
    );
    std::fs::write(&config, text).unwrap();
    Pipeline {
        _dir: dir,
        config,
        lake,
    }
}

/// An access token from the emulator's token endpoint (for tests that speak HTTP directly).
pub async fn token(http: &reqwest::Client, emu: &RunningEmulator) -> String {
    let tok: serde_json::Value = http
        .post(format!("{}/services/oauth2/token", emu.url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", emulator::DEMO_CLIENT_ID),
            ("client_secret", emulator::DEMO_CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tok["access_token"].as_str().unwrap().to_string()
}

/// Runs the binary with the demo secret in the environment.
pub async fn run(p: &Pipeline, args: &[&str]) -> Output {
    run_with_secret(p, args, emulator::DEMO_CLIENT_SECRET).await
}

/// Runs the binary with extra environment variables (e.g. `FORCELAKE_NOW`).
pub async fn run_env(p: &Pipeline, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("--config")
        .arg(&p.config)
        .args(args)
        .env("FORCELAKE_CLIENT_SECRET", emulator::DEMO_CLIENT_SECRET)
        .env("RUST_LOG", "forcelake=info")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("binary runs")
}

/// Starts the binary in the background (output discarded): for kill and progress tests.
pub fn spawn<I, S>(p: &Pipeline, args: I) -> tokio::process::Child
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    spawn_env(p, args, &[])
}

/// [`spawn`] with extra environment (`FORCELAKE_NOW`).
pub fn spawn_env<I, S>(p: &Pipeline, args: I, env: &[(&str, String)]) -> tokio::process::Child
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    tokio::process::Command::new(BIN)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("--config")
        .arg(&p.config)
        .args(args)
        .env("FORCELAKE_CLIENT_SECRET", emulator::DEMO_CLIENT_SECRET)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts")
}

pub async fn run_with_secret(p: &Pipeline, args: &[&str], secret: &str) -> Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("--config")
        .arg(&p.config)
        .args(args)
        .env("FORCELAKE_CLIENT_SECRET", secret)
        .env("RUST_LOG", "forcelake=info")
        .kill_on_drop(true);
    let out = cmd.output().await.expect("binary runs");
    out
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A run that must exit 0; its JSON summary from stdout.
pub fn json(out: &Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", text(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

/// Emulator data over the `days` before today (real time), so incremental windows see it.
pub fn recent(seed: u64, rows: usize, days: i64) -> EmulatorConfig {
    let mut cfg = EmulatorConfig::default();
    cfg.gen.seed = seed;
    cfg.gen.default_rows = rows;
    cfg.gen.days = days;
    cfg
}

/// An RFC 3339 timestamp in a JSON summary or manifest.
pub fn time_at(v: &serde_json::Value) -> chrono::DateTime<chrono::FixedOffset> {
    let text = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
    chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// The UTC day `d` days ago, `YYYY-MM-DD`.
pub fn day(d: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(d))
        .format("%Y-%m-%d")
        .to_string()
}

/// RFC 3339 of now minus `d` (for `FORCELAKE_NOW`).
pub fn ago(d: chrono::Duration) -> String {
    forcelake::timefmt::rfc3339(chrono::Utc::now() - d)
}

/// Every Id of the batches, in order.
pub fn ids(batches: &[(String, RecordBatch)]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|(_, b)| {
            b.column_by_name("Id")
                .expect("Id column")
                .as_string::<i32>()
                .iter()
                .map(|s| s.unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The Parquet files of record versions under `<lake>/<object>/` (not the tombstones of
/// `deletes` chunks: see [`tombstones`]).
pub fn parquet_files(lake: &Path, object: &str) -> Vec<PathBuf> {
    all_parquet_files(lake, object)
        .into_iter()
        .filter(|f| !is_tombstone_file(f))
        .collect()
}

/// A file of a `deletes` or `reconcile` chunk (tombstone rows).
pub fn is_tombstone_file(f: &Path) -> bool {
    f.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("deletes-") || n.starts_with("reconcile-"))
}

/// `(Id, cursor ms, IsDeleted)` of every tombstone row of an object, sorted.
pub fn tombstones(lake: &Path, object: &str, cursor: &str) -> Vec<(String, i64, Option<bool>)> {
    let mut out = vec![];
    for f in all_parquet_files(lake, object)
        .iter()
        .filter(|f| is_tombstone_file(f))
    {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            let b = b.unwrap();
            let ids = b.column_by_name("Id").unwrap().as_string::<i32>().clone();
            let at = b
                .column_by_name(cursor)
                .unwrap()
                .as_primitive::<arrow::datatypes::TimestampMillisecondType>()
                .clone();
            let del = b
                .column_by_name("IsDeleted")
                .map(|c| c.as_boolean().clone());
            for r in 0..b.num_rows() {
                out.push((
                    ids.value(r).to_string(),
                    at.value(r),
                    del.as_ref().map(|d| d.value(r)),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Every Parquet file under `<lake>/<object>/date=*/`: record versions and tombstones.
pub fn all_parquet_files(lake: &Path, object: &str) -> Vec<PathBuf> {
    let mut out = vec![];
    let root = lake.join(object);
    if let Ok(days) = std::fs::read_dir(&root) {
        // day folders only: `_delta_log/` holds checkpoints, which are Parquet too
        for d in days
            .flatten()
            .filter(|d| d.file_name().to_string_lossy().starts_with("date="))
        {
            for f in std::fs::read_dir(d.path()).unwrap().flatten() {
                if f.path()
                    .extension()
                    .map(|e| e == "parquet")
                    .unwrap_or(false)
                {
                    out.push(f.path());
                }
            }
        }
    }
    out.sort();
    out
}

/// All batches of an object, each with its file's `date=` partition.
pub fn read_object(lake: &Path, object: &str) -> Vec<(String, RecordBatch)> {
    let mut out = vec![];
    for f in parquet_files(lake, object) {
        let day = f
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_start_matches("date=")
            .to_string();
        let file = std::fs::File::open(&f).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            out.push((day.clone(), b.unwrap()));
        }
    }
    out
}

/// Rows of the truth table in `[from, to)` of `cursor`, as queryAll returns them.
pub fn truth_rows<'a>(t: &'a Table, cursor: &str, from_ms: i64, to_ms: i64) -> Vec<&'a Vec<Cell>> {
    let ci = t.def.field_index(cursor).unwrap();
    t.rows
        .iter()
        .filter(|r| matches!(r[ci], Cell::DateTime(ms) if ms >= from_ms && ms < to_ms))
        .map(|r| &**r)
        .collect()
}

/// Count of truth rows per UTC day.
pub fn truth_per_day(t: &Table, cursor: &str) -> BTreeMap<String, usize> {
    let ci = t.def.field_index(cursor).unwrap();
    let mut m = BTreeMap::new();
    for r in &t.rows {
        if let Cell::DateTime(ms) = r[ci] {
            let d = chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .format("%Y-%m-%d")
                .to_string();
            *m.entry(d).or_insert(0) += 1;
        }
    }
    m
}

/// Compares every value of every batch with the truth (by Id). Returns rows checked.
pub fn assert_matches_truth(
    data: &Dataset,
    object: &str,
    batches: &[(String, RecordBatch)],
    cursor: &str,
) -> usize {
    let t = data.table(object).unwrap();
    let id_i = t.def.field_index("Id").unwrap();
    // Stored tables are read in place; synthetic ones are generated record by record.
    let rows: Vec<std::sync::Arc<Vec<Cell>>> = (0..t.len()).map(|i| t.row(i)).collect();
    let by_id: HashMap<&str, &Vec<Cell>> = rows
        .iter()
        .map(|r| {
            (
                match &r[id_i] {
                    Cell::Str(s) => s.as_str(),
                    _ => "",
                },
                &**r,
            )
        })
        .collect();
    let cur_i = t.def.field_index(cursor).unwrap();
    let mut n = 0;
    for (day, b) in batches {
        let ids = b
            .column_by_name("Id")
            .expect("Id column")
            .as_string::<i32>();
        for row in 0..b.num_rows() {
            let id = ids.value(row);
            let truth = by_id
                .get(id)
                .unwrap_or_else(|| panic!("{object} {id} is not in the emulator's data"));
            if let Cell::DateTime(ms) = truth[cur_i] {
                let d = chrono::DateTime::from_timestamp_millis(ms)
                    .unwrap()
                    .format("%Y-%m-%d")
                    .to_string();
                assert_eq!(&d, day, "{object} {id} is in the wrong day partition");
            }
            check_record(data, t, truth, b, row, &format!("{object} {id}"));
            n += 1;
        }
    }
    n
}

/// Every column of row `row` of `b` against the emulator's record `truth`.
fn check_record(
    data: &Dataset,
    t: &Table,
    truth: &[Cell],
    b: &RecordBatch,
    row: usize,
    what: &str,
) {
    for (ci, field) in b.schema().fields().iter().enumerate() {
        if is_relationship(field) {
            check_parent(
                data,
                &t.def,
                truth,
                field,
                b.column(ci).as_ref(),
                row,
                &format!("{what} {}", field.name()),
            );
            continue;
        }
        let fi = t.def.field_index(field.name()).unwrap();
        let scale = t.def.fields[fi].scale;
        check_value(
            b.column(ci).as_ref(),
            row,
            &truth[fi],
            scale,
            &format!("{what} {}", field.name()),
        );
    }
}

/// The rows of an object's current table (`<lake>/_current/<Object>/`), read through
/// delta_kernel's scan (deletion vectors applied), timestamps in milliseconds as the change
/// log has them. Empty when there is no current table.
pub fn current_table(lake: &Path, object: &str) -> Vec<RecordBatch> {
    use delta_kernel::engine::arrow_data::ArrowEngineData;
    let dir = lake.join("_current").join(object);
    if !dir.join("_delta_log").exists() {
        return vec![];
    }
    let url = url::Url::from_directory_path(&dir).unwrap();
    let store = std::sync::Arc::new(object_store::local::LocalFileSystem::new());
    let engine =
        std::sync::Arc::new(delta_kernel_default_engine::DefaultEngineBuilder::new(store).build());
    let snap = delta_kernel::snapshot::Snapshot::builder_for(url.as_str())
        .build(engine.as_ref())
        .unwrap();
    let scan = snap.scan_builder().build().unwrap();
    scan.execute(engine.clone())
        .unwrap()
        .map(|d| {
            let b = ArrowEngineData::try_from_engine_data(d.unwrap())
                .unwrap()
                .record_batch()
                .clone();
            to_millis(&b)
        })
        .collect()
}

/// Microsecond timestamps (as Delta readers return them) back to milliseconds.
fn to_millis(b: &RecordBatch) -> RecordBatch {
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let mut fields = Vec::new();
    let mut cols = Vec::new();
    for (f, c) in b.schema().fields().iter().zip(b.columns()) {
        match f.data_type() {
            DataType::Timestamp(TimeUnit::Microsecond, tz) => {
                let t = DataType::Timestamp(TimeUnit::Millisecond, tz.clone());
                cols.push(arrow::compute::cast(c, &t).unwrap());
                fields.push(
                    Field::new(f.name(), t, f.is_nullable()).with_metadata(f.metadata().clone()),
                );
            }
            _ => {
                cols.push(c.clone());
                fields.push(f.as_ref().clone());
            }
        }
    }
    RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), cols).unwrap()
}

/// The current table against the emulator: exactly the live records (`IsDeleted = false`),
/// once each, every column equal. Returns the number of rows.
pub fn assert_current_is_live(data: &Dataset, lake: &Path, object: &str) -> usize {
    let t = data.table(object).unwrap();
    let id_i = t.def.field_index("Id").unwrap();
    let del_i = t.def.field_index("IsDeleted");
    let rows: Vec<std::sync::Arc<Vec<Cell>>> = (0..t.len()).map(|i| t.row(i)).collect();
    let live: HashMap<String, &Vec<Cell>> = rows
        .iter()
        .filter(|r| del_i.is_none_or(|d| !matches!(r[d], Cell::Bool(true))))
        .map(|r| {
            let id = match &r[id_i] {
                Cell::Str(s) => s.clone(),
                _ => String::new(),
            };
            (id, &**r)
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    for b in current_table(lake, object) {
        let ids = b
            .column_by_name("Id")
            .expect("Id column")
            .as_string::<i32>()
            .clone();
        for row in 0..b.num_rows() {
            let id = ids.value(row);
            assert!(
                seen.insert(id.to_string()),
                "{object} {id} is twice in the current table"
            );
            let truth = live.get(id).unwrap_or_else(|| {
                panic!("{object} {id} is in the current table but not live in the emulator")
            });
            check_record(data, t, truth, &b, row, &format!("current {object} {id}"));
        }
    }
    let missing: Vec<&String> = live
        .keys()
        .filter(|id| !seen.contains(*id))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "{object}: live records missing from the current table: {missing:?} ({} of {})",
        live.len() - seen.len().min(live.len()),
        live.len()
    );
    seen.len()
}

fn is_relationship(f: &arrow::datatypes::Field) -> bool {
    f.metadata().get("salesforce.type").map(String::as_str) == Some("relationship")
}

/// A relationship struct column against the emulator's parent record (through the lookup the
/// field metadata names): null for an empty lookup, else each parent field (nested
/// relationships followed the same way; on a polymorphic parent, a field its object lacks is
/// null and `Type` is its object).
fn check_parent(
    data: &Dataset,
    def: &forcelake::emulator::data::ObjectDef,
    truth: &[Cell],
    field: &arrow::datatypes::Field,
    col: &dyn Array,
    row: usize,
    ctx: &str,
) {
    let md = field.metadata();
    let fk = def
        .field_index(&md["salesforce.lookup"])
        .unwrap_or_else(|| panic!("{ctx}: no lookup {}", md["salesforce.lookup"]));
    let targets: Vec<String> = md["salesforce.reference_to"]
        .split(',')
        .map(String::from)
        .collect();
    let parent = match &truth[fk] {
        Cell::Str(id) => Some(
            data.record(id, &targets)
                .unwrap_or_else(|| panic!("{ctx}: the parent {id} is not in the emulator's data")),
        ),
        _ => None,
    };
    let Some((pt, prow)) = parent else {
        assert!(col.is_null(row), "{ctx}: expected null (an empty lookup)");
        return;
    };
    assert!(!col.is_null(row), "{ctx}: null, but the lookup is set");
    let s = col.as_struct();
    let DataType::Struct(kids) = field.data_type() else {
        panic!("{ctx}: not a struct")
    };
    for (k, kf) in kids.iter().enumerate() {
        let kctx = format!("{ctx}.{}", kf.name());
        if is_relationship(kf) {
            check_parent(data, &pt.def, &prow, kf, s.column(k).as_ref(), row, &kctx);
            continue;
        }
        let (cell, scale) = match pt.def.field_index(kf.name()) {
            Some(fi) => (prow[fi].clone(), pt.def.fields[fi].scale),
            None if kf.name() == "Type" => (Cell::Str(pt.def.name.clone()), 0),
            None => (Cell::Null, 0),
        };
        check_value(s.column(k).as_ref(), row, &cell, scale, &kctx);
    }
}

fn check_value(col: &dyn Array, row: usize, cell: &Cell, scale: i32, ctx: &str) {
    if matches!(cell, Cell::Null) {
        assert!(col.is_null(row), "{ctx}: expected null");
        return;
    }
    assert!(!col.is_null(row), "{ctx}: unexpected null, truth {cell:?}");
    match (col.data_type(), cell) {
        (DataType::Utf8, Cell::Str(s)) => assert_eq!(col.as_string::<i32>().value(row), s, "{ctx}"),
        (DataType::Boolean, Cell::Bool(v)) => assert_eq!(col.as_boolean().value(row), *v, "{ctx}"),
        (DataType::Int32, Cell::Int(v)) => assert_eq!(
            col.as_primitive::<Int32Type>().value(row) as i64,
            *v,
            "{ctx}"
        ),
        (DataType::Int64, Cell::Int(v)) => {
            assert_eq!(col.as_primitive::<Int64Type>().value(row), *v, "{ctx}")
        }
        (DataType::Float64, Cell::Num(v)) => {
            assert_eq!(col.as_primitive::<Float64Type>().value(row), *v, "{ctx}")
        }
        (DataType::Decimal128(_, s), Cell::Cents(units)) => {
            assert_eq!(*s as i32, scale, "{ctx}: scale");
            assert_eq!(
                col.as_primitive::<Decimal128Type>().value(row),
                *units as i128,
                "{ctx}"
            );
        }
        (DataType::Date32, Cell::Date(d)) => {
            assert_eq!(col.as_primitive::<Date32Type>().value(row), *d, "{ctx}")
        }
        (DataType::Timestamp(_, _), Cell::DateTime(ms)) => assert_eq!(
            col.as_primitive::<TimestampMillisecondType>().value(row),
            *ms,
            "{ctx}"
        ),
        (DataType::Utf8, Cell::Time(ms)) => {
            let (h, m, s, f) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
            assert_eq!(
                col.as_string::<i32>().value(row),
                format!("{h:02}:{m:02}:{s:02}.{f:03}"),
                "{ctx}"
            )
        }
        (DataType::List(_), Cell::Str(s)) => {
            let v = col.as_list::<i32>().value(row);
            let got: Vec<&str> = v.as_string::<i32>().iter().map(|x| x.unwrap()).collect();
            assert_eq!(got, s.split(';').collect::<Vec<_>>(), "{ctx}");
        }
        (DataType::Struct(_), Cell::Address(a)) => {
            let s = col.as_struct();
            let get = |k: &str| {
                let c = s.column_by_name(k).unwrap();
                (!c.is_null(row)).then(|| c.as_string::<i32>().value(row).to_string())
            };
            assert_eq!(get("city"), a.city, "{ctx}.city");
            assert_eq!(get("street"), a.street, "{ctx}.street");
            assert_eq!(get("postalCode"), a.postal_code, "{ctx}.postalCode");
            assert_eq!(get("country"), a.country, "{ctx}.country");
            let lat = s.column_by_name("latitude").unwrap();
            assert_eq!(
                (!lat.is_null(row)).then(|| lat.as_primitive::<Float64Type>().value(row)),
                a.latitude,
                "{ctx}.latitude"
            );
        }
        (DataType::Struct(_), Cell::Location(lat, lon)) => {
            let s = col.as_struct();
            assert_eq!(
                s.column_by_name("latitude")
                    .unwrap()
                    .as_primitive::<Float64Type>()
                    .value(row),
                *lat,
                "{ctx}"
            );
            assert_eq!(
                s.column_by_name("longitude")
                    .unwrap()
                    .as_primitive::<Float64Type>()
                    .value(row),
                *lon,
                "{ctx}"
            );
        }
        (t, c) => panic!("{ctx}: Arrow type {t} does not fit truth {c:?}"),
    }
}

/// An object's rows from every Parquet file of the lake, as one batch sorted by Id.
pub fn sorted_by_id(lake: &std::path::Path, object: &str) -> RecordBatch {
    let batches: Vec<RecordBatch> = read_object(lake, object)
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    assert!(
        !batches.is_empty(),
        "{object}: no rows in {}",
        lake.display()
    );
    let all = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let order =
        arrow::compute::sort_to_indices(all.column_by_name("Id").unwrap(), None, None).unwrap();
    arrow::compute::take_record_batch(&all, &order).unwrap()
}

/// Manifests of an object, parsed.
pub fn manifests(lake: &Path, object: &str) -> Vec<serde_json::Value> {
    let mut out = vec![];
    let root = lake.join("_forcelake/manifests").join(object);
    if let Ok(days) = std::fs::read_dir(&root) {
        for d in days.flatten() {
            // skip the store's staging files (`<name>.json#<n>`) of a write in progress
            for f in std::fs::read_dir(d.path())
                .unwrap()
                .flatten()
                .filter(|f| f.path().extension().map(|e| e == "json").unwrap_or(false))
            {
                out.push(serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap());
            }
        }
    }
    out.sort_by(|a: &serde_json::Value, b| a["chunk_id"].as_str().cmp(&b["chunk_id"].as_str()));
    out
}

/// Chunk ids that some manifest supersedes (their data was replaced by a backfill).
pub fn superseded(manifests: &[serde_json::Value]) -> std::collections::HashSet<String> {
    manifests
        .iter()
        .flat_map(|m| {
            m["supersedes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(str::to_string))
        })
        .collect()
}

/// Every Parquet file is named by exactly one manifest, and every manifest's files exist.
pub fn assert_files_match_manifests(lake: &Path, object: &str) {
    let mut named = std::collections::BTreeSet::new();
    let all = manifests(lake, object);
    let superseded: std::collections::HashSet<String> = superseded(&all);
    for m in all
        .into_iter()
        .filter(|m| !superseded.contains(m["chunk_id"].as_str().unwrap()))
    {
        for f in m["files"].as_array().unwrap() {
            let p = f["path"].as_str().unwrap().to_string();
            assert!(
                lake.join(&p).is_file(),
                "manifest {} names missing file {p}",
                m["chunk_id"]
            );
            assert!(named.insert(p), "a file is named twice");
        }
    }
    let on_disk: std::collections::BTreeSet<String> = all_parquet_files(lake, object)
        .iter()
        .map(|p| p.strip_prefix(lake).unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        on_disk, named,
        "{object}: files on disk differ from files named by manifests (orphans or losses)"
    );
    if let Some(table) = delta_files(lake, object) {
        assert_eq!(
            table, named,
            "{object}: the Delta table's files differ from the live manifests' files"
        );
    }
}

/// The files (relative to the lake) the object's Delta table holds at its newest version, by
/// replaying `_delta_log/` here (the last checkpoint's `add` rows, then the JSON commits after
/// it), independently of forcelake's own Delta code; `None` without a table.
pub fn delta_files(lake: &Path, object: &str) -> Option<std::collections::BTreeSet<String>> {
    let log = lake.join(object).join("_delta_log");
    if !log.is_dir() {
        return None;
    }
    Some(replay_delta_log(object, |name| {
        std::fs::read(log.join(name)).ok()
    }))
}

/// [`delta_files`] over any store: `read(file name in _delta_log/)`.
pub fn replay_delta_log(
    object: &str,
    read: impl Fn(&str) -> Option<Vec<u8>>,
) -> std::collections::BTreeSet<String> {
    let unescape = |p: &str| p.replace("%3D", "=").replace("%3A", ":");
    let mut files = std::collections::BTreeSet::new();
    let mut version: i64 = -1;
    if let Some(text) = read("_last_checkpoint") {
        let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
        version = v["version"].as_i64().unwrap();
        let cp = read(&format!("{version:020}.checkpoint.parquet"))
            .expect("the checkpoint _last_checkpoint names exists");
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(cp))
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            let b = b.unwrap();
            let add = b.column_by_name("add").unwrap().as_struct();
            let paths = add.column_by_name("path").unwrap().as_string::<i32>();
            for i in 0..b.num_rows() {
                if add.is_valid(i) {
                    files.insert(format!("{object}/{}", unescape(paths.value(i))));
                }
            }
        }
    }
    loop {
        version += 1;
        let Some(text) = read(&format!("{version:020}.json")) else {
            break;
        };
        for line in String::from_utf8(text)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let a: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(p) = a["add"]["path"].as_str() {
                files.insert(format!("{object}/{}", unescape(p)));
            }
            if let Some(p) = a["remove"]["path"].as_str() {
                files.remove(&format!("{object}/{}", unescape(p)));
            }
        }
    }
    files
}

/// The live manifests' files (those no committed backfill superseded).
pub fn live_files(manifests: &[serde_json::Value]) -> std::collections::BTreeSet<String> {
    let superseded = superseded(manifests);
    manifests
        .iter()
        .filter(|m| !superseded.contains(m["chunk_id"].as_str().unwrap()))
        .flat_map(manifest_files)
        .collect()
}

/// The paths a manifest names.
pub fn manifest_files(m: &serde_json::Value) -> Vec<String> {
    m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

/// After a kill: the Delta table shows committed data only — every file it holds exists and
/// is named by a committed manifest (a superseded chunk's files may still be there until the
/// next run makes the backfill's Delta commit).
pub fn assert_delta_shows_only_committed(lake: &Path, object: &str) {
    let Some(table) = delta_files(lake, object) else {
        return;
    };
    let named: std::collections::HashSet<String> = manifests(lake, object)
        .iter()
        .flat_map(manifest_files)
        .collect();
    for f in &table {
        assert!(
            lake.join(f).is_file(),
            "{object}: the Delta table holds {f}, which is gone"
        );
        assert!(
            named.contains(f),
            "{object}: the Delta table holds {f}, which no manifest names"
        );
    }
}

/// Starts the binary with `args` and kills it (SIGKILL) while the emulator holds its `k`-th
/// query request (counted from the start of this run) open, `settle` after the hold began —
/// long enough for chunks whose pages were answered to write files and manifests, or to be
/// caught between the two. The run cannot have finished: one of its requests is unanswered,
/// and no request from the `k`-th on is answered, so the kill provably lands mid-run and the
/// run got at most `k − 1` answers. Panics if the run ends before its `k`-th query request.
pub async fn kill_while_held(
    emu: &RunningEmulator,
    p: &Pipeline,
    args: &[&str],
    k: u64,
    settle: std::time::Duration,
) {
    kill_while_held_env(emu, p, args, &[], k, settle).await
}

/// As [`kill_while_held`], for a run with extra environment (`FORCELAKE_NOW`).
pub async fn kill_while_held_env(
    emu: &RunningEmulator,
    p: &Pipeline,
    args: &[&str],
    env: &[(&str, String)],
    k: u64,
    settle: std::time::Duration,
) {
    let before = emu.held_count();
    emu.hold_queries_from(k);
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("--config")
        .arg(&p.config)
        .args(args)
        .env("FORCELAKE_CLIENT_SECRET", emulator::DEMO_CLIENT_SECRET)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("binary starts");
    tokio::select! {
        _ = emu.wait_held(before) => {}
        s = child.wait() => panic!("{args:?} ended ({s:?}) before its query request {k}: there was no run left to kill"),
    }
    tokio::time::sleep(settle).await;
    assert!(
        matches!(child.try_wait(), Ok(None)),
        "{args:?} ended while one of its requests was held"
    );
    let _ = child.start_kill();
    let _ = child.wait().await;
    emu.release_held();
}

/// Every file under `dir`.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
