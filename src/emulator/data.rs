//! The emulator's objects (describe metadata) and their deterministic, seeded records.

use std::collections::HashMap;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod gen;
mod objects;
use self::gen::{gen_row, WORDS};
pub use self::gen::{generate, GenConfig};
pub use self::objects::object_defs;

/// A field value as the emulator stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Str(String),
    /// A double/currency/percent value; rendered in Java-double text.
    Num(f64),
    /// Currency in units of 10^-scale (exact), rendered as a Java double.
    Cents(i64),
    Int(i64),
    Bool(bool),
    /// Epoch milliseconds (UTC).
    DateTime(i64),
    /// Days since the epoch.
    Date(i32),
    /// Milliseconds since midnight.
    Time(i32),
    Address(Box<Address>),
    Location(f64, f64),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Address {
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub state_code: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub country_code: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub geocode_accuracy: Option<String>,
}

/// Field metadata, enough to render a real describe.
#[derive(Debug, Clone)]
pub struct FieldDef {
    pub name: String,
    pub ftype: &'static str,
    pub label: String,
    pub custom: bool,
    pub precision: u32,
    pub scale: i32,
    pub length: u32,
    pub calculated: bool,
    pub nillable: bool,
    pub compound: Option<String>,
    pub picklist: Vec<&'static str>,
    pub reference_to: Vec<&'static str>,
    /// Generated lookups point to parent records 1..=ref_span (set from the parent's size).
    pub ref_span: u64,
}

impl FieldDef {
    #[cfg(test)]
    pub fn new_for_tests(name: &str, ftype: &'static str) -> Self {
        Self::new(name, ftype)
    }

    fn new(name: &str, ftype: &'static str) -> Self {
        let custom = name.ends_with("__c") || name.ends_with("__s");
        let label = name
            .trim_end_matches("__c")
            .trim_end_matches("__s")
            .replace('_', " ");
        let length = match ftype {
            "id" | "reference" => 18,
            "string" | "picklist" | "multipicklist" | "email" | "phone" | "url" | "combobox" => 255,
            "textarea" => 32000,
            _ => 0,
        };
        let nillable = !matches!(ftype, "id" | "boolean")
            && !matches!(
                name,
                "Name"
                    | "CreatedDate"
                    | "LastModifiedDate"
                    | "SystemModstamp"
                    | "OwnerId"
                    | "CreatedById"
                    | "LastModifiedById"
            );
        Self {
            name: name.into(),
            ftype,
            label,
            custom,
            precision: 0,
            scale: 0,
            length,
            calculated: false,
            nillable,
            compound: None,
            picklist: vec![],
            reference_to: vec![],
            ref_span: 499,
        }
    }

    /// The relationship name SOQL paths use for this lookup (`OwnerId` → `Owner`,
    /// `Account__c` → `Account__r`), or `None` for a field that is not a lookup.
    pub fn relationship_name(&self) -> Option<String> {
        if self.ftype != "reference" {
            return None;
        }
        Some(match self.name.strip_suffix("__c") {
            Some(base) => format!("{base}__r"),
            None => self.name.trim_end_matches("Id").to_string(),
        })
    }
    fn num(mut self, p: u32, s: i32) -> Self {
        self.precision = p;
        self.scale = s;
        self
    }
    fn pick(mut self, v: &[&'static str]) -> Self {
        self.picklist = v.to_vec();
        self
    }
    fn refs(mut self, to: &'static str) -> Self {
        self.reference_to = vec![to];
        self
    }

    fn formula(mut self) -> Self {
        self.calculated = true;
        self
    }
    fn part_of(mut self, c: &str) -> Self {
        self.compound = Some(c.into());
        self
    }
}

/// An object's metadata.
#[derive(Debug, Clone)]
pub struct ObjectDef {
    pub name: String,
    pub label: String,
    pub key_prefix: &'static str,
    pub custom: bool,
    /// describe's `replicateable`: getDeleted answers only for such objects.
    pub replicateable: bool,
    pub fields: Vec<FieldDef>,
}

impl ObjectDef {
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The lookup whose relationship name this is (case-insensitive).
    pub fn relationship_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| {
            f.relationship_name()
                .is_some_and(|r| r.eq_ignore_ascii_case(name))
        })
    }
}

/// Users every dataset has unless `rows` says otherwise (owners are users 1–19).
pub const DEFAULT_USERS: usize = 25;
/// Queues every dataset has (some cases are owned by one).
pub const DEFAULT_QUEUES: usize = 3;

/// One record: cells aligned with the object's fields. Shared, so snapshots are cheap.
pub type Row = Arc<Vec<Cell>>;

