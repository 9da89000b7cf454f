//! REST query pages (JSON) → Arrow `RecordBatch`, without a `serde_json::Value` in between.
//!
//! A serde visitor walks the page envelope and appends each record's values straight into
//! typed Arrow builders. Numeric values are taken as their source text (`RawValue`), so
//! decimals are exact (`1.2345678E7` → `12345678.00`) and an int field holding `42.5` is an
//! error, never a silent truncation. A value that does not fit its column is an error naming
//! the object, the record Id, the field and the value.
//!
//! Pages are read first by a hand-written reader for the usual shape ([`fast`]); a page it
//! declines is read again by the visitor, which has the final word (result or error).
//!
//! After an error the decoder's builders hold a partial row: drop the decoder (the chunk that
//! owned it is retried from its start).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::builder::NullBufferBuilder;
use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int32Builder,
    Int64Builder, ListBuilder, RecordBatch, StringBuilder, StructArray, Time32MillisecondBuilder,
    TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Fields, SchemaRef};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::schema::{arrow_type, ColumnKind, ObjectSchema, ADDRESS_KEYS, LOCATION_KEYS};

pub mod csv;
mod fast;

pub use self::csv::CsvDecoder;

/// Why a page could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error(
        "{object} record {record}: field {field} = {value} is not a valid {expected} ({reason})"
    )]
    BadValue {
        object: String,
        record: String,
        field: String,
        value: String,
        expected: String,
        reason: String,
    },
    #[error("{object}: the query page is {}: {message}", if *.truncated { "cut short (truncated body)" } else { "not valid JSON" })]
    Malformed {
        object: String,
        message: String,
        truncated: bool,
    },
    #[error("{object}: building the Arrow batch failed: {message}")]
    Arrow { object: String, message: String },
}

impl DecodeError {
    /// Truncated bodies are transport problems: worth another attempt.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            DecodeError::Malformed {
                truncated: true,
                ..
            }
        )
    }
}

/// The envelope of a decoded page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageInfo {
    pub total_size: u64,
    pub done: bool,
    pub next_records_url: Option<String>,
    pub records: usize,
}

/// A problem found inside the visitor, surfaced after serde unwinds.
#[derive(Debug)]
struct Problem {
    field: String,
    value: String,
    expected: &'static str,
    reason: String,
}

enum Builder {
    Utf8(StringBuilder),
    Json(StringBuilder),
    Bool(BooleanBuilder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Date(Date32Builder),
    Timestamp(TimestampMillisecondBuilder),
    Time(Time32MillisecondBuilder),
    List(ListBuilder<StringBuilder>),
    Struct(Box<StructColumn>),
}

struct StructColumn {
    keys: &'static [(&'static str, ColumnKind)],
    children: Vec<Builder>,
    validity: NullBufferBuilder,
    fields: Fields,
}

impl Builder {
    fn new(kind: ColumnKind) -> Self {
        match kind {
            ColumnKind::Utf8 => Builder::Utf8(StringBuilder::new()),
            ColumnKind::JsonText => Builder::Json(StringBuilder::new()),
            ColumnKind::Bool => Builder::Bool(BooleanBuilder::new()),
            ColumnKind::Int32 => Builder::Int32(Int32Builder::new()),
            ColumnKind::Int64 => Builder::Int64(Int64Builder::new()),
            ColumnKind::Float64 => Builder::Float64(Float64Builder::new()),
            ColumnKind::Decimal { precision, scale } => Builder::Decimal(
                Decimal128Builder::new()
                    .with_precision_and_scale(precision, scale)
                    .expect("decimal_shape clamps precision and scale"),
                precision,
                scale,
            ),
            ColumnKind::Date => Builder::Date(Date32Builder::new()),
            ColumnKind::Timestamp => {
                Builder::Timestamp(TimestampMillisecondBuilder::new().with_timezone("UTC"))
            }
            ColumnKind::Time => Builder::Time(Time32MillisecondBuilder::new()),
            ColumnKind::MultiPicklist => Builder::List(ListBuilder::new(StringBuilder::new())),
            ColumnKind::Address | ColumnKind::Location => {
                let keys: &'static [(&'static str, ColumnKind)] = if kind == ColumnKind::Address {
                    &ADDRESS_KEYS
                } else {
                    &LOCATION_KEYS
                };
                let fields = match arrow_type(kind) {
                    DataType::Struct(f) => f,
                    _ => unreachable!("compound kinds map to structs"),
                };
                Builder::Struct(Box::new(StructColumn {
                    keys,
                    children: keys.iter().map(|(_, k)| Builder::new(*k)).collect(),
                    validity: NullBufferBuilder::new(0),
                    fields,
                }))
            }
        }
    }

    fn len(&self) -> usize {
        use arrow::array::ArrayBuilder;
        match self {
            Builder::Utf8(b) | Builder::Json(b) => b.len(),
            Builder::Bool(b) => b.len(),
            Builder::Int32(b) => b.len(),
            Builder::Int64(b) => b.len(),
            Builder::Float64(b) => b.len(),
            Builder::Decimal(b, ..) => b.len(),
            Builder::Date(b) => b.len(),
            Builder::Timestamp(b) => b.len(),
            Builder::Time(b) => b.len(),
            Builder::List(b) => b.len(),
            Builder::Struct(s) => s.validity.len(),
        }
    }

    /// The most values any part of the column holds (a struct's children may be ahead of it
    /// while a record is read).
    fn deep_len(&self) -> usize {
        match self {
            Builder::Struct(s) => s
                .children
                .iter()
                .map(Builder::deep_len)
                .fold(s.validity.len(), usize::max),
            b => b.len(),
        }
    }

    /// Appends nulls until the column (and every child of a struct) holds `n` values.
    fn pad_to(&mut self, n: usize) {
        if let Builder::Struct(s) = self {
            for c in &mut s.children {
                c.pad_to(n);
            }
            while s.validity.len() < n {
                s.validity.append_null();
            }
        } else {
            while self.len() < n {
                self.append_null();
            }
        }
    }

    fn append_null(&mut self) {
        match self {
            Builder::Utf8(b) | Builder::Json(b) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
            Builder::Int32(b) => b.append_null(),
            Builder::Int64(b) => b.append_null(),
            Builder::Float64(b) => b.append_null(),
            Builder::Decimal(b, ..) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Timestamp(b) => b.append_null(),
            Builder::Time(b) => b.append_null(),
            Builder::List(b) => b.append_null(),
            Builder::Struct(s) => {
                for c in &mut s.children {
                    c.append_null();
                }
                s.validity.append_null();
            }
        }
    }

    fn finish(&mut self) -> Result<ArrayRef, arrow::error::ArrowError> {
        use arrow::array::ArrayBuilder;
        Ok(match self {
            Builder::Utf8(b) | Builder::Json(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Int32(b) => Arc::new(b.finish()),
            Builder::Int64(b) => Arc::new(b.finish()),
            Builder::Float64(b) => Arc::new(b.finish()),
            Builder::Decimal(b, ..) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Timestamp(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
            Builder::List(b) => ArrayBuilder::finish(b),
            Builder::Struct(s) => {
                let children = s
                    .children
                    .iter_mut()
                    .map(|c| c.finish())
                    .collect::<Result<Vec<_>, _>>()?;
                let nulls = s.validity.finish();
                Arc::new(StructArray::try_new(s.fields.clone(), children, nulls)?)
            }
        })
    }
}

/// Finishes every builder (they then hold no rows); the first `written` columns' arrays.
fn finish_builders(
    builders: &mut [Builder],
    written: usize,
    object: &str,
) -> Result<Vec<ArrayRef>, DecodeError> {
    let mut arrays = Vec::with_capacity(written);
    for (i, b) in builders.iter_mut().enumerate() {
        let a = b.finish().map_err(|e| DecodeError::Arrow {
            object: object.to_string(),
            message: e.to_string(),
        })?;
        if i < written {
            arrays.push(a);
        }
    }
    Ok(arrays)
}

/// Decodes pages of one object into batches with that object's schema.
pub struct PageDecoder {
    object: String,
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, usize>,
    /// Each column name as its JSON key, quotes included (the fast reader's key match).
    quoted: Vec<Box<[u8]>>,
    builders: Vec<Builder>,
    id_col: Option<usize>,
    written: usize,
    schema: SchemaRef,
    /// Complete records in the builders.
    rows: usize,
    /// Rows kept aside when a page had to be read again (see [`PageDecoder::rewind`]).
    carry: Option<RecordBatch>,
    /// Off only in tests, to compare the fast reader with the visitor.
    fast: bool,
    /// The fast reader's per-record set of columns given a value (one bit each).
    seen: Vec<u64>,
}

impl fmt::Debug for PageDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageDecoder")
            .field("object", &self.object)
            .field("rows", &self.rows)
            .finish()
    }
}

