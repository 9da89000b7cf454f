//! Bulk API 2.0 CSV results → Arrow, with the REST decoder's builders and value rules.
//!
//! Bytes are fed as they arrive (a page is never held whole); `csv-core` tokenizes them
//! (quotes, doubled quotes, commas and newlines inside values). Every page starts with its own
//! header row, which maps its columns to the schema's: a compound column (address, location)
//! is assembled from its component columns into the struct a REST page gives, null when no
//! component has a value; a relationship column from its paths' columns (`Owner.Name`), null
//! when the parent's Id column (selected for this) is empty — an empty lookup. An empty field
//! is null (Bulk cannot tell an empty text from null; Salesforce stores empty text as null
//! anyway).

use std::collections::HashMap;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use csv_core::{ReadRecordResult, Reader};

use super::{
    parse_date_days, parse_datetime_ms, parse_decimal, parse_f64, parse_integer, parse_time_ms,
    time_text, Builder, DecodeError,
};
use crate::schema::{Column, ObjectSchema};

/// Where a CSV column's values go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A builder, by its path: the column, then a child index per struct level. A non-empty
    /// value marks the struct node given (a compound: any component makes it non-null).
    Value(Box<[usize]>, Option<usize>),
    /// A relationship's parent Id: a non-empty value makes struct node `.0` non-null.
    Presence(usize),
}

/// The builder at `path` (a column, then struct children).
fn builder_at<'a>(builders: &'a mut [Builder], path: &[usize]) -> &'a mut Builder {
    let mut b = &mut builders[path[0]];
    for &j in &path[1..] {
        b = match b {
            Builder::Struct(s) => &mut s.children[j],
            _ => unreachable!("paths are built from the schema's struct columns"),
        };
    }
    b
}

/// Maps every CSV header a column needs to its targets, and lists its struct nodes children
/// first (so a row finishes inner structs before outer ones).
fn plan_column(
    c: &Column,
    prefix: &str,
    path: Vec<usize>,
    by_name: &mut HashMap<String, Vec<Target>>,
    needed: &mut Vec<(Target, String)>,
    nodes: &mut Vec<Box<[usize]>>,
) {
    fn add(
        by_name: &mut HashMap<String, Vec<Target>>,
        needed: &mut Vec<(Target, String)>,
        name: String,
        t: Target,
    ) {
        by_name
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(t.clone());
        needed.push((t, name));
    }
    match &c.parent {
        Some(p) => {
            let inner = format!("{prefix}{}.", c.name);
            for (j, f) in p.fields.iter().enumerate() {
                let mut child = path.clone();
                child.push(j);
                plan_column(f, &inner, child, by_name, needed, nodes);
            }
            nodes.push(path.into_boxed_slice());
            let presence = Target::Presence(nodes.len() - 1);
            add(by_name, needed, format!("{inner}Id"), presence);
        }
        None if c.components.is_empty() => {
            let t = Target::Value(path.into(), None);
            add(by_name, needed, format!("{prefix}{}", c.name), t);
        }
        None => {
            let node = nodes.len();
            for (k, name) in &c.components {
                let mut child = path.clone();
                child.push(*k);
                let t = Target::Value(child.into(), Some(node));
                add(by_name, needed, format!("{prefix}{name}"), t);
            }
            nodes.push(path.into_boxed_slice());
        }
    }
}

/// Decodes the CSV results pages of one object's Bulk job into batches of its schema.
pub struct CsvDecoder {
    object: String,
    builders: Vec<Builder>,
    schema: SchemaRef,
    written: usize,
    /// Lower-cased CSV header name → where its values go.
    by_name: HashMap<String, Vec<Target>>,
    /// Every target a header must provide.
    needed: Vec<(Target, String)>,
    /// The current page's columns.
    targets: Vec<Vec<Target>>,
    id_field: Option<usize>,
    /// The paths of the struct columns (compounds, relationships) whose validity each row
    /// sets, inner ones first.
    nodes: Vec<Box<[usize]>>,
    /// Per struct node: whether the current row made it non-null.
    node_seen: Vec<bool>,
    rdr: Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
    outlen: usize,
    endlen: usize,
    header_pending: bool,
    /// Bytes fed for the current page (an empty body is an empty page, header or not).
    page_bytes: usize,
    page_rows: u64,
    rows: usize,
}

impl std::fmt::Debug for CsvDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvDecoder")
            .field("object", &self.object)
            .field("rows", &self.rows)
            .finish()
    }
}