/// An object and its records (cells aligned with `def.fields`).
#[derive(Debug, Clone)]
pub struct Table {
    pub def: ObjectDef,
    pub rows: Vec<Row>,
    /// Records ever created (the next Id's serial).
    pub created: u64,
    /// Bumped on every change (caches key on it).
    pub version: u64,
    /// Set for a large read-only table whose records are generated on demand (`rows` is empty).
    pub synthetic: Option<Arc<Synthetic>>,
    /// The delete log getDeleted reads: `(Id, deletedDate ms)` of every deletion, in order.
    pub deleted: Vec<(String, i64)>,
    /// The delete log holds nothing before this instant (purged): getDeleted's
    /// `earliestDateAvailable` is never earlier.
    pub delete_log_from: i64,
}

impl Table {
    /// Number of records.
    pub fn len(&self) -> usize {
        match &self.synthetic {
            Some(s) => s.n as usize,
            None => self.rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Record `i` (shared for stored tables, generated for synthetic ones).
    pub fn row(&self, i: usize) -> Row {
        match &self.synthetic {
            Some(s) => Arc::new(s.row(i as u64)),
            None => self.rows[i].clone(),
        }
    }

    /// True when records are already in ascending, distinct order of this field, so a range
    /// on it is an index range and an ORDER BY on it needs no sort.
    pub fn is_monotone(&self, field: usize) -> bool {
        self.synthetic
            .as_ref()
            .is_some_and(|s| s.monotone.contains(&field))
    }

    fn assert_stored(&self) {
        assert!(
            self.synthetic.is_none(),
            "{} is a synthetic (read-only) emulator table",
            self.def.name
        );
    }
}

/// A read-only table of any size in constant memory: record `i` is the pool row `i % pool.len()`
/// with its own Id, `IsDeleted = false`, and `LastModifiedDate = SystemModstamp` increasing
/// strictly with `i` across `[from_ms, from_ms + span_ms)` (so date ranges are index ranges);
/// `CreatedDate` lies 0–29 days before that.
#[derive(Debug)]
pub struct Synthetic {
    pub n: u64,
    pub from_ms: i64,
    pub span_ms: i64,
    pool: Vec<Vec<Cell>>,
    key_prefix: &'static str,
    id: Option<usize>,
    created: Option<usize>,
    /// LastModifiedDate and SystemModstamp.
    monotone: Vec<usize>,
}

/// Rows generated once per synthetic table; record `i` reuses row `i % SYNTHETIC_POOL`.
pub const SYNTHETIC_POOL: u64 = 65_536;

impl Synthetic {
    pub fn new(def: &ObjectDef, seed: u64, n: u64, from_ms: i64, span_ms: i64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let deleted = def.field_index("IsDeleted");
        let pool = (0..n.min(SYNTHETIC_POOL))
            .map(|i| {
                let mut r = gen_row(def, i, &mut rng, from_ms, span_ms);
                if let Some(d) = deleted {
                    r[d] = Cell::Bool(false);
                }
                r
            })
            .collect();
        let monotone = ["LastModifiedDate", "SystemModstamp"]
            .iter()
            .filter_map(|f| def.field_index(f))
            .collect();
        Self {
            n,
            from_ms,
            span_ms,
            pool,
            key_prefix: def.key_prefix,
            id: def.field_index("Id"),
            created: def.field_index("CreatedDate"),
            monotone,
        }
    }

    /// The cursor value of record `i` (strictly increasing while `n <= span_ms`).
    pub fn stamp(&self, i: u64) -> i64 {
        self.from_ms + (i as i128 * self.span_ms as i128 / self.n.max(1) as i128) as i64
    }

    /// The first record whose stamp is `>= t`.
    pub fn first_at_or_after(&self, t: i64) -> u64 {
        let (mut lo, mut hi) = (0u64, self.n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.stamp(mid) < t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Fields whose values increase strictly with the record number.
    pub fn monotone_fields(&self) -> &[usize] {
        &self.monotone
    }

    /// Whether field `fi` differs per record (rather than coming from the pool row).
    pub fn is_dynamic(&self, fi: usize) -> bool {
        Some(fi) == self.id || Some(fi) == self.created || self.monotone.contains(&fi)
    }

    /// Appends the JSON text of dynamic field `fi` of record `i` (`URL_ID`: the bare Id),
    /// equal to rendering [`Synthetic::dynamic_cell`], without allocating.
    pub fn push_dynamic(&self, out: &mut Vec<u8>, i: u64, fi: usize, bare_id: bool) {
        if bare_id || Some(fi) == self.id {
            if !bare_id {
                out.push(b'"');
            }
            push_record_id(out, self.key_prefix, i + 1);
            if !bare_id {
                out.push(b'"');
            }
            return;
        }
        out.push(b'"');
        super::render::push_sf_datetime(out, self.dynamic_ms(i, fi));
        out.push(b'"');
    }

    /// Appends the Bulk CSV text (unquoted) of dynamic field `fi` of record `i`.
    pub fn push_dynamic_bulk(&self, out: &mut Vec<u8>, i: u64, fi: usize) {
        if Some(fi) == self.id {
            push_record_id(out, self.key_prefix, i + 1);
        } else {
            super::render::push_bulk_datetime(out, self.dynamic_ms(i, fi));
        }
    }

    /// The value of a dynamic field `fi` for record `i`.
    pub fn dynamic_cell(&self, i: u64, fi: usize) -> Cell {
        if Some(fi) == self.id {
            Cell::Str(record_id(self.key_prefix, i + 1))
        } else {
            Cell::DateTime(self.dynamic_ms(i, fi))
        }
    }

    /// A dynamic datetime field of record `i`: CreatedDate 0–29 days before its stamp, the
    /// others the stamp itself.
    fn dynamic_ms(&self, i: u64, fi: usize) -> i64 {
        if Some(fi) == self.created {
            self.stamp(i) - (i % 30) as i64 * 86_400_000
        } else {
            self.stamp(i)
        }
    }

    /// The pool row behind record `i`.
    pub fn pool_index(&self, i: u64) -> usize {
        (i % self.pool.len().max(1) as u64) as usize
    }

    pub fn pool_row(&self, p: usize) -> &[Cell] {
        &self.pool[p]
    }

    pub fn pool_len(&self) -> usize {
        self.pool.len()
    }

    /// Record `i`, generated.
    pub fn row(&self, i: u64) -> Vec<Cell> {
        let mut r = self.pool[self.pool_index(i)].clone();
        for (fi, c) in r.iter_mut().enumerate() {
            if self.is_dynamic(fi) {
                *c = self.dynamic_cell(i, fi);
            }
        }
        r
    }
}

/// All tables. Tables are shared copy-on-write, so a query keeps a consistent snapshot while
/// mutations go on.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub tables: Vec<Arc<Table>>,
}

impl Dataset {
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables
            .iter()
            .find(|t| t.def.name.eq_ignore_ascii_case(name))
            .map(|t| &**t)
    }

    /// A snapshot of one table.
    pub fn table_arc(&self, name: &str) -> Option<Arc<Table>> {
        self.tables
            .iter()
            .find(|t| t.def.name.eq_ignore_ascii_case(name))
            .cloned()
    }

    /// The record with this Id among the tables of `objects` (a lookup's parent), found by the
    /// Id's key prefix and serial (records are never removed, so serial n is row n − 1).
    pub fn record(&self, id: &str, objects: &[String]) -> Option<(Arc<Table>, Row)> {
        let prefix = id.get(..3)?;
        let table = self.tables.iter().find(|t| {
            t.def.key_prefix == prefix
                && objects.iter().any(|o| o.eq_ignore_ascii_case(&t.def.name))
        })?;
        let serial = record_serial(id)?;
        if serial == 0 || serial as usize > table.len() {
            return None;
        }
        let row = table.row(serial as usize - 1);
        let id_col = table.def.field_index("Id")?;
        (row[id_col] == Cell::Str(id.to_string())).then(|| (table.clone(), row))
    }

    /// A writable table (copied if a snapshot still holds it).
    pub fn table_mut(&mut self, name: &str) -> Option<&mut Table> {
        self.tables
            .iter_mut()
            .find(|t| t.def.name.eq_ignore_ascii_case(name))
            .map(|t| {
                let t = Arc::make_mut(t);
                t.version += 1;
                t
            })
    }
}

impl Table {
    /// Appends a new generated record whose Created/LastModified/SystemModstamp are `ts_ms`.
    pub fn insert(&mut self, rng: &mut StdRng, ts_ms: i64) -> usize {
        self.assert_stored();
        self.created += 1;
        let mut row = gen_row(&self.def, self.created - 1, rng, ts_ms - 1, 1);
        for name in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
            if let Some(i) = self.def.field_index(name) {
                row[i] = Cell::DateTime(ts_ms);
            }
        }
        if let Some(i) = self.def.field_index("IsDeleted") {
            row[i] = Cell::Bool(false);
        }
        self.rows.push(Arc::new(row));
        self.rows.len() - 1
    }

    /// Updates a record as a user edit would: new Name, new modification stamps.
    pub fn update(&mut self, idx: usize, ts_ms: i64, rng: &mut StdRng) {
        self.assert_stored();
        let def = &self.def;
        let row = Arc::make_mut(&mut self.rows[idx]);
        for name in ["LastModifiedDate", "SystemModstamp"] {
            if let Some(i) = def.field_index(name) {
                row[i] = Cell::DateTime(ts_ms);
            }
        }
        if let Some(i) = def.field_index("Name") {
            if !def.custom {
                row[i] = Cell::Str(format!(
                    "{} edited {}",
                    WORDS[rng.random_range(0..12)],
                    ts_ms
                ));
            }
        }
        for (i, f) in def.fields.iter().enumerate() {
            if f.ftype == "int" && f.compound.is_none() {
                row[i] = Cell::Int(rng.random_range(1..1000));
            }
        }
    }

    /// Soft-deletes a record (it stays visible to queryAll with IsDeleted = true).
    pub fn soft_delete(&mut self, idx: usize, ts_ms: i64) {
        self.assert_stored();
        let was_deleted = self.is_soft_deleted(idx);
        let def = &self.def;
        let row = Arc::make_mut(&mut self.rows[idx]);
        for name in ["LastModifiedDate", "SystemModstamp"] {
            if let Some(i) = def.field_index(name) {
                row[i] = Cell::DateTime(ts_ms);
            }
        }
        if let Some(i) = def.field_index("IsDeleted") {
            row[i] = Cell::Bool(true);
        }
        if !was_deleted {
            let id = self.id_of(idx);
            self.deleted.push((id, ts_ms));
        }
    }

    /// The Id of record `idx`.
    pub fn id_of(&self, idx: usize) -> String {
        match self.def.field_index("Id").map(|i| &self.rows[idx][i]) {
            Some(Cell::Str(s)) => s.clone(),
            _ => String::new(),
        }
    }

    /// True when record `idx` is in the Recycle Bin (`IsDeleted = true`).
    pub fn is_soft_deleted(&self, idx: usize) -> bool {
        matches!(
            self.def
                .field_index("IsDeleted")
                .map(|i| &self.rows[idx][i]),
            Some(Cell::Bool(true))
        )
    }

    /// Sets a record's modification stamps (LastModifiedDate, SystemModstamp).
    fn touch(&mut self, idx: usize, ts_ms: i64) {
        let def = &self.def;
        let row = Arc::make_mut(&mut self.rows[idx]);
        for name in ["LastModifiedDate", "SystemModstamp"] {
            if let Some(i) = def.field_index(name) {
                row[i] = Cell::DateTime(ts_ms);
            }
        }
    }

    /// Deletes a record for good, as emptying the Recycle Bin (or a delete of an object
    /// without one) does: queryAll no longer returns it; the delete log keeps its deletion (a
    /// live record's deletion is logged now, a soft-deleted one's when it was soft-deleted).
    pub fn hard_delete(&mut self, idx: usize, ts_ms: i64) {
        self.assert_stored();
        if !self.is_soft_deleted(idx) {
            let id = self.id_of(idx);
            self.deleted.push((id, ts_ms));
        }
        self.rows.remove(idx);
    }

    /// Empties the Recycle Bin: every soft-deleted record is deleted for good. Returns how many.
    pub fn empty_recycle_bin(&mut self) -> usize {
        self.assert_stored();
        let before = self.rows.len();
        let Some(d) = self.def.field_index("IsDeleted") else {
            return 0;
        };
        self.rows.retain(|r| !matches!(r[d], Cell::Bool(true)));
        before - self.rows.len()
    }

    /// Restores a soft-deleted record: `IsDeleted = false`, new modification stamps, and its
    /// deletion leaves the delete log.
    pub fn undelete(&mut self, idx: usize, ts_ms: i64) {
        self.assert_stored();
        let id = self.id_of(idx);
        self.touch(idx, ts_ms);
        if let Some(i) = self.def.field_index("IsDeleted") {
            Arc::make_mut(&mut self.rows[idx])[i] = Cell::Bool(false);
        }
        self.deleted.retain(|(d, _)| *d != id);
    }

    /// Merges records as Salesforce does: the master is updated, the losers are soft-deleted
    /// (their `MasterRecordId`, where the object has one, names the master).
    pub fn merge(&mut self, master: usize, losers: &[usize], ts_ms: i64) {
        self.assert_stored();
        let master_id = self.id_of(master);
        self.touch(master, ts_ms);
        for &l in losers {
            self.soft_delete(l, ts_ms);
            if let Some(i) = self.def.field_index("MasterRecordId") {
                Arc::make_mut(&mut self.rows[l])[i] = Cell::Str(master_id.clone());
            }
        }
    }

    /// Purges the delete log before `before_ms` (as Salesforce's background purge of a large
    /// log does): getDeleted then refuses a start before it (`INVALID_REPLICATION_DATE`).
    pub fn purge_delete_log(&mut self, before_ms: i64) {
        self.deleted.retain(|(_, t)| *t >= before_ms);
        self.delete_log_from = self.delete_log_from.max(before_ms);
    }

    /// Adds a field to the describe; existing records get a value for it.
    pub fn add_field(&mut self, name: &str, ftype: &'static str, custom: bool) {
        self.assert_stored();
        let mut f = FieldDef::new(name, ftype);
        f.custom = custom;
        self.def.fields.push(f);
        for (k, r) in self.rows.iter_mut().enumerate() {
            let v = match ftype {
                "string" | "picklist" | "textarea" => {
                    if k % 3 == 0 {
                        Cell::Null
                    } else {
                        Cell::Str(format!("value {k}"))
                    }
                }
                "double" => Cell::Num(k as f64 / 4.0),
                "boolean" => Cell::Bool(k % 2 == 0),
                _ => Cell::Null,
            };
            Arc::make_mut(r).push(v);
        }
    }

    /// Takes a field out of the describe and the records: what a deleted field, or one that
    /// field-level security hides from the Run-As user, looks like through the API.
    pub fn remove_field(&mut self, name: &str) {
        self.assert_stored();
        let Some(i) = self.def.field_index(name) else {
            return;
        };
        self.def.fields.remove(i);
        for r in self.rows.iter_mut() {
            Arc::make_mut(r).remove(i);
        }
        self.version += 1;
    }

    /// Changes a number field's precision and scale (a widening keeps every value).
    pub fn change_field_scale(&mut self, name: &str, precision: u32, scale: i32) {
        self.assert_stored();
        if let Some(i) = self.def.field_index(name) {
            self.def.fields[i].precision = precision;
            self.def.fields[i].scale = scale;
        }
    }

    /// Changes a field's describe type (values are converted where that is meaningful).
    pub fn change_field_type(&mut self, name: &str, ftype: &'static str) {
        self.assert_stored();
        let Some(i) = self.def.field_index(name) else {
            return;
        };
        self.def.fields[i].ftype = ftype;
        if ftype == "double" {
            self.def.fields[i].precision = 18;
            for r in self.rows.iter_mut() {
                if let Cell::Int(v) = r[i] {
                    Arc::make_mut(r)[i] = Cell::Num(v as f64);
                }
            }
        }
    }
}

/// An 18-character, case-safe record id: key prefix, pod, a base-62 serial, and the
/// 3-character suffix that encodes the case of the first 15 characters (as Salesforce does).
pub fn record_id(prefix: &str, n: u64) -> String {
    let mut out = Vec::with_capacity(18);
    push_record_id(&mut out, prefix, n);
    String::from_utf8(out).expect("ids are ASCII")
}

/// The serial a [`record_id`] encodes (the inverse of its base-62 digits).
pub fn record_serial(id: &str) -> Option<u64> {
    let digits = id.get(9..15)?;
    digits.bytes().try_fold(0u64, |v, c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            b'a'..=b'z' => c - b'a' + 36,
            _ => return None,
        };
        Some(v * 62 + d as u64)
    })
}

