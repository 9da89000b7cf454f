//! Preparing objects: describe → schema, validated against the configuration, the org and the
//! lake (the cursor a destination was written with), before anything is written.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};

use crate::config::ObjectConfig;
use crate::context::{Budget, Context, SyncError};
use crate::salesforce::{ident, soql, SfError};
use crate::schema::{Describes, ObjectSchema};
use crate::sink::layout;
use crate::sink::manifest;

/// An object resolved against the org's describe.
#[derive(Debug, Clone)]
pub struct PreparedObject {
    pub config: ObjectConfig,
    pub schema: Arc<ObjectSchema>,
    /// Schema changes since the last recorded schema, and a nillable cursor.
    pub warnings: Vec<String>,
    /// Records whose cursor is null (counted only when describe marks the cursor nillable).
    pub null_cursor: Option<u64>,
    /// describe's `replicateable`: getDeleted answers for the object.
    pub replicateable: bool,
}

/// Authenticates, describes every configured object, validates fields and cursor (against
/// describe and against the cursor the lake was written with), counts records with a null
/// cursor, and — only once every object is valid, and only when `write_schemas` — records
/// each schema under `_forcelake/schemas/`. Nothing is written before the whole
/// configuration has been checked. Any object's problem is an error here (see
/// [`prepare_each`] for runs that go on without it).
pub async fn prepare_objects(
    ctx: &Context,
    write_schemas: bool,
) -> Result<Vec<PreparedObject>, SyncError> {
    let (objects, failed) = prepare_each(ctx, write_schemas, false).await?;
    match failed.into_iter().next() {
        Some(f) => Err(f.error),
        None => Ok(objects),
    }
}

/// Adds the objects a run left out to its summary (the run exits 1).
pub fn add_failed(summary: &mut crate::run::RunSummary, failed: Vec<FailedObject>) {
    if failed.is_empty() {
        return;
    }
    summary
        .objects
        .extend(failed.iter().map(FailedObject::summary));
    summary.status = "failed".into();
}

/// An object a run leaves out: what the lake holds of it stays, the others sync.
#[derive(Debug)]
pub struct FailedObject {
    pub object: String,
    pub error: SyncError,
}

impl FailedObject {
    /// Its line in the run's summary (status `failed`: the run exits 1).
    pub fn summary(&self) -> crate::run::ObjectSummary {
        crate::run::ObjectSummary {
            object: self.object.clone(),
            status: "failed".into(),
            chunks_failed: 1,
            errors: vec![self.error.to_string()],
            ..Default::default()
        }
    }
}

