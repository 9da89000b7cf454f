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

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::schema::ObjectSchema;

mod builder;
pub mod csv;
mod fast;
#[cfg(test)]
mod fast_path_agrees_with_the_visitor;
mod values;

use self::builder::{finish_builders, Builder, StructColumn};
pub use self::csv::CsvDecoder;
pub use self::values::{
    parse_date_days, parse_datetime_ms, parse_decimal, parse_f64, parse_integer, parse_time_ms,
    time_text,
};

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
            builders: schema.columns.iter().map(Builder::for_column).collect(),
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
                Some(t) => b.append_value(time_text(t, &mut [0; 12])),
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
            match s.keys.iter().position(|k| **k == *key) {
                Some(i) if s.children[i].len() == row => {
                    let child_name = format!("{}.{}", self.name, s.keys[i]);
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
        match &*self.b {
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
            Builder::Struct(s) if s.relationship => "parent record (relationship)",
            Builder::Struct(_) => "compound (address/location)",
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

#[cfg(test)]
mod tests;