impl CsvDecoder {
    /// A decoder for the columns of `schema` (only the written ones come out).
    pub fn new(schema: &ObjectSchema) -> Self {
        let mut by_name: HashMap<String, Vec<Target>> = HashMap::new();
        let mut needed = Vec::new();
        let mut nodes = Vec::new();
        for (i, c) in schema.columns.iter().enumerate() {
            plan_column(c, "", vec![i], &mut by_name, &mut needed, &mut nodes);
        }
        Self {
            object: schema.object.clone(),
            builders: schema.columns.iter().map(Builder::for_column).collect(),
            schema: schema.arrow.clone(),
            written: schema.written,
            by_name,
            needed,
            targets: Vec::new(),
            id_field: None,
            node_seen: vec![false; nodes.len()],
            nodes,
            rdr: Reader::new(),
            out: vec![0; 64 * 1024],
            ends: vec![0; schema.columns.len() * 2 + 16],
            outlen: 0,
            endlen: 0,
            header_pending: true,
            page_bytes: 0,
            page_rows: 0,
            rows: 0,
        }
    }

    /// Rows buffered since the last [`CsvDecoder::finish_batch`].
    pub fn buffered_rows(&self) -> usize {
        self.rows
    }

    /// Starts a results page (its first row is a header).
    pub fn start_page(&mut self) {
        self.rdr.reset();
        self.outlen = 0;
        self.endlen = 0;
        self.header_pending = true;
        self.page_bytes = 0;
        self.page_rows = 0;
    }

    /// Feeds the next bytes of the current page.
    pub fn feed(&mut self, input: &[u8]) -> Result<(), DecodeError> {
        self.feed_until(input, usize::MAX).map(|_| ())
    }

    /// Feeds bytes of the current page until `rows` rows are buffered (or the bytes run
    /// out); returns how many bytes it took. A caller that finishes a batch whenever this
    /// stops holds at most `rows` decoded rows, however large the network's chunks are.
    pub fn feed_until(&mut self, input: &[u8], rows: usize) -> Result<usize, DecodeError> {
        let taken = self.feed_inner(input, rows)?;
        self.page_bytes += taken;
        Ok(taken)
    }

