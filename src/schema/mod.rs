//! Describe metadata → the columns forcelake queries and the Arrow schema it writes (pure).
//!
//! The type table is SPEC §3. Every column is nullable except `Id`, because field-level
//! security can hide a value whatever describe's `nillable` says.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use sha2::{Digest, Sha256};

use crate::salesforce::describe::{FieldDescribe, ObjectDescribe};
use crate::salesforce::ident;

pub mod path;

pub use path::Describes;

/// How a column's JSON values are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Text (id, reference, string, picklist, email, …).
    Utf8,
    /// Any JSON value kept as JSON text (anyType, json, complexvalue).
    JsonText,
    Bool,
    Int32,
    Int64,
    Float64,
    /// Exact decimal with precision and scale from describe.
    Decimal {
        precision: u8,
        scale: i8,
    },
    Date,
    Timestamp,
    /// Written as text `HH:MM:SS.sss` (the field metadata says `salesforce.type = time`).
    Time,
    /// `A;B;C` → `["A","B","C"]`.
    MultiPicklist,
    Address,
    Location,
    /// A child-to-parent relationship (`Owner`): a struct of the parent's fields
    /// ([`Column::parent`]).
    Relationship,
}

/// One queried column.
#[derive(Debug, Clone)]
pub struct Column {
    /// Canonical API name from describe (the JSON key Salesforce sends).
    pub name: String,
    pub sf_type: String,
    pub kind: ColumnKind,
    pub nullable: bool,
    pub label: String,
    pub calculated: bool,
    /// A compound (address, location): its component fields, as (struct key index, field
    /// name) — what Bulk API 2.0 selects instead of the compound, which it cannot.
    pub components: Vec<(usize, String)>,
    /// A relationship column: the lookup it follows and the parent fields selected through it.
    pub parent: Option<Box<Parent>>,
}

/// The parent side of a relationship column.
#[derive(Debug, Clone)]
pub struct Parent {
    /// The lookup field (`OwnerId`).
    pub lookup: String,
    /// The objects it can point to (describe's `referenceTo`).
    pub reference_to: Vec<String>,
    /// Several possible parents: SOQL reaches them as the `Name` object.
    pub polymorphic: bool,
    /// The parent's columns (nested relationships included), in path order.
    pub fields: Vec<Column>,
}

impl Column {
    /// The names SOQL selects for this column: its own, or for a relationship every path
    /// through it (`Owner.Name`, `Owner.Manager.Email`).
    pub fn select_paths(&self) -> Vec<String> {
        match &self.parent {
            None => vec![self.name.clone()],
            Some(p) => p
                .fields
                .iter()
                .flat_map(|c| c.select_paths())
                .map(|s| format!("{}.{s}", self.name))
                .collect(),
        }
    }

    /// The names a Bulk API 2.0 job selects for this column: compounds as their components,
    /// relationships as their paths plus the parent's Id (which tells an empty lookup from a
    /// parent whose selected fields are all null: a CSV row shows both as empty fields).
    pub fn bulk_paths(&self) -> Vec<String> {
        match &self.parent {
            None if self.components.is_empty() => vec![self.name.clone()],
            None => self.components.iter().map(|(_, n)| n.clone()).collect(),
            Some(p) => {
                let mut out: Vec<String> = Vec::new();
                for c in &p.fields {
                    for s in c.bulk_paths() {
                        push_unique(&mut out, format!("{}.{s}", self.name));
                    }
                }
                push_unique(&mut out, format!("{}.Id", self.name));
                out
            }
        }
    }
}

fn push_unique(out: &mut Vec<String>, name: String) {
    if !out.iter().any(|o| o.eq_ignore_ascii_case(&name)) {
        out.push(name);
    }
}

/// The plan for one object: columns to query, in order, and which of them are written.
#[derive(Debug, Clone)]
pub struct ObjectSchema {
    pub object: String,
    /// Columns in SELECT order.
    pub columns: Vec<Column>,
    /// How many leading columns are written (the cursor may be appended to the query only).
    pub written: usize,
    pub cursor_field: String,
    /// The cursor is a `date` field: queried with date literals, windows are whole days.
    pub cursor_is_date: bool,
    /// describe marks the cursor `nillable`: records with no value belong to no day.
    pub cursor_nillable: bool,
    /// The Arrow schema of written columns.
    pub arrow: SchemaRef,
    /// Short, stable hash of `arrow`.
    pub hash: String,
}