impl PageDecoder {
    /// A decoder for the columns of `schema` (query order; only the written ones come out).
    pub fn new(schema: &ObjectSchema) -> Self {
        let names: Vec<Box<str>> = schema
            .columns
            .iter()
            .map(|c| c.name.as_str().into())
            .collect();
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Self {
            object: schema.object.clone(),
            id_col: names.iter().position(|n| &**n == "Id"),
            quoted: names
                .iter()
                .map(|n| format!("\"{n}\"").into_bytes().into_boxed_slice())
                .collect(),
            carry: None,
            fast: true,
            seen: vec![0; names.len().div_ceil(64)],
            names,
            index,
            builders: schema
                .columns
                .iter()
                .map(|c| Builder::new(c.kind))
                .collect(),
            written: schema.written,
            schema: schema.arrow.clone(),
            rows: 0,
        }
    }

    /// Reads every page with the serde visitor only, as it does the pages the fast reader
    /// declines (for comparisons: the micro-benchmark, the differential tests).
    pub fn without_fast_reader(mut self) -> Self {
        self.fast = false;
        self
    }

    /// Rows buffered since the last [`PageDecoder::finish_batch`].
    pub fn buffered_rows(&self) -> usize {
        self.rows + self.carry.as_ref().map_or(0, |c| c.num_rows())
    }

    /// Whether record `row` got a non-null Id (always true for objects without one).
    fn id_present(&self, row: usize) -> bool {
        let Some(i) = self.id_col else { return true };
        let Builder::Utf8(b) = &self.builders[i] else {
            return true;
        };
        use arrow::array::ArrayBuilder;
        let valid = b
            .validity_slice()
            .map(|s| (s[row / 8] >> (row % 8)) & 1 == 1)
            .unwrap_or(true);
        valid && b.len() == row + 1
    }

    /// Drops whatever the builders hold past the first `keep` rows (part of a page, maybe part
    /// of a record): the kept rows go aside as a batch, joined again by `finish_batch`.
    fn rewind(&mut self, keep: usize) -> Result<(), DecodeError> {
        let n = self
            .builders
            .iter()
            .map(Builder::deep_len)
            .max()
            .unwrap_or(0);
        for b in &mut self.builders {
            b.pad_to(n); // a struct's children must match before it can be finished
        }
        let arrays: Vec<ArrayRef> = self
            .finish_columns()?
            .iter()
            .map(|a| a.slice(0, keep))
            .collect();
        if keep > 0 {
            let kept =
                RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| self.arrow_err(e))?;
            self.carry = Some(self.joined(kept)?);
        }
        Ok(())
    }

    /// Finishes every builder (the decoder then holds no rows); the written columns' arrays.
    fn finish_columns(&mut self) -> Result<Vec<ArrayRef>, DecodeError> {
        self.rows = 0;
        finish_builders(&mut self.builders, self.written, &self.object)
    }

    fn arrow_err(&self, e: arrow::error::ArrowError) -> DecodeError {
        DecodeError::Arrow {
            object: self.object.clone(),
            message: e.to_string(),
        }
    }

    /// `batch` after the rows set aside by [`PageDecoder::rewind`], if any.
    fn joined(&mut self, batch: RecordBatch) -> Result<RecordBatch, DecodeError> {
        match self.carry.take() {
            Some(kept) => arrow::compute::concat_batches(&self.schema, [&kept, &batch])
                .map_err(|e| self.arrow_err(e)),
            None => Ok(batch),
        }
    }

    /// Appends one page's records; returns its envelope.
    pub fn decode_page(&mut self, page: &[u8]) -> Result<PageInfo, DecodeError> {
        // One bulk UTF-8 check of the page (SIMD-fast on ASCII) instead of one per string.
        let text = std::str::from_utf8(page).map_err(|e| DecodeError::Malformed {
            object: self.object.clone(),
            message: format!("the page is not valid UTF-8: {e}"),
            // a multi-byte character cut at the end: the body was truncated
            truncated: e.error_len().is_none(),
        })?;
        let start_rows = self.rows;
        if self.fast {
            match fast::decode_page(self, text) {
                Ok(mut info) => {
                    info.records = self.rows - start_rows;
                    return Ok(info);
                }
                Err(fast::Declined) => {
                    tracing::trace!(object = %self.object, "page left to the full JSON visitor");
                    self.rewind(start_rows)?
                }
            }
        }
        let mut problem = None;
        let start_rows = self.rows; // 0 after a rewind: the kept rows are set aside
        let mut de = serde_json::Deserializer::from_str(text);
        let result = PageSeed {
            dec: self,
            problem: &mut problem,
        }
        .deserialize(&mut de)
        .and_then(|info| de.end().map(|_| info));
        match result {
            Ok(mut info) => {
                info.records = self.rows - start_rows;
                Ok(info)
            }
            Err(e) => {
                if let Some(p) = problem {
                    let record_index = self.rows - start_rows;
                    Err(DecodeError::BadValue {
                        object: self.object.clone(),
                        record: record_label(page, record_index),
                        field: p.field,
                        value: p.value,
                        expected: p.expected.to_string(),
                        reason: p.reason,
                    })
                } else {
                    Err(DecodeError::Malformed {
                        object: self.object.clone(),
                        message: e.to_string(),
                        truncated: e.is_eof(),
                    })
                }
            }
        }
    }

    /// Takes the buffered rows as a batch of the written columns.
    pub fn finish_batch(&mut self) -> Result<RecordBatch, DecodeError> {
        let arrays = self.finish_columns()?;
        let batch =
            RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| self.arrow_err(e))?;
        self.joined(batch)
    }
}