/// As [`prepare_objects`]; with `per_object`, an object the lake already holds that can no
/// longer be synced as configured — a configured field gone from describe (deleted, or hidden
/// from the Run-As user by field-level security), an object that cannot be read, a column its
/// Delta table cannot take — is returned as failed while the others go on. A problem of an
/// object the lake does not hold yet (a typo) stays an error of the whole run.
pub async fn prepare_each(
    ctx: &Context,
    write_schemas: bool,
    per_object: bool,
) -> Result<(Vec<PreparedObject>, Vec<FailedObject>), SyncError> {
    ctx.client.authenticate().await?;
    // another org's lake is refused first; the org is recorded once everything checks out
    check_org(ctx, false).await?;
    let mut out = Vec::new();
    let mut failed_objects = Vec::new();
    let mut global = None;
    // Every describe read in this run (configured objects and the parents their relationship
    // paths reach): each object is described once.
    let mut describes = Describes::default();
    // The configured objects are described at once (their round trips overlap, up to
    // `sync.concurrency`); each is then checked in the configured order (a parent that is
    // also configured is not described twice).
    let fetched: Vec<Result<_, SfError>> = {
        use futures::StreamExt;
        futures::stream::iter(
            ctx.config
                .objects
                .iter()
                .map(|o| ctx.client.describe(&o.name)),
        )
        .buffered(ctx.config.sync.concurrency.max(1))
        .collect()
        .await
    };
    let mut failed = Vec::new();
    for r in fetched {
        match r {
            Ok(d) => {
                describes.insert(Arc::new(d));
                failed.push(None);
            }
            Err(e) => failed.push(Some(e)),
        }
    }
    let in_lake = if per_object {
        manifest::list_objects(ctx.store.as_ref()).await?
    } else {
        vec![]
    };
    for (o, fetch_error) in ctx.config.objects.iter().zip(failed) {
        match prepare_one(ctx, o, fetch_error, &mut describes, &mut global).await {
            Ok(p) => out.push(p),
            Err(e) if in_lake.contains(&o.name) => match gone(ctx, &o.name, e).await {
                Ok(error) => {
                    tracing::error!(object = %o.name, "{error}; the other objects go on");
                    failed_objects.push(FailedObject {
                        object: o.name.clone(),
                        error,
                    });
                }
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
    if write_schemas {
        check_org(ctx, true).await?;
        // A writing run starts from a table level with the manifests (and refuses a retyped
        // column before anything is fetched); a decimal column is written in the type its
        // table holds when that type holds the new one's values.
        let mut kept = Vec::with_capacity(out.len());
        for mut o in out {
            match settle_object(ctx, &mut o).await {
                Ok(()) => kept.push(o),
                Err(e) if per_object && e.exit_code() == 2 => {
                    tracing::error!(object = %o.schema.object, "{e}; the other objects go on");
                    failed_objects.push(FailedObject {
                        object: o.schema.object.clone(),
                        error: e,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        out = kept;
        for o in &mut out {
            let changes = schema_changes(ctx.store.as_ref(), &o.schema).await;
            for w in &changes {
                tracing::warn!(object = %o.schema.object, "{w}");
            }
            o.warnings.extend(changes);
            write_schema_record(ctx.store.as_ref(), &o.schema).await?;
        }
    }
    Ok((out, failed_objects))
}

/// The object's Delta table: a decimal column whose precision or scale changed in Salesforce
/// (a currency widened from (16,2) to (18,2), say) is written in the type its table column has
/// — the Delta kernel cannot change a column's type — so the object keeps syncing: every value
/// that fits is exact, and one that does not is an error naming its record, field and value
/// (never rounded). A warning says which. Then the table is brought level with the manifests.
async fn settle_object(ctx: &Context, o: &mut PreparedObject) -> Result<(), SyncError> {
    if let Some(delta) = ctx.delta.as_deref() {
        let table = delta
            .schema(&o.schema.object)
            .await
            .map_err(crate::sink::SinkError::from)?;
        if let Some(table) = &table {
            let diffs = crate::sink::delta::decimal_differences(table, &o.schema.arrow);
            let keep: Vec<(String, u8, i8)> = diffs
                .iter()
                .map(|(n, p, s, _)| (n.clone(), *p, *s))
                .collect();
            for (n, p, s, holds) in &diffs {
                let now = o
                    .schema
                    .arrow
                    .field_with_name(n)
                    .map(|f| f.data_type().to_string())
                    .unwrap_or_default();
                let w = if *holds {
                    format!("{}.{n} is {now} in Salesforce now; its Delta table column Decimal128({p}, {s}) holds every such value: written as Decimal128({p}, {s})", o.schema.object)
                } else {
                    format!("{}.{n} is {now} in Salesforce now (widened); its Delta table column stays Decimal128({p}, {s}) (a Delta table's column type cannot be changed by this writer): values that fit it are written exactly and the object keeps syncing; a value with more digits than it holds fails its window, naming the record — then write the object to a new destination.url to take the wider type", o.schema.object)
                };
                tracing::warn!(object = %o.schema.object, "{w}");
                o.warnings.push(w);
            }
            if !keep.is_empty() {
                o.schema = Arc::new(o.schema.with_decimals(&keep));
            }
        }
    }
    crate::commit::delta::settle(ctx, &o.schema.object, &o.schema.arrow).await?;
    Ok(())
}

/// The error of an object the lake holds that can no longer be prepared, told as such.
async fn gone(ctx: &Context, object: &str, e: SyncError) -> Result<SyncError, SyncError> {
    use crate::schema::SchemaError;
    Ok(match e {
        SyncError::Schema(SchemaError::UnknownField {
            ref object,
            ref field,
            ..
        }) => {
            if !lake_columns(ctx.store.as_ref(), object)
                .await
                .contains(field)
            {
                return Err(e); // a typo, with its suggestions
            }
            SyncError::FieldGone {
                object: object.clone(),
                field: field.clone(),
            }
        }
        SyncError::UnknownObject { .. } | SyncError::NotQueryable { .. } => SyncError::ObjectGone {
            object: object.to_string(),
            message: e.to_string(),
        },
        // other problems (a network error, an auth error) stop the run as before
        other => return Err(other),
    })
}

/// The column names every schema the lake recorded for the object has had.
async fn lake_columns(store: &dyn ObjectStore, object: &str) -> std::collections::HashSet<String> {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let prefix = layout::schemas_prefix(object);
    let mut out = std::collections::HashSet::new();
    let Ok(metas) = store.list(Some(&prefix)).try_collect::<Vec<_>>().await else {
        return out;
    };
    for m in metas {
        let Ok(r) = store.get(&m.location).await else {
            continue;
        };
        let Ok(bytes) = r.bytes().await else { continue };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        for f in v["fields"].as_array().into_iter().flatten() {
            if let Some(n) = f["name"].as_str() {
                out.insert(n.to_string());
            }
        }
    }
    out
}

/// Resolves one configured object against describe and the lake.
async fn prepare_one(
    ctx: &Context,
    o: &ObjectConfig,
    fetch_error: Option<SfError>,
    describes: &mut Describes,
    global: &mut Option<crate::salesforce::describe::GlobalDescribe>,
) -> Result<PreparedObject, SyncError> {
    let describe = match (describes.get(&o.name), fetch_error) {
        (Some(d), _) => Ok(d),
        (None, Some(e)) => Err(e),
        (None, None) => ctx.client.describe(&o.name).await.map(Arc::new),
    };
    let describe = match describe {
        Ok(d) => d,
        Err(SfError::Api { code, .. }) if code == "NOT_FOUND" || code == "INVALID_TYPE" => {
            if global.is_none() {
                *global = Some(ctx.client.describe_global().await?);
            }
            let names = global
                .as_ref()
                .map(|g| {
                    g.sobjects
                        .iter()
                        .filter(|s| s.queryable)
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            return Err(SyncError::UnknownObject {
                name: o.name.clone(),
                suggestions: ident::closest(&o.name, names, 3),
            });
        }
        Err(e) => return Err(e.into()),
    };
    if !describe.queryable {
        return Err(SyncError::NotQueryable {
            name: o.name.clone(),
        });
    }
    describes.insert(describe.clone());
    while let Some((parent, path)) =
        crate::schema::path::missing_describe(&describe, o.fields.as_deref(), describes)?
    {
        let d = match ctx.client.describe(&parent).await {
            Ok(d) => d,
            Err(SfError::Api { code, message, .. })
                if matches!(code.as_str(), "NOT_FOUND" | "INVALID_TYPE" | "INSUFFICIENT_ACCESS") =>
            {
                return Err(crate::schema::SchemaError::BadPath {
                    object: o.name.clone(),
                    path: path.to_string(),
                    message: format!("its parent object {parent} cannot be described ({code}: {message}): the Run-As user must be able to see {parent}, or leave the path out"),
                }
                .into())
            }
            Err(e) => return Err(e.into()),
        };
        describes.insert(Arc::new(d));
    }
    let schema = ObjectSchema::resolve(&describe, o.fields.as_deref(), &o.cursor_field, describes)?;
    if ctx.config.sync.api == crate::config::Api::Bulk {
        if let Some(why) = schema.bulk_obstacle() {
            return Err(SyncError::BulkRefused {
                object: schema.object.clone(),
                message: why,
            });
        }
    }
    check_lake_cursor(ctx, &schema).await?;
    let mut warnings = Vec::new();
    let mut null_cursor = None;
    if schema.cursor_nillable {
        let n = ctx
            .client
            .count(
                &soql::null_cursor_count_query(&schema.object, &schema.cursor_field),
                ctx.config.sync.include_deleted,
                &format!(
                    "count of {} records without {}",
                    schema.object, schema.cursor_field
                ),
            )
            .await?;
        null_cursor = Some(n);
        let better = crate::schema::cursor_candidates(&describe, "LastModifiedDate");
        let w = format!(
            "the cursor {}.{} can be null: {n} records have no {} — they belong to no day and are never synced{}",
            schema.object,
            schema.cursor_field,
            schema.cursor_field,
            if better.is_empty() {
                String::new()
            } else {
                format!(
                    "; to sync every record use {} (cursor_field = \"{}\" in the [[objects]] table of {})",
                    better.join(", "),
                    better[0],
                    schema.object
                )
            }
        );
        tracing::warn!(object = %schema.object, records = n, "{w}");
        warnings.push(w);
    }
    Ok(PreparedObject {
        config: o.clone(),
        schema: Arc::new(schema),
        warnings,
        null_cursor,
        replicateable: describe.replicateable,
    })
}

/// One lake holds one org: the first writing run records its org (from the token's identity
/// URL) in `_forcelake/org.json`; a run whose token names another org is refused before
/// anything is written. A token without an identity URL checks nothing.
async fn check_org(ctx: &Context, write: bool) -> Result<(), SyncError> {
    use object_store::ObjectStoreExt;
    let Some(org) = ctx.client.org_id() else {
        return Ok(());
    };
    let path = layout::org_record_path();
    for _ in 0..2 {
        match ctx.store.get(&path).await {
            Ok(r) => {
                let bytes = r
                    .bytes()
                    .await
                    .map_err(|e| crate::sink::SinkError::store(format!("reading {path}"), e))?;
                let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                    crate::sink::SinkError::Manifest {
                        path: path.to_string(),
                        message: e.to_string(),
                    }
                })?;
                let lake = v["org_id"].as_str().unwrap_or_default();
                // 15- and 18-character forms of one id share their first 15 characters
                if lake.get(..15) == org.get(..15) {
                    return Ok(());
                }
                return Err(SyncError::OtherOrg {
                    destination: ctx.config.destination.url.clone(),
                    lake: lake.to_string(),
                    org,
                });
            }
            Err(object_store::Error::NotFound { .. }) if !write => return Ok(()),
            Err(object_store::Error::NotFound { .. }) => {
                let record = serde_json::json!({
                    "org_id": org,
                    "instance_url": ctx.config.salesforce.instance_url.as_str(),
                    "created_at": crate::timefmt::rfc3339(Utc::now()),
                });
                let body = crate::sink::json_line(&record)
                    .map_err(|e| SyncError::Internal(e.to_string()))?;
                let opts = PutOptions {
                    mode: PutMode::Create,
                    ..Default::default()
                };
                match ctx
                    .store
                    .put_opts(&path, PutPayload::from(body), opts)
                    .await
                {
                    Ok(_) => return Ok(()),
                    // another run recorded it first: compare with that
                    Err(object_store::Error::AlreadyExists { .. }) => continue,
                    Err(e) => {
                        return Err(
                            crate::sink::SinkError::store(format!("writing {path}"), e).into()
                        )
                    }
                }
            }
            Err(e) => {
                return Err(crate::sink::SinkError::store(format!("reading {path}"), e).into())
            }
        }
    }
    Ok(())
}

/// The cursor of an object is fixed once its first manifest exists (its day partitions follow
/// that cursor): another configured cursor is refused, naming both.
async fn check_lake_cursor(ctx: &Context, schema: &ObjectSchema) -> Result<(), SyncError> {
    let committed = manifest::list_chunks(ctx.store.as_ref(), &schema.object).await?;
    let Some(first) = committed.first() else {
        return Ok(());
    };
    let m = manifest::load(
        ctx.store.as_ref(),
        &layout::manifest_path(&schema.object, first),
    )
    .await?;
    if m.cursor_field.eq_ignore_ascii_case(&schema.cursor_field) {
        return Ok(());
    }
    Err(SyncError::CursorChanged {
        object: schema.object.clone(),
        lake: m.cursor_field,
        configured: schema.cursor_field.clone(),
        destination: ctx.config.destination.url.clone(),
    })
}

/// Compares the schema with the newest one recorded for the object: new, dropped and retyped
/// columns. Files keep the schema they were written with; readers merge by name.
async fn schema_changes(store: &dyn ObjectStore, schema: &ObjectSchema) -> Vec<String> {
    use futures::TryStreamExt;
    let prefix = layout::schemas_prefix(&schema.object);
    let Ok(metas) = store.list(Some(&prefix)).try_collect::<Vec<_>>().await else {
        return vec![];
    };
    let mut newest: Option<(String, serde_json::Value)> = None;
    for m in metas {
        if m.location.filename() == Some(&format!("{}.json", schema.hash)) {
            return vec![]; // this exact schema was used before
        }
        let Ok(r) = object_store::ObjectStoreExt::get(store, &m.location).await else {
            continue;
        };
        let Ok(bytes) = r.bytes().await else { continue };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        let at = v["created_at"].as_str().unwrap_or("").to_string();
        if newest.as_ref().map(|(t, _)| at > *t).unwrap_or(true) {
            newest = Some((at, v));
        }
    }
    let Some((_, old)) = newest else {
        return vec![];
    };
    let old_fields: Vec<(String, String)> = old["fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    (
                        f["name"].as_str().unwrap_or("").to_string(),
                        f["arrow_type"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut w = Vec::new();
    for f in schema.arrow.fields() {
        match old_fields.iter().find(|(n, _)| n == f.name()) {
            None => w.push(format!("{}.{} is a new column: files written from now on have it, older files do not (read with DuckDB union_by_name = true or Spark mergeSchema)", schema.object, f.name())),
            Some((_, t))
                if t.starts_with("Time32")
                    && f.data_type() == &arrow::datatypes::DataType::Utf8
                    && f.metadata().get("salesforce.type").map(String::as_str) == Some("time") =>
            {
                w.push(format!(
                    "{}.{} (a Salesforce time) is now written as text HH:MM:SS.sss instead of Parquet TIME, which Spark 3.5 cannot read at all, Spark 4 not at millisecond precision, and Delta not at all: files written before keep TIME; to read old and new files together cast both to text or TIME (DuckDB: read_parquet(..., union_by_name = true) and CAST({} AS TIME)), or backfill the object's days to rewrite them",
                    schema.object, f.name(), f.name()
                ))
            }
            Some((_, t)) if *t != f.data_type().to_string() => w.push(format!(
                "{}.{} changed type from {} to {}: older files keep {}, new files use {}; a reader merging both must cast (DuckDB union_by_name = true)",
                schema.object, f.name(), t, f.data_type(), t, f.data_type()
            )),
            _ => {}
        }
    }
    for (n, _) in &old_fields {
        if schema.arrow.field_with_name(n).is_err() {
            w.push(format!(
                "{}.{} is no longer written (removed from describe or from the field list)",
                schema.object, n
            ));
        }
    }
    w
}

async fn write_schema_record(
    store: &dyn ObjectStore,
    schema: &ObjectSchema,
) -> Result<(), SyncError> {
    let path = layout::schema_path(&schema.object, &schema.hash);
    let mut record = schema.to_json();
    record["created_at"] = serde_json::Value::String(crate::timefmt::rfc3339(Utc::now()));
    let body = crate::sink::json_line(&record).map_err(|e| SyncError::Internal(e.to_string()))?;
    match store
        .put_opts(
            &path,
            PutPayload::from(body),
            PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            },
        )
        .await
    {
        Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(crate::sink::SinkError::store(format!("writing {path}"), e).into()),
    }
}

/// The earliest cursor value of an object (`None` when it has no records).
pub async fn earliest_cursor(
    ctx: &Context,
    obj: &ObjectSchema,
    budget: &Budget,
) -> Result<Option<DateTime<Utc>>, SyncError> {
    if !budget.try_take() {
        return Ok(None);
    }
    let q = soql::earliest_query(&obj.object, &obj.cursor_field);
    let body = ctx
        .client
        .query_first(
            &q,
            ctx.config.sync.include_deleted,
            &format!("earliest {} of {}", obj.cursor_field, obj.object),
        )
        .await?;
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        SyncError::Internal(format!("earliest-cursor query for {}: {e}", obj.object))
    })?;
    let Some(text) = v
        .pointer("/records/0")
        .and_then(|r| r.get(&obj.cursor_field))
        .and_then(|c| c.as_str())
    else {
        return Ok(None);
    };
    if let Some(ms) = crate::decode::parse_datetime_ms(text) {
        return Ok(DateTime::from_timestamp_millis(ms));
    }
    if let Some(days) = crate::decode::parse_date_days(text) {
        return Ok(DateTime::from_timestamp(days as i64 * 86_400, 0));
    }
    Err(SyncError::Internal(format!(
        "{}: cannot read the earliest {} value {text:?}",
        obj.object, obj.cursor_field
    )))
}