/// Appends [`record_id`]'s text without allocating (the emulator's hot path).
pub fn push_record_id(out: &mut Vec<u8>, prefix: &str, n: u64) {
    const A: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const S: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let start = out.len();
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(b"5g0000");
    let mut digits = [b'0'; 6];
    let mut v = n;
    for d in digits.iter_mut().rev() {
        *d = A[(v % 62) as usize];
        v /= 62;
    }
    out.extend_from_slice(&digits);
    let mut suffix = [0u8; 3];
    for (k, chunk) in out[start..start + 15].chunks(5).enumerate() {
        let mut bits = 0usize;
        for (i, c) in chunk.iter().enumerate() {
            if c.is_ascii_uppercase() {
                bits |= 1 << i;
            }
        }
        suffix[k] = S[bits];
    }
    out.extend_from_slice(&suffix);
}

/// Java's `Double.toString`: plain between 10^-3 and 10^7, else `1.2345678E7`.
pub fn java_double(v: f64) -> String {
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let a = v.abs();
    if (1e-3..1e7).contains(&a) {
        let s = format!("{v}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let s = format!("{v:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = if m.contains('.') {
            m.to_string()
        } else {
            format!("{m}.0")
        };
        format!("{m}E{e}")
    }
}

#[cfg(test)]
mod tests;