/// `Id 001…` of the n-th record of a page, or `#n` when it cannot be found (error path only).
fn record_label(page: &[u8], n: usize) -> String {
    let v: Result<serde_json::Value, _> = serde_json::from_slice(page);
    match v.ok().as_ref().and_then(|v| {
        v.get("records")?
            .get(n)?
            .get("Id")?
            .as_str()
            .map(str::to_string)
    }) {
        Some(id) => format!("Id {id}"),
        None => format!("#{} of the page (no Id)", n + 1),
    }
}

// ------------------------------------------------------------------------------------------
// serde plumbing

struct PageSeed<'a> {
    dec: &'a mut PageDecoder,
    problem: &'a mut Option<Problem>,
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_> {
    type Value = PageInfo;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PageInfo, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_> {
    type Value = PageInfo;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a query result object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PageInfo, A::Error> {
        let mut info = PageInfo::default();
        let mut saw_records = false;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match &*key {
                "totalSize" => info.total_size = map.next_value()?,
                "done" => info.done = map.next_value()?,
                "nextRecordsUrl" => info.next_records_url = map.next_value()?,
                "records" => {
                    map.next_value_seed(RecordsSeed {
                        dec: &mut *self.dec,
                        problem: &mut *self.problem,
                    })?;
                    saw_records = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !saw_records {
            return Err(de::Error::custom("the page has no `records` array"));
        }
        Ok(info)
    }
}

struct RecordsSeed<'a> {
    dec: &'a mut PageDecoder,
    problem: &'a mut Option<Problem>,
}

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(RecordSeed {
                dec: &mut *self.dec,
                problem: &mut *self.problem,
            })?
            .is_some()
        {}
        Ok(())
    }
}

struct RecordSeed<'a> {
    dec: &'a mut PageDecoder,
    problem: &'a mut Option<Problem>,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let dec = self.dec;
        let row = dec.rows;
        let mut expected = 0usize;
        while let Some(col) = map.next_key_seed(KeySeed {
            names: &dec.names,
            index: &dec.index,
            expected,
        })? {
            match col {
                Some(i) => {
                    expected = i + 1;
                    if dec.builders[i].len() > row {
                        // A duplicate key: keep the first value.
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                    map.next_value_seed(ValueSeed {
                        b: &mut dec.builders[i],
                        name: &dec.names[i],
                        problem: &mut *self.problem,
                    })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        for b in dec.builders.iter_mut() {
            if b.len() == row {
                b.append_null();
            }
        }
        if !dec.id_present(row) {
            *self.problem = Some(Problem {
                field: "Id".into(),
                value: "null".into(),
                expected: "record Id",
                reason: "every record must carry its Id".into(),
            });
            return Err(de::Error::custom("record without Id"));
        }
        dec.rows += 1;
        Ok(())
    }
}

/// Maps a JSON key to a column index, trying the expected next column first.
struct KeySeed<'a> {
    names: &'a [Box<str>],
    index: &'a HashMap<Box<str>, usize>,
    expected: usize,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<usize>, E> {
        if let Some(n) = self.names.get(self.expected) {
            if &**n == v {
                return Ok(Some(self.expected));
            }
        }
        Ok(self.index.get(v).copied())
    }
}

struct ValueSeed<'a> {
    b: &'a mut Builder,
    name: &'a str,
    problem: &'a mut Option<Problem>,
}

impl ValueSeed<'_> {
    fn fail<E: de::Error>(
        self,
        value: impl Into<String>,
        expected: &'static str,
        reason: impl Into<String>,
    ) -> E {
        let mut value = value.into();
        if value.len() > 200 {
            let cut = value
                .char_indices()
                .take_while(|(i, _)| *i < 200)
                .last()
                .map(|(i, c)| i + c.len_utf8())
                .unwrap_or(0);
            value.truncate(cut);
            value.push('…');
        }
        *self.problem = Some(Problem {
            field: self.name.to_string(),
            value,
            expected,
            reason: reason.into(),
        });
        E::custom("bad value")
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.b {
            Builder::Int32(_)
            | Builder::Int64(_)
            | Builder::Float64(_)
            | Builder::Decimal(..)
            | Builder::Json(_) => {
                let raw = <&'de RawValue>::deserialize(d)?;
                self.raw(raw.get())
            }
            _ => d.deserialize_any(self),
        }
    }
}

use serde::Deserialize as _;