/// Problems between the configuration and the org's describe.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    #[error("object {object} has no field {field:?}{}", suggest(.suggestions))]
    UnknownField {
        object: String,
        field: String,
        suggestions: Vec<String>,
    },
    #[error("cursor field {object}.{field} is a {found} field; the cursor must be a datetime (or date) field such as LastModifiedDate or SystemModstamp — set sync.cursor_field or the object's cursor_field")]
    BadCursor {
        object: String,
        field: String,
        found: String,
    },
    #[error("cursor field {object}.{field} does not exist{}", cursor_fix(.object, .suggestions))]
    MissingCursor {
        object: String,
        field: String,
        suggestions: Vec<String>,
    },
    #[error("{object} field {path:?}: {message}")]
    BadPath {
        object: String,
        path: String,
        message: String,
    },
    #[error("object {object} has no field that can be written (every field is compound or binary); list fields explicitly")]
    NoColumns { object: String },
}

/// The way out of a missing cursor: the object's own cursor-capable fields, as the line to add.
fn cursor_fix(object: &str, s: &[String]) -> String {
    match s.first() {
        None => format!("; {object} has no datetime or date field, so it cannot be synced by day"),
        Some(best) => format!(
            "; {object} can use {}: add cursor_field = \"{best}\" to its [[objects]] table (name = \"{object}\")",
            s.join(" or ")
        ),
    }
}

/// Cursor-capable fields of an object, best first: the modification stamps Salesforce keeps
/// on most objects, then CreatedDate, then the closest other datetime or date names.
pub fn cursor_candidates(describe: &ObjectDescribe, wanted: &str) -> Vec<String> {
    let capable: Vec<&FieldDescribe> = describe
        .fields
        .iter()
        .filter(|f| matches!(f.field_type.as_str(), "datetime" | "date"))
        .collect();
    let mut out: Vec<String> = ["SystemModstamp", "LastModifiedDate", "CreatedDate"]
        .iter()
        .filter_map(|n| capable.iter().find(|f| f.name == *n && !f.nillable))
        .map(|f| f.name.clone())
        .collect();
    if out.is_empty() {
        out = ident::closest(wanted, capable.iter().map(|f| f.name.as_str()), 3);
    }
    out
}

fn suggest(s: &[String]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", s.join(", "))
    }
}

/// The decoding kind for a describe type.
pub fn kind_for(f: &FieldDescribe) -> ColumnKind {
    match f.field_type.as_str() {
        "boolean" => ColumnKind::Bool,
        "int" => ColumnKind::Int32,
        "long" => ColumnKind::Int64,
        "double" | "percent" => ColumnKind::Float64,
        "currency" => {
            let (p, s) = decimal_shape(f.precision, f.scale);
            ColumnKind::Decimal {
                precision: p,
                scale: s,
            }
        }
        "date" => ColumnKind::Date,
        "datetime" => ColumnKind::Timestamp,
        "time" => ColumnKind::Time,
        "multipicklist" => ColumnKind::MultiPicklist,
        "address" => ColumnKind::Address,
        "location" => ColumnKind::Location,
        "anyType" | "json" | "complexvalue" => ColumnKind::JsonText,
        _ => ColumnKind::Utf8,
    }
}

/// Decimal precision/scale for Arrow: describe's values, clamped to what Decimal128 holds.
pub fn decimal_shape(precision: u32, scale: i32) -> (u8, i8) {
    let scale = scale.clamp(0, 38);
    let precision = if precision == 0 {
        18
    } else {
        precision.min(38)
    };
    let precision = precision.max(scale as u32).max(1);
    (precision as u8, scale as i8)
}