    fn feed_inner(&mut self, mut input: &[u8], rows: usize) -> Result<usize, DecodeError> {
        let total = input.len();
        loop {
            let (res, nin, nout, nend) = self.rdr.read_record(
                input,
                &mut self.out[self.outlen..],
                &mut self.ends[self.endlen..],
            );
            input = &input[nin..];
            self.outlen += nout;
            self.endlen += nend;
            match res {
                ReadRecordResult::InputEmpty => {
                    if input.is_empty() {
                        return Ok(total);
                    }
                }
                ReadRecordResult::OutputFull => {
                    let n = self.out.len() * 2;
                    self.out.resize(n, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                ReadRecordResult::Record => {
                    self.record()?;
                    self.outlen = 0;
                    self.endlen = 0;
                    if self.buffered_rows() >= rows {
                        return Ok(total - input.len());
                    }
                }
                ReadRecordResult::End => return Ok(total - input.len()),
            }
        }
    }

    /// Ends the current page; returns the data rows it held.
    pub fn end_page(&mut self) -> Result<u64, DecodeError> {
        // empty input tells csv-core the page ended (a last row without a newline)
        self.feed(&[])?;
        if self.header_pending && self.page_bytes > 0 {
            return Err(self.malformed("the results page has no header row", true));
        }
        Ok(self.page_rows)
    }

    fn malformed(&self, message: impl Into<String>, truncated: bool) -> DecodeError {
        DecodeError::Malformed {
            object: self.object.clone(),
            message: message.into(),
            truncated,
        }
    }

    fn record(&mut self) -> Result<(), DecodeError> {
        let ends = &self.ends[..self.endlen];
        let text =
            std::str::from_utf8(&self.out[..self.outlen]).map_err(|e| DecodeError::Malformed {
                object: self.object.clone(),
                message: format!("a results row is not valid UTF-8: {e}"),
                truncated: false,
            })?;
        if self.header_pending {
            let mut targets = Vec::with_capacity(ends.len());
            let mut start = 0;
            for &end in ends {
                let name = &text[start..end];
                start = end;
                targets.push(
                    self.by_name
                        .get(&name.to_ascii_lowercase())
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            for (t, name) in &self.needed {
                if !targets.iter().any(|ts| ts.contains(t)) {
                    return Err(
                        self.malformed(format!("the results header has no column {name}"), false)
                    );
                }
            }
            self.id_field = targets.iter().position(|ts| {
                ts.iter().any(|t| {
                    matches!(t, Target::Value(p, _) if p.len() == 1 && self.schema_name(p[0]) == Some("Id"))
                })
            });
            self.targets = targets;
            self.header_pending = false;
            return Ok(());
        }
        if ends.len() != self.targets.len() {
            // a page cut short ends in a partial row
            return Err(self.malformed(
                format!(
                    "a results row has {} fields where the header has {} (the page was cut short?)",
                    ends.len(),
                    self.targets.len()
                ),
                true,
            ));
        }
        let row = self.rows;
        let mut start = 0;
        for (k, &end) in ends.iter().enumerate() {
            let value = &text[start..end];
            start = end;
            for t in &self.targets[k] {
                let (path, node) = match t {
                    Target::Presence(n) => {
                        if !value.is_empty() {
                            self.node_seen[*n] = true;
                        }
                        continue;
                    }
                    Target::Value(path, node) => (path, node),
                };
                let b = builder_at(&mut self.builders, path);
                if b.len() > row {
                    continue; // the same component listed twice
                }
                if !value.is_empty() {
                    if let Some(n) = node {
                        self.node_seen[*n] = true;
                    }
                }
                if let Err((expected, reason)) = append_text(b, value) {
                    let record = self
                        .id_field
                        .map(|f| {
                            let a = if f == 0 { 0 } else { ends[f - 1] };
                            format!("Id {}", &text[a..ends[f]])
                        })
                        .unwrap_or_else(|| format!("#{}", self.page_rows + 1));
                    let mut v = value.to_string();
                    if v.len() > 200 {
                        let cut = (0..=200)
                            .rev()
                            .find(|i| v.is_char_boundary(*i))
                            .unwrap_or(0);
                        v.truncate(cut);
                        v.push('…');
                    }
                    return Err(DecodeError::BadValue {
                        object: self.object.clone(),
                        record,
                        field: self.column_name(path),
                        value: format!("{v:?}"),
                        expected: expected.to_string(),
                        reason,
                    });
                }
            }
        }
        for (n, node) in self.nodes.iter().enumerate() {
            if let Builder::Struct(s) = builder_at(&mut self.builders, node) {
                for c in s.children.iter_mut() {
                    if c.len() == row {
                        c.append_null();
                    }
                }
                if std::mem::take(&mut self.node_seen[n]) {
                    s.validity.append_non_null();
                } else {
                    s.validity.append_null();
                }
            }
        }
        self.rows += 1;
        self.page_rows += 1;
        Ok(())
    }

    fn schema_name(&self, i: usize) -> Option<&str> {
        self.schema.fields().get(i).map(|f| f.name().as_str())
    }

    /// `Owner.Name`, `BillingAddress.city`: the column and struct keys along `path`.
    fn column_name(&self, path: &[usize]) -> String {
        let mut name = self
            .schema
            .fields()
            .get(path[0])
            .map(|f| f.name().to_string())
            .unwrap_or_else(|| format!("column {}", path[0]));
        let mut b = &self.builders[path[0]];
        for &j in &path[1..] {
            if let Builder::Struct(s) = b {
                name.push('.');
                name.push_str(&s.keys[j]);
                b = &s.children[j];
            }
        }
        name
    }

    /// Takes the buffered rows as a batch of the written columns.
    pub fn finish_batch(&mut self) -> Result<RecordBatch, DecodeError> {
        let arrays = super::finish_builders(&mut self.builders, self.written, &self.object)?;
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| DecodeError::Arrow {
            object: self.object.clone(),
            message: e.to_string(),
        })
    }
}

/// Appends one CSV value (empty = null) with the REST decoder's value rules.
fn append_text(b: &mut Builder, v: &str) -> Result<(), (&'static str, String)> {
    if v.is_empty() {
        b.append_null();
        return Ok(());
    }
    match b {
        Builder::Utf8(b) | Builder::Json(b) => b.append_value(v),
        Builder::Bool(b) => match v {
            "true" => b.append_value(true),
            "false" => b.append_value(false),
            _ => return Err(("boolean", "expected true or false".into())),
        },
        Builder::Int32(b) => {
            let n = parse_integer(v).map_err(|r| ("int", r))?;
            b.append_value(
                i32::try_from(n)
                    .map_err(|_| ("int", "out of range for a 32-bit integer".into()))?,
            );
        }
        Builder::Int64(b) => {
            let n = parse_integer(v).map_err(|r| ("long", r))?;
            b.append_value(
                i64::try_from(n)
                    .map_err(|_| ("long", "out of range for a 64-bit integer".into()))?,
            );
        }
        Builder::Float64(b) => {
            b.append_value(parse_f64(v).ok_or(("double", "not a number".to_string()))?)
        }
        Builder::Decimal(b, p, s) => {
            b.append_value(parse_decimal(v, *p, *s).map_err(|r| ("currency", r))?)
        }
        Builder::Date(b) => {
            b.append_value(parse_date_days(v).ok_or(("date", "expected YYYY-MM-DD".to_string()))?)
        }
        Builder::Timestamp(b) => b.append_value(parse_datetime_ms(v).ok_or((
            "datetime",
            "expected e.g. 2024-03-01T12:34:56.000Z".to_string(),
        ))?),
        Builder::Time(b) => {
            let ms = parse_time_ms(v).ok_or(("time", "expected HH:MM:SS.sssZ".to_string()))?;
            b.append_value(time_text(ms, &mut [0; 12]))
        }
        Builder::List(b) => {
            for item in v.split(';') {
                b.values().append_value(item);
            }
            b.append(true);
        }
        Builder::Struct(_) => {
            return Err((
                "compound (address/location)",
                "a compound comes from its component columns".into(),
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