impl ValueSeed<'_> {
    fn raw<E: de::Error>(self, text: &str) -> Result<(), E> {
        if text == "null" {
            self.b.append_null();
            return Ok(());
        }
        match &mut *self.b {
            Builder::Json(b) => {
                if text.starts_with('"') {
                    match serde_json::from_str::<Cow<str>>(text) {
                        Ok(s) => b.append_value(&*s),
                        Err(e) => return Err(self.fail(text, "JSON string", e.to_string())),
                    }
                } else {
                    b.append_value(text);
                }
                Ok(())
            }
            Builder::Float64(b) => match parse_f64(text) {
                Some(v) => {
                    b.append_value(v);
                    Ok(())
                }
                None => Err(self.fail(text, "double", "not a JSON number")),
            },
            Builder::Int32(b) => match parse_integer(text) {
                Ok(v) => match i32::try_from(v) {
                    Ok(v) => {
                        b.append_value(v);
                        Ok(())
                    }
                    Err(_) => Err(self.fail(text, "int", "out of range for a 32-bit integer")),
                },
                Err(r) => Err(self.fail(text, "int", r)),
            },
            Builder::Int64(b) => match parse_integer(text) {
                Ok(v) => match i64::try_from(v) {
                    Ok(v) => {
                        b.append_value(v);
                        Ok(())
                    }
                    Err(_) => Err(self.fail(text, "long", "out of range for a 64-bit integer")),
                },
                Err(r) => Err(self.fail(text, "long", r)),
            },
            Builder::Decimal(b, p, s) => match parse_decimal(text, *p, *s) {
                Ok(v) => {
                    b.append_value(v);
                    Ok(())
                }
                Err(r) => Err(self.fail(text, "currency", r)),
            },
            _ => unreachable!("raw() is only used for numeric and JSON columns"),
        }
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Salesforce field value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.b.append_null();
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        match &mut *self.b {
            Builder::Bool(b) => {
                b.append_value(v);
                Ok(())
            }
            _ => {
                let expected = self.expected_name();
                Err(self.fail(
                    v.to_string(),
                    expected,
                    "a JSON boolean where text was expected",
                ))
            }
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        Err(self.unexpected_number(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        Err(self.unexpected_number(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        Err(self.unexpected_number(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        match &mut *self.b {
            Builder::Utf8(b) => b.append_value(v),
            Builder::List(b) => {
                for item in v.split(';') {
                    b.values().append_value(item);
                }
                b.append(true);
            }
            Builder::Timestamp(b) => match parse_datetime_ms(v) {
                Some(ms) => b.append_value(ms),
                None => {
                    return Err(self.fail(
                        format!("{v:?}"),
                        "datetime",
                        "expected e.g. 2024-03-01T12:34:56.000+0000",
                    ))
                }
            },
            Builder::Date(b) => match parse_date_days(v) {
                Some(d) => b.append_value(d),
                None => return Err(self.fail(format!("{v:?}"), "date", "expected YYYY-MM-DD")),
            },
            Builder::Time(b) => match parse_time_ms(v) {
                Some(t) => b.append_value(t),
                None => return Err(self.fail(format!("{v:?}"), "time", "expected HH:MM:SS.sssZ")),
            },
            _ => {
                let expected = self.expected_name();
                return Err(self.fail(
                    format!("{v:?}"),
                    expected,
                    "a JSON string where this type was expected",
                ));
            }
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Builder::Struct(s) = &mut *self.b else {
            let expected = self.expected_name();
            return Err(self.fail(
                "{…}",
                expected,
                "a JSON object where this type was expected",
            ));
        };
        let row = s.validity.len();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match s.keys.iter().position(|(k, _)| *k == &*key) {
                Some(i) if s.children[i].len() == row => {
                    let child_name = format!("{}.{}", self.name, s.keys[i].0);
                    let mut child_problem = None;
                    let r = map.next_value_seed(ValueSeed {
                        b: &mut s.children[i],
                        name: &child_name,
                        problem: &mut child_problem,
                    });
                    if let Some(p) = child_problem {
                        *self.problem = Some(p);
                    }
                    r?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        for c in s.children.iter_mut() {
            if c.len() == row {
                c.append_null();
            }
        }
        s.validity.append_non_null();
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<(), A::Error> {
        let expected = self.expected_name();
        Err(self.fail("[…]", expected, "a JSON array where this type was expected"))
    }
}

impl ValueSeed<'_> {
    fn unexpected_number<E: de::Error>(self, v: impl ToString) -> E {
        let expected = self.expected_name();
        self.fail(
            v.to_string(),
            expected,
            "a JSON number where this type was expected",
        )
    }

    fn expected_name(&self) -> &'static str {
        match self.b {
            Builder::Utf8(_) => "text",
            Builder::Json(_) => "JSON",
            Builder::Bool(_) => "boolean",
            Builder::Int32(_) => "int",
            Builder::Int64(_) => "long",
            Builder::Float64(_) => "double",
            Builder::Decimal(..) => "currency",
            Builder::Date(_) => "date",
            Builder::Timestamp(_) => "datetime",
            Builder::Time(_) => "time",
            Builder::List(_) => "multipicklist",
            Builder::Struct(_) => "compound (address/location)",
        }
    }
}

// ------------------------------------------------------------------------------------------
// Pure value parsers

/// A JSON number's text → f64 (`1.2345678E7` included).
pub fn parse_f64(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    if b.is_empty() || !(b[0] == b'-' || b[0].is_ascii_digit()) {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Splits a JSON number into (negative, digits without leading zeros, exponent of the last digit).
fn number_parts(text: &str) -> Result<(bool, i128, i32), String> {
    let b = text.as_bytes();
    let mut i = 0;
    let neg = b.first() == Some(&b'-');
    if neg {
        i += 1;
    }
    let mut mant: i128 = 0;
    let mut exp: i32 = 0;
    let mut digits = 0;
    let mut seen_dot = false;
    let mut any = false;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            any = true;
            if mant != 0 || c != b'0' {
                digits += 1;
                if digits > 38 {
                    return Err("more than 38 significant digits".into());
                }
            }
            mant = mant * 10 + (c - b'0') as i128;
            if seen_dot {
                exp -= 1;
            }
        } else if c == b'.' && !seen_dot {
            seen_dot = true;
        } else if c == b'e' || c == b'E' {
            break;
        } else {
            return Err("not a number".into());
        }
        i += 1;
    }
    if !any {
        return Err("not a number".into());
    }
    if i < b.len() {
        let e: i32 = text[i + 1..]
            .trim_start_matches('+')
            .parse()
            .map_err(|_| "bad exponent".to_string())?;
        exp = exp.checked_add(e).ok_or("exponent out of range")?;
    }
    Ok((neg, mant, exp))
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// A JSON number's text → an exact integer; `42.0` and `4.2E1` are fine, `42.5` is not.
pub fn parse_integer(text: &str) -> Result<i128, String> {
    let (neg, mut mant, exp) = number_parts(text)?;
    if exp >= 0 {
        mant = mant
            .checked_mul(pow10(exp as u32).ok_or("out of range")?)
            .ok_or("out of range")?;
    } else {
        let d = pow10((-exp) as u32).unwrap_or(i128::MAX);
        if mant % d != 0 {
            return Err("has a fractional part".into());
        }
        mant /= d;
    }
    Ok(if neg { -mant } else { mant })
}

/// A JSON number's text → an exact Decimal128 value at `scale`, checked against `precision`.
pub fn parse_decimal(text: &str, precision: u8, scale: i8) -> Result<i128, String> {
    let (neg, mant, exp) = number_parts(text)?;
    let k = exp + scale as i32;
    let v = if k >= 0 {
        mant.checked_mul(pow10(k as u32).ok_or("out of range")?)
            .ok_or("out of range")?
    } else {
        let d = pow10((-k) as u32).unwrap_or(i128::MAX);
        if mant % d != 0 {
            return Err(format!(
                "has more decimal places than the field's scale {scale}"
            ));
        }
        mant / d
    };
    let limit = pow10(precision as u32).unwrap_or(i128::MAX);
    if v >= limit {
        return Err(format!(
            "does not fit the field's precision {precision} (scale {scale})"
        ));
    }
    Ok(if neg { -v } else { v })
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn valid_ymd(y: i64, m: u32, d: u32) -> bool {
    if !(1..=12).contains(&m) || d == 0 {
        return false;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let dim = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][(m - 1) as usize];
    d <= dim
}

/// `YYYY-MM-DD` → days since the epoch.
pub fn parse_date_days(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (
        digits(&b[0..4])? as i64,
        digits(&b[5..7])?,
        digits(&b[8..10])?,
    );
    valid_ymd(y, m, d).then(|| days_from_civil(y, m, d) as i32)
}

/// Salesforce datetime text → epoch milliseconds (UTC).
///
/// Fast path for `YYYY-MM-DDTHH:MM:SS.sss+0000`; other RFC 3339 / `+HHMM` forms go through chrono.
pub fn parse_datetime_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    // `…000+0000` (REST) or `…000Z` (Bulk API 2.0 CSV)
    if ((b.len() == 28 && &b[23..] == b"+0000") || (b.len() == 24 && b[23] == b'Z'))
        && b[10] == b'T'
        && b[19] == b'.'
        && b[13] == b':'
        && b[16] == b':'
    {
        let days = parse_date_days(&s[..10])? as i64;
        let (h, mi, se, ms) = (
            digits(&b[11..13])?,
            digits(&b[14..16])?,
            digits(&b[17..19])?,
            digits(&b[20..23])?,
        );
        if h > 23 || mi > 59 || se > 59 {
            return None;
        }
        return Some(
            days * 86_400_000 + (h as i64 * 3600 + mi as i64 * 60 + se as i64) * 1000 + ms as i64,
        );
    }
    chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Salesforce time text (`10:30:00.000Z`; the `Z` is not a zone) → milliseconds since midnight.
pub fn parse_time_ms(s: &str) -> Option<i32> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let b = s.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, sec) = (digits(&b[0..2])?, digits(&b[3..5])?, digits(&b[6..8])?);
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let ms = match &b[8..] {
        [] => 0,
        [b'.', rest @ ..] if !rest.is_empty() && rest.len() <= 3 => {
            digits(rest)? * 10u32.pow(3 - rest.len() as u32)
        }
        _ => return None,
    };
    Some(((h * 3600 + m * 60 + sec) * 1000 + ms) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::describe::ObjectDescribe;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Decimal128Type, Float64Type, Int32Type, TimestampMillisecondType};
    use proptest::prelude::*;

    fn schema(fields: &[(&str, &str)]) -> ObjectSchema {
        let d: ObjectDescribe = serde_json::from_value(serde_json::json!({
            "name": "Account",
            "fields": fields.iter().map(|(n, t)| serde_json::json!({"name": n, "type": t, "label": n, "precision": 18, "scale": 2})).collect::<Vec<_>>(),
        }))
        .unwrap();
        let list: Vec<String> = fields.iter().map(|(n, _)| n.to_string()).collect();
        ObjectSchema::resolve(&d, Some(&list), "LastModifiedDate").unwrap()
    }

    #[test]
    fn decodes_every_type_exactly() {
        let s = schema(&[
            ("Id", "id"),
            ("AnnualRevenue", "currency"),
            ("N", "int"),
            ("P", "percent"),
            ("LastModifiedDate", "datetime"),
            ("D", "date"),
            ("T", "time"),
            ("M", "multipicklist"),
            ("B", "boolean"),
            ("A", "address"),
            ("L", "location"),
            ("J", "anyType"),
        ]);
        let mut d = PageDecoder::new(&s);
        let page = br#"{"totalSize":2,"done":true,"records":[
            {"attributes":{"type":"Account","url":"/x"},"Id":"001000000000001AAA","AnnualRevenue":1.2345678E7,"N":42,"P":12.5,
             "LastModifiedDate":"2024-03-01T12:34:56.789+0000","D":"2024-02-29","T":"10:30:00.000Z","M":"A;B;C","B":true,
             "A":{"street":"1 Main\nSt","city":"M\u00fcnchen","latitude":48.1,"longitude":11.5,"geocodeAccuracy":null},
             "L":{"latitude":37.79,"longitude":-122.39},"J":"x\"y","Owner":{"attributes":{},"Name":"n"}},
            {"Id":"001000000000002AAA","AnnualRevenue":null,"N":null,"P":null,"LastModifiedDate":null,"D":null,"T":null,"M":null,"B":false,"A":null,"L":null,"J":5}
        ]}"#;
        let info = d.decode_page(page).unwrap();
        assert_eq!(
            info,
            PageInfo {
                total_size: 2,
                done: true,
                next_records_url: None,
                records: 2
            }
        );
        let b = d.finish_batch().unwrap();
        assert_eq!(b.num_rows(), 2);
        let rev = b.column(1).as_primitive::<Decimal128Type>();
        assert_eq!(rev.value(0), 1_234_567_800);
        assert!(rev.is_null(1));
        assert_eq!(b.column(2).as_primitive::<Int32Type>().value(0), 42);
        assert_eq!(b.column(3).as_primitive::<Float64Type>().value(0), 12.5);
        assert_eq!(
            b.column(4)
                .as_primitive::<TimestampMillisecondType>()
                .value(0),
            1709296496789
        );
        assert_eq!(
            b.column(5)
                .as_primitive::<arrow::datatypes::Date32Type>()
                .value(0),
            19782
        );
        assert_eq!(
            b.column(6)
                .as_primitive::<arrow::datatypes::Time32MillisecondType>()
                .value(0),
            37_800_000
        );
        let m = b.column(7).as_list::<i32>();
        assert_eq!(
            m.value(0)
                .as_string::<i32>()
                .iter()
                .flatten()
                .collect::<Vec<_>>(),
            ["A", "B", "C"]
        );
        assert!(m.is_null(1));
        assert!(b.column(8).as_boolean().value(0));
        let a = b.column(9).as_struct();
        assert_eq!(
            a.column_by_name("city")
                .unwrap()
                .as_string::<i32>()
                .value(0),
            "München"
        );
        assert_eq!(
            a.column_by_name("street")
                .unwrap()
                .as_string::<i32>()
                .value(0),
            "1 Main\nSt"
        );
        assert!(a.column_by_name("state").unwrap().is_null(0));
        assert!(a.is_null(1));
        assert_eq!(
            b.column(10)
                .as_struct()
                .column(1)
                .as_primitive::<Float64Type>()
                .value(0),
            -122.39
        );
        assert_eq!(b.column(11).as_string::<i32>().value(0), "x\"y");
        assert_eq!(b.column(11).as_string::<i32>().value(1), "5");
    }

    #[test]
    fn missing_keys_become_nulls_and_next_url_is_read() {
        let s = schema(&[
            ("Id", "id"),
            ("Name", "string"),
            ("LastModifiedDate", "datetime"),
        ]);
        let mut d = PageDecoder::new(&s);
        let info = d
            .decode_page(br#"{"totalSize":5,"done":false,"nextRecordsUrl":"/services/data/v62.0/query/01gX-2","records":[{"Id":"a"},{"Name":"n","Id":"b"}]}"#)
            .unwrap();
        assert_eq!(
            info.next_records_url.as_deref(),
            Some("/services/data/v62.0/query/01gX-2")
        );
        let b = d.finish_batch().unwrap();
        assert!(b.column(1).is_null(0));
        assert_eq!(b.column(1).as_string::<i32>().value(1), "n");
    }

    #[test]
    fn wrong_type_names_object_record_field_and_value() {
        let s = schema(&[("Id", "id"), ("N", "int"), ("LastModifiedDate", "datetime")]);
        let mut d = PageDecoder::new(&s);
        let e = d
            .decode_page(br#"{"totalSize":2,"done":true,"records":[{"Id":"001A","N":1},{"Id":"001B","N":42.5}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Account")
                && e.contains("Id 001B")
                && e.contains("field N")
                && e.contains("42.5"),
            "{e}"
        );
        let mut d = PageDecoder::new(&s);
        let e = d
            .decode_page(br#"{"totalSize":1,"done":true,"records":[{"Id":"001A","N":"seven"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"seven\""), "{e}");
    }

    #[test]
    fn truncated_page_is_retryable_malformed() {
        let s = schema(&[("Id", "id"), ("LastModifiedDate", "datetime")]);
        let mut d = PageDecoder::new(&s);
        let e = d
            .decode_page(br#"{"totalSize":2,"done":true,"records":[{"Id":"001A"},{"Id":"0"#)
            .unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert!(e.to_string().contains("cut short"));
    }

    #[test]
    fn envelope_fast_path_agrees_with_the_full_parse() {
        for page in [
            &br#"{"totalSize":5,"done":false,"nextRecordsUrl":"/services/data/v62.0/query/01gX-2","records":[{"Id":"a"}]}"#[..],
            br#"{"totalSize":1,"done":true,"records":[]}"#,
            br#"{"records":[],"totalSize":1,"done":true}"#,
            br#"{ "totalSize" : 3 , "done" : true , "records" : [ ] }"#,
        ] {
            assert_eq!(parse_envelope("A", page).unwrap(), parse_envelope_full("A", page).unwrap());
        }
        assert!(parse_envelope("A", br#"{"totalSize":1,"do"#).is_err());
    }

    #[test]
    fn null_id_is_an_error() {
        let s = schema(&[("Id", "id"), ("LastModifiedDate", "datetime")]);
        let mut d = PageDecoder::new(&s);
        assert!(d
            .decode_page(br#"{"totalSize":1,"done":true,"records":[{"Id":null}]}"#)
            .is_err());
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(
            parse_decimal("12345678901234567.12", 38, 2),
            Ok(1234567890123456712)
        );
        assert_eq!(parse_decimal("1.2345678E7", 18, 2), Ok(1234567800));
        assert_eq!(parse_decimal("-0.5", 18, 2), Ok(-50));
        assert_eq!(parse_decimal("100", 18, 0), Ok(100));
        assert!(parse_decimal("12.345", 18, 2).is_err());
        assert!(parse_decimal("12345.6", 5, 2).is_err());
        assert_eq!(parse_decimal("12.340", 18, 2), Ok(1234));
        assert_eq!(parse_integer("4.2E1"), Ok(42));
        assert_eq!(parse_integer("212009.0"), Ok(212009));
        assert!(parse_integer("42.5").is_err());
        assert!(parse_integer("abc").is_err());
    }

    #[test]
    fn times_and_dates_parse() {
        assert_eq!(parse_time_ms("00:00:00.001Z"), Some(1));
        assert_eq!(parse_time_ms("23:59:59"), Some(86_399_000));
        assert_eq!(parse_time_ms("24:00:00.000Z"), None);
        assert_eq!(parse_date_days("1970-01-01"), Some(0));
        assert_eq!(parse_date_days("2023-02-29"), None);
        assert_eq!(
            parse_datetime_ms("2024-03-01T12:34:56.000-0800"),
            Some(1709325296000)
        );
        assert_eq!(
            parse_datetime_ms("2024-03-01T12:34:56Z"),
            Some(1709296496000)
        );
    }

    proptest! {
        #[test]
        fn fast_datetime_path_agrees_with_chrono(ms in 0i64..4_102_444_800_000) {
            let text = crate::timefmt::sf_datetime(ms);
            prop_assert_eq!(parse_datetime_ms(&text), Some(ms));
        }

        #[test]
        fn decimal_text_round_trips(units in -999_999_999_999_999i64..999_999_999_999_999i64) {
            let text = format!("{}.{:02}", units / 100, (units % 100).abs());
            let text = if units < 0 && units / 100 == 0 { format!("-{text}") } else { text };
            prop_assert_eq!(parse_decimal(&text, 18, 2), Ok(units as i128));
        }
    }
}

/// Reads a page's envelope only: what the fetch loop needs to request the next page while the
/// previous one is decoded elsewhere. Salesforce writes `totalSize`, `done` and
/// `nextRecordsUrl` before `records`, so only the page's head is parsed; a page with another
/// key order falls back to a full (skipping) parse. A body cut short is still caught by the
/// decoder, which reads every byte.
pub fn parse_envelope(object: &str, page: &[u8]) -> Result<PageInfo, DecodeError> {
    let head = &page[..page.len().min(1024)];
    if let Some(pos) = memfind(head, b"\"records\":") {
        let mut small = head[..pos].to_vec();
        while matches!(small.last(), Some(b',' | b' ' | b'\n' | b'\r' | b'\t')) {
            small.pop();
        }
        small.push(b'}');
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Head {
            total_size: u64,
            done: bool,
            #[serde(default)]
            next_records_url: Option<String>,
        }
        if let Ok(h) = serde_json::from_slice::<Head>(&small) {
            return Ok(PageInfo {
                total_size: h.total_size,
                done: h.done,
                next_records_url: h.next_records_url,
                records: 0,
            });
        }
    }
    parse_envelope_full(object, page)
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The envelope by a full parse that skips the records.
pub fn parse_envelope_full(object: &str, page: &[u8]) -> Result<PageInfo, DecodeError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Envelope {
        #[serde(default)]
        total_size: u64,
        #[serde(default)]
        done: bool,
        #[serde(default)]
        next_records_url: Option<String>,
        records: IgnoredAny,
    }
    match serde_json::from_slice::<Envelope>(page) {
        Ok(e) => {
            let _ = e.records;
            Ok(PageInfo {
                total_size: e.total_size,
                done: e.done,
                next_records_url: e.next_records_url,
                records: 0,
            })
        }
        Err(e) => Err(DecodeError::Malformed {
            object: object.to_string(),
            message: e.to_string(),
            truncated: e.is_eof(),
        }),
    }
}

/// The fast reader against the visitor on generated pages: clean ones, and ones with every
/// kind of oddity (escapes, surrogates, control characters, wrong types, bad numbers, unknown,
/// missing, duplicate and reordered keys, whitespace, compound values, truncation).
#[cfg(test)]
mod fast_path_agrees_with_the_visitor {
    use super::*;
    use crate::salesforce::describe::ObjectDescribe;
    use proptest::prelude::*;

    const FIELDS: &[(&str, &str)] = &[
        ("Id", "id"),
        ("Name", "string"),
        ("AnnualRevenue", "currency"),
        ("N", "int"),
        ("Big", "long"),
        ("G", "double"),
        ("LastModifiedDate", "datetime"),
        ("D", "date"),
        ("T", "time"),
        ("M", "multipicklist"),
        ("B", "boolean"),
        ("A", "address"),
        ("L", "location"),
        ("J", "anyType"),
    ];

    fn schema() -> ObjectSchema {
        let d: ObjectDescribe = serde_json::from_value(serde_json::json!({
            "name": "Account",
            "fields": FIELDS.iter().map(|(n, t)| serde_json::json!({"name": n, "type": t, "label": n, "precision": 18, "scale": 2})).collect::<Vec<_>>(),
        }))
        .unwrap();
        let list: Vec<String> = FIELDS.iter().map(|(n, _)| n.to_string()).collect();
        ObjectSchema::resolve(&d, Some(&list), "LastModifiedDate").unwrap()
    }

    struct Gen {
        x: u64,
        /// Probability (per mille) of each oddity.
        odd: u64,
    }

    impl Gen {
        fn next(&mut self) -> u64 {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            self.x
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn odd(&mut self) -> bool {
            self.below(1000) < self.odd
        }
        fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
            v[self.below(v.len() as u64) as usize]
        }
        fn ws(&mut self, out: &mut String) {
            if self.odd() {
                out.push_str(self.pick(&[" ", "\n", "\t ", "\r\n  "]));
            }
        }
        fn string(&mut self, out: &mut String) {
            out.push('"');
            for _ in 0..self.below(12) {
                let piece = if self.odd() {
                    self.pick(&[
                        "\\n",
                        "\\\"",
                        "\\\\",
                        "\\/",
                        "\\u00e9",
                        "\\ud83d\\ude00",
                        "\\u20ac",
                        "\\t",
                        "\\ud800",
                        "\\udc00x",
                        "\\x",
                        "\u{1}",
                        "\\u12",
                        "\\b\\f\\r",
                    ])
                } else {
                    self.pick(&[
                        "a", "Z", "Acme ", "é", "€", "😀", "1", ";", " ", "/", "München",
                    ])
                };
                out.push_str(piece);
            }
            out.push('"');
        }
        fn number(&mut self, kind: &str, out: &mut String) {
            let n = if self.odd() {
                self.pick(&[
                    "01",
                    "1.",
                    "-",
                    "1e",
                    ".5",
                    "1E+2",
                    "-0",
                    "2147483648",
                    "1e400",
                    "12345678901234567890123",
                    "7.51181093E8",
                    "0.005",
                    "12.5",
                    "-3.5E-2",
                ])
            } else {
                match kind {
                    "int" => self.pick(&["0", "42", "-7", "2147483647"]),
                    "long" => self.pick(&["0", "42", "-7", "212009.0", "9007199254740993"]),
                    "currency" => self.pick(&[
                        "0",
                        "42",
                        "-7",
                        "12.5",
                        "1.2345678E7",
                        "99.99",
                        "7.51181093E8",
                    ]),
                    _ => self.pick(&[
                        "0",
                        "42",
                        "-7",
                        "12.5",
                        "1.2345678E7",
                        "212009.0",
                        "99.99",
                        "-3.5E-2",
                        "1e-300",
                    ]),
                }
            };
            out.push_str(n);
        }
        fn value(&mut self, kind: &str, out: &mut String) {
            if self.below(10) < 2 {
                out.push_str("null");
                return;
            }
            let kind = if self.odd() {
                self.pick(&["string", "number", "bool", "object", "array", "datetime"])
            } else {
                kind
            };
            match kind {
                "string" | "id" => self.string(out),
                "number" | "currency" | "int" | "long" | "double" => self.number(kind, out),
                "bool" | "boolean" => out.push_str(self.pick(&["true", "false"])),
                "datetime" => {
                    let v = if self.odd() {
                        self.pick(&[
                            "2024-13-01T00:00:00.000+0000",
                            "yesterday",
                            "2024-03-01T12:34:56Z",
                        ])
                    } else {
                        self.pick(&[
                            "2024-03-01T12:34:56.789+0000",
                            "2025-12-31T23:59:59.000+0000",
                        ])
                    };
                    out.push_str(&format!("\"{v}\""));
                }
                "date" => {
                    let v = if self.odd() {
                        "2023-02-29"
                    } else {
                        self.pick(&["2024-02-29", "1999-12-31"])
                    };
                    out.push_str(&format!("\"{v}\""));
                }
                "time" => {
                    let v = if self.odd() { "25:00" } else { "10:30:00.000Z" };
                    out.push_str(&format!("\"{v}\""));
                }
                "multipicklist" => out.push_str(self.pick(&["\"A;B;C\"", "\"One\"", "\"\""])),
                "address" | "location" | "object" => {
                    out.push('{');
                    let keys = [
                        "street",
                        "city",
                        "latitude",
                        "longitude",
                        "geocodeAccuracy",
                        "other",
                        "city",
                    ];
                    for k in 0..self.below(5) {
                        if k > 0 {
                            out.push(',');
                        }
                        let key = self.pick(&keys);
                        out.push_str(&format!("\"{key}\":"));
                        self.ws(out);
                        let kind = if key.starts_with('l') {
                            "double"
                        } else {
                            "string"
                        };
                        self.value(kind, out);
                    }
                    out.push('}');
                }
                "array" => {
                    out.push('[');
                    self.number("double", out);
                    out.push_str(",{\"x\":[]}]");
                }
                _ => self.string(out),
            }
        }
        fn record(&mut self, out: &mut String, id: usize) {
            out.push('{');
            self.ws(out);
            let mut first = true;
            let mut sep = |out: &mut String, g: &mut Gen| {
                if !first {
                    out.push(',');
                    g.ws(out);
                }
                first = false;
            };
            if self.below(4) != 0 {
                sep(out, self);
                out.push_str("\"attributes\":{\"type\":\"Account\",\"url\":\"/services/data/v62.0/sobjects/Account/x\"}");
            }
            let mut order: Vec<usize> = (0..FIELDS.len()).collect();
            if self.odd() {
                let (a, b) = (
                    self.below(order.len() as u64) as usize,
                    self.below(order.len() as u64) as usize,
                );
                order.swap(a, b);
            }
            for &f in &order {
                let (name, kind) = FIELDS[f];
                if self.odd() && name != "Id" {
                    continue; // missing key
                }
                sep(out, self);
                out.push_str(&format!("\"{name}\""));
                self.ws(out);
                out.push(':');
                self.ws(out);
                if name == "Id" && !self.odd() {
                    out.push_str(&format!("\"001{id:015}\""));
                } else {
                    self.value(kind, out);
                }
                if self.odd() {
                    sep(out, self);
                    let extra = self.pick(&[
                        "\"Owner\":{\"Name\":\"n\",\"a\":[1,2,{}]}",
                        "\"N\":7",
                        "\"Unknown__c\":-1.5e3",
                        "\"Name\":\"dup\"",
                    ]);
                    out.push_str(extra);
                }
            }
            out.push('}');
        }
        fn page(&mut self, records: usize) -> String {
            let mut out = String::from("{");
            let mut head = vec![
                format!("\"totalSize\":{}", records),
                "\"done\":false".to_string(),
                "\"nextRecordsUrl\":\"/services/data/v62.0/query/01gx-2000\"".to_string(),
            ];
            if self.odd() {
                head.swap(0, 2);
                head.push("\"extra\":[{\"a\":null}]".into());
            }
            for h in head {
                out.push_str(&h);
                out.push(',');
                self.ws(&mut out);
            }
            out.push_str("\"records\":[");
            for r in 0..records {
                if r > 0 {
                    out.push(',');
                }
                self.ws(&mut out);
                self.record(&mut out, r);
            }
            out.push_str("]}");
            self.ws(&mut out);
            if self.below(1000) < self.odd / 4 {
                let cut = self.below(out.len() as u64) as usize;
                let cut = (0..=cut)
                    .rev()
                    .find(|&c| out.is_char_boundary(c))
                    .unwrap_or(0);
                out.truncate(cut);
            }
            out
        }
    }

    fn equal_outcomes(page: &str) -> Result<bool, TestCaseError> {
        let s = schema();
        let mut fast = PageDecoder::new(&s);
        let mut visitor = PageDecoder::new(&s).without_fast_reader();
        // Rows before the page: a declined page must keep them (rewind).
        let warm = Gen { x: 7, odd: 0 }.page(3);
        fast.decode_page(warm.as_bytes()).unwrap();
        visitor.decode_page(warm.as_bytes()).unwrap();
        let accepted = fast::decode_page(&mut PageDecoder::new(&s), page).is_ok();
        match (
            fast.decode_page(page.as_bytes()),
            visitor.decode_page(page.as_bytes()),
        ) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(a, b);
                // Twice: a second declined page rewinds over rows already set aside.
                let (a, b) = (
                    fast.decode_page(page.as_bytes()).unwrap(),
                    visitor.decode_page(page.as_bytes()).unwrap(),
                );
                prop_assert_eq!(a, b);
                prop_assert_eq!(fast.buffered_rows(), visitor.buffered_rows());
                let (a, b) = (
                    fast.finish_batch().unwrap(),
                    visitor.finish_batch().unwrap(),
                );
                prop_assert_eq!(a, b);
            }
            (Err(a), Err(b)) => {
                prop_assert!(
                    !accepted,
                    "the fast reader accepted a page the visitor rejects: {b}"
                );
                prop_assert_eq!(a.to_string(), b.to_string());
                prop_assert_eq!(a.is_retryable(), b.is_retryable());
            }
            (a, b) => prop_assert!(false, "fast {a:?} vs visitor {b:?} on {page}"),
        }
        Ok(accepted)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn on_odd_pages(seed in 1u64.., odd in 0u64..300, records in 0usize..6) {
            let page = Gen { x: seed, odd }.page(records);
            equal_outcomes(&page)?;
        }

        #[test]
        fn on_clean_pages_and_takes_them(seed in 1u64.., records in 0usize..20) {
            let page = Gen { x: seed, odd: 0 }.page(records);
            prop_assert!(equal_outcomes(&page)?, "declined a clean page: {}", page);
        }
    }
}