/// The Arrow type of a column kind.
pub fn arrow_type(kind: ColumnKind) -> DataType {
    match kind {
        ColumnKind::Utf8 | ColumnKind::JsonText => DataType::Utf8,
        ColumnKind::Bool => DataType::Boolean,
        ColumnKind::Int32 => DataType::Int32,
        ColumnKind::Int64 => DataType::Int64,
        ColumnKind::Float64 => DataType::Float64,
        ColumnKind::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
        ColumnKind::Date => DataType::Date32,
        ColumnKind::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        // text: no TIME for Spark 3.5, no TIME(MILLIS) for Spark 4, no time type in Delta
        ColumnKind::Time => DataType::Utf8,
        ColumnKind::MultiPicklist => {
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
        }
        ColumnKind::Address => DataType::Struct(address_fields()),
        ColumnKind::Location => DataType::Struct(location_fields()),
        // its fields come from the parent: see `column_type`
        ColumnKind::Relationship => DataType::Struct(Fields::empty()),
    }
}

/// The Arrow type of a column (a relationship's struct holds its parent's fields).
pub fn column_type(c: &Column) -> DataType {
    match &c.parent {
        Some(p) => DataType::Struct(p.fields.iter().map(arrow_field).collect()),
        None => arrow_type(c.kind),
    }
}

/// Keys of an address value, with their kinds, in struct order.
pub const ADDRESS_KEYS: [(&str, ColumnKind); 10] = [
    ("street", ColumnKind::Utf8),
    ("city", ColumnKind::Utf8),
    ("state", ColumnKind::Utf8),
    ("stateCode", ColumnKind::Utf8),
    ("postalCode", ColumnKind::Utf8),
    ("country", ColumnKind::Utf8),
    ("countryCode", ColumnKind::Utf8),
    ("latitude", ColumnKind::Float64),
    ("longitude", ColumnKind::Float64),
    ("geocodeAccuracy", ColumnKind::Utf8),
];

/// Keys of a location value.
pub const LOCATION_KEYS: [(&str, ColumnKind); 2] = [
    ("latitude", ColumnKind::Float64),
    ("longitude", ColumnKind::Float64),
];

fn address_fields() -> Fields {
    ADDRESS_KEYS
        .iter()
        .map(|(k, kind)| Field::new(*k, arrow_type(*kind), true))
        .collect()
}

fn location_fields() -> Fields {
    LOCATION_KEYS
        .iter()
        .map(|(k, kind)| Field::new(*k, arrow_type(*kind), true))
        .collect()
}

pub fn column(f: &FieldDescribe) -> Column {
    Column {
        name: f.name.clone(),
        sf_type: f.field_type.clone(),
        kind: kind_for(f),
        nullable: f.name != "Id",
        label: f.label.clone(),
        calculated: f.calculated,
        components: Vec::new(),
        parent: None,
    }
}

/// The struct key a compound's component stands for (`BillingStateCode` → `stateCode`,
/// `HQ_Location__Latitude__s` → `latitude`): the longest key its name ends with.
pub fn component_key(keys: &[(&str, ColumnKind)], component: &str) -> Option<usize> {
    let name = component.trim_end_matches("__s").to_ascii_lowercase();
    keys.iter()
        .enumerate()
        .filter(|(_, (k, _))| name.ends_with(&k.to_ascii_lowercase()))
        .max_by_key(|(_, (k, _))| k.len())
        .map(|(i, _)| i)
}

/// Fills in the components of compound columns from describe's `compoundFieldName`.
pub(crate) fn attach_components(describe: &ObjectDescribe, columns: &mut [Column]) {
    for c in columns.iter_mut() {
        let keys: &[(&str, ColumnKind)] = match c.kind {
            ColumnKind::Address => &ADDRESS_KEYS,
            ColumnKind::Location => &LOCATION_KEYS,
            _ => continue,
        };
        c.components = describe
            .fields
            .iter()
            .filter(|f| f.compound_field_name.as_deref() == Some(c.name.as_str()))
            .filter_map(|f| component_key(keys, &f.name).map(|k| (k, f.name.clone())))
            .collect();
    }
}

/// True for fields in the default (standard) set: `custom: false`, not compound, not base64.
pub fn is_default_field(f: &FieldDescribe) -> bool {
    !f.custom && !matches!(f.field_type.as_str(), "address" | "location" | "base64")
}

impl ObjectSchema {
    /// Resolves the configured field list (or the standard fields) and the cursor against describe.
    ///
    /// Relationship paths (`Owner.Name`) are resolved against the parents' describes in
    /// `parents` ([`path::missing_describe`] says which are still needed).
    pub fn resolve(
        describe: &ObjectDescribe,
        fields: Option<&[String]>,
        cursor: &str,
        parents: &Describes,
    ) -> Result<Self, SchemaError> {
        let object = describe.name.clone();
        let mut columns: Vec<Column> = match fields {
            None => describe
                .fields
                .iter()
                .filter(|f| is_default_field(f))
                .map(column)
                .collect(),
            Some(list) => {
                let mut out = Vec::with_capacity(list.len());
                for name in list {
                    if path::is_path(name) {
                        path::add_path(describe, name, parents, &mut out)?;
                        continue;
                    }
                    match describe.field(name) {
                        Some(f) => out.push(column(f)),
                        None => {
                            return Err(SchemaError::UnknownField {
                                object,
                                field: name.clone(),
                                suggestions: ident::closest(
                                    name,
                                    describe.fields.iter().map(|f| f.name.as_str()),
                                    3,
                                ),
                            })
                        }
                    }
                }
                out
            }
        };
        if columns.is_empty() {
            return Err(SchemaError::NoColumns { object });
        }
        attach_components(describe, &mut columns);
        let cursor_desc = describe
            .field(cursor)
            .ok_or_else(|| SchemaError::MissingCursor {
                object: object.clone(),
                field: cursor.to_string(),
                suggestions: cursor_candidates(describe, cursor),
            })?;
        if !matches!(cursor_desc.field_type.as_str(), "datetime" | "date") {
            return Err(SchemaError::BadCursor {
                object,
                field: cursor_desc.name.clone(),
                found: cursor_desc.field_type.clone(),
            });
        }
        let written = columns.len();
        if !columns.iter().any(|c| c.name == cursor_desc.name) {
            columns.push(column(cursor_desc));
        }
        let arrow = Arc::new(Schema::new(
            columns[..written]
                .iter()
                .map(arrow_field)
                .collect::<Vec<_>>(),
        ));
        let hash = schema_hash(&arrow);
        Ok(Self {
            object,
            columns,
            written,
            cursor_field: cursor_desc.name.clone(),
            cursor_is_date: cursor_desc.field_type == "date",
            cursor_nillable: cursor_desc.nillable,
            arrow,
            hash,
        })
    }

    /// This schema with the decimal columns named in `types` written as the given
    /// (precision, scale) instead of describe's (the type a lake's table holds: values are
    /// decoded into it exactly, and one that does not fit is an error naming its record).
    pub fn with_decimals(&self, types: &[(String, u8, i8)]) -> Self {
        let mut s = self.clone();
        for c in s.columns.iter_mut() {
            if let Some((_, p, sc)) = types.iter().find(|(n, _, _)| *n == c.name) {
                if matches!(c.kind, ColumnKind::Decimal { .. }) {
                    c.kind = ColumnKind::Decimal {
                        precision: *p,
                        scale: *sc,
                    };
                }
            }
        }
        s.arrow = Arc::new(Schema::new(
            s.columns[..s.written]
                .iter()
                .map(arrow_field)
                .collect::<Vec<_>>(),
        ));
        s.hash = schema_hash(&s.arrow);
        s
    }

    /// Names to SELECT, in order.
    pub fn select_list(&self) -> Vec<String> {
        self.columns.iter().flat_map(Column::select_paths).collect()
    }

    /// Names a Bulk API 2.0 job selects: compounds replaced by their components (a component
    /// also selected on its own is selected once).
    pub fn bulk_select_list(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            for n in c.bulk_paths() {
                push_unique(&mut out, n);
            }
        }
        out
    }

    /// Why Bulk API 2.0 cannot fetch this object's columns, if it cannot: a base64 field (Bulk
    /// cannot select binary data) or a compound whose components describe does not list.
    pub fn bulk_obstacle(&self) -> Option<String> {
        fn find(object: &str, prefix: &str, cols: &[Column]) -> Option<String> {
            for c in cols {
                if c.sf_type == "base64" {
                    return Some(format!(
                        "field {object}.{prefix}{} is base64, which Bulk API 2.0 cannot select",
                        c.name
                    ));
                }
                if matches!(c.kind, ColumnKind::Address | ColumnKind::Location)
                    && c.components.is_empty()
                {
                    return Some(format!(
                        "compound field {object}.{prefix}{} has no component fields in describe, and Bulk API 2.0 cannot select a compound",
                        c.name
                    ));
                }
                if let Some(p) = &c.parent {
                    if let Some(why) = find(object, &format!("{prefix}{}.", c.name), &p.fields) {
                        return Some(why);
                    }
                }
            }
            None
        }
        find(&self.object, "", &self.columns)
    }

    /// The schema record written to `_forcelake/schemas/<Object>/<hash>.json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "object": self.object,
            "schema_hash": self.hash,
            "fields": self.columns[..self.written].iter().zip(self.arrow.fields()).map(|(c, f)| serde_json::json!({
                "name": f.name(),
                "arrow_type": f.data_type().to_string(),
                "nullable": f.is_nullable(),
                "salesforce_type": c.sf_type,
                "label": c.label,
                "calculated": c.calculated,
                "reference_to": c.parent.as_ref().map(|p| p.reference_to.clone()),
            })).collect::<Vec<_>>(),
        })
    }
}

/// The Arrow field for a column, with Salesforce metadata.
pub fn arrow_field(c: &Column) -> Field {
    let mut md = std::collections::HashMap::from([
        ("salesforce.type".to_string(), c.sf_type.clone()),
        ("salesforce.label".to_string(), c.label.clone()),
        (
            "salesforce.calculated".to_string(),
            c.calculated.to_string(),
        ),
    ]);
    if let Some(p) = &c.parent {
        md.insert("salesforce.lookup".into(), p.lookup.clone());
        md.insert("salesforce.reference_to".into(), p.reference_to.join(","));
        if p.polymorphic {
            md.insert("salesforce.polymorphic".into(), "true".into());
        }
    }
    let name = lake_name(&c.name);
    if name != c.name {
        md.insert("salesforce.name".into(), c.name.clone());
    }
    Field::new(name, column_type(c), c.nullable).with_metadata(md)
}

/// The partition column of every object (the `date=YYYY-MM-DD` folders, and the Delta
/// table's partition column).
pub const PARTITION_COLUMN: &str = "date";

/// The column name a Salesforce field is written under: its own, except a field named like
/// the `date` partition column (`Date`, any case), which becomes `Date_` — Delta and DuckDB's
/// hive reader compare names without case, so the two would clash. (Salesforce API names
/// never end in `_`, so the new name cannot clash either.)
pub fn lake_name(name: &str) -> String {
    if name.eq_ignore_ascii_case(PARTITION_COLUMN) {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

/// A stable 16-hex-digit hash of names, types, nullability and Salesforce types.
pub fn schema_hash(schema: &Schema) -> String {
    let mut h = Sha256::new();
    for f in schema.fields() {
        h.update(f.name().as_bytes());
        h.update([0]);
        h.update(f.data_type().to_string().as_bytes());
        h.update([0, f.is_nullable() as u8]);
        let mut md: Vec<_> = f.metadata().iter().collect();
        md.sort();
        for (k, v) in md {
            h.update(k.as_bytes());
            h.update([1]);
            h.update(v.as_bytes());
        }
        h.update([0xff]);
    }
    hex::encode(&h.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(
        d: &ObjectDescribe,
        fields: Option<&[String]>,
        cursor: &str,
    ) -> Result<ObjectSchema, SchemaError> {
        ObjectSchema::resolve(d, fields, cursor, &Describes::default())
    }

    fn fd(name: &str, t: &str, custom: bool) -> FieldDescribe {
        serde_json::from_value(serde_json::json!({"name": name, "type": t, "label": name, "custom": custom, "precision": 18, "scale": 2})).unwrap()
    }

    fn describe() -> ObjectDescribe {
        ObjectDescribe {
            name: "Account".into(),
            label: "Account".into(),
            custom: false,
            queryable: true,
            replicateable: true,
            fields: vec![
                fd("Id", "id", false),
                fd("Name", "string", false),
                fd("AnnualRevenue", "currency", false),
                fd("BillingAddress", "address", false),
                fd("LastModifiedDate", "datetime", false),
                fd("NumberOfEmployees", "int", false),
                fd("Tier__c", "picklist", true),
                fd("Logo__c", "base64", true),
            ],
        }
    }

    #[test]
    fn default_fields_are_standard_non_compound() {
        let s = resolve(&describe(), None, "LastModifiedDate").unwrap();
        let names: Vec<_> = s.arrow.fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(
            names,
            [
                "Id",
                "Name",
                "AnnualRevenue",
                "LastModifiedDate",
                "NumberOfEmployees"
            ]
        );
        assert!(!s.arrow.field(0).is_nullable());
        assert!(s.arrow.field(1).is_nullable());
        assert_eq!(s.arrow.field(2).data_type(), &DataType::Decimal128(18, 2));
        assert_eq!(
            s.arrow.field(3).metadata().get("salesforce.type").unwrap(),
            "datetime"
        );
    }

    #[test]
    fn explicit_fields_keep_order_and_append_cursor_for_query_only() {
        let s = resolve(
            &describe(),
            Some(&["name".into(), "BillingAddress".into()]),
            "LastModifiedDate",
        )
        .unwrap();
        assert_eq!(
            s.select_list(),
            ["Name", "BillingAddress", "LastModifiedDate"]
        );
        assert_eq!(s.written, 2);
        assert_eq!(s.arrow.fields().len(), 2);
        assert!(matches!(s.arrow.field(1).data_type(), DataType::Struct(f) if f.len() == 10));
    }

    #[test]
    fn unknown_field_suggests_closest() {
        let e = resolve(&describe(), Some(&["Nmae".into()]), "LastModifiedDate")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Nmae") && e.contains("did you mean Name"), "{e}");
    }

    #[test]
    fn cursor_must_be_datetime() {
        let e = resolve(&describe(), None, "Name").unwrap_err().to_string();
        assert!(e.contains("is a string field"), "{e}");
        let e = resolve(&describe(), None, "LastModfiedDate")
            .unwrap_err()
            .to_string();
        assert!(e.contains("LastModifiedDate"), "{e}");
    }

    #[test]
    fn hash_changes_with_schema() {
        let a = resolve(&describe(), None, "LastModifiedDate").unwrap();
        let b = resolve(&describe(), Some(&["Id".into()]), "LastModifiedDate").unwrap();
        assert_ne!(a.hash, b.hash);
        assert_eq!(a.hash.len(), 16);
    }
}

/// Describes for tests: objects from (name, type) pairs, where `reference:User` is a lookup to
/// User (relationship name: the field without `Id`, or `__c` → `__r`) and
/// `reference:Group,User` a polymorphic one.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub fn describe(object: &str, fields: &[(&str, &str)]) -> ObjectDescribe {
        let fields: Vec<serde_json::Value> = fields
            .iter()
            .map(|(n, t)| {
                let (t, to) = t.split_once(':').unwrap_or((t, ""));
                let rel = (t == "reference").then(|| match n.strip_suffix("__c") {
                    Some(b) => format!("{b}__r"),
                    None => n.trim_end_matches("Id").to_string(),
                });
                let to: Vec<&str> = to.split(',').filter(|s| !s.is_empty()).collect();
                serde_json::json!({"name": n, "type": t, "label": n, "precision": 18, "scale": 2,
                    "custom": n.ends_with("__c"), "relationshipName": rel, "referenceTo": to})
            })
            .collect();
        serde_json::from_value(
            serde_json::json!({"name": object, "label": object, "fields": fields}),
        )
        .expect("a describe")
    }

    /// User: Id, Name, Email, IsActive, a Manager (User), LastModifiedDate.
    pub fn user() -> ObjectDescribe {
        describe(
            "User",
            &[
                ("Id", "id"),
                ("Name", "string"),
                ("Email", "email"),
                ("IsActive", "boolean"),
                ("ManagerId", "reference:User"),
                ("LastModifiedDate", "datetime"),
            ],
        )
    }

    pub fn resolve(
        root: &ObjectDescribe,
        fields: &[&str],
        parents: &[ObjectDescribe],
    ) -> Result<ObjectSchema, SchemaError> {
        let mut known = Describes::default();
        for p in parents {
            known.insert(std::sync::Arc::new(p.clone()));
        }
        let list: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
        ObjectSchema::resolve(root, Some(&list), "LastModifiedDate", &known)
    }
}
