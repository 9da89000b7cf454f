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
mod tests {
    use super::*;
    use crate::decode::PageDecoder;
    use crate::salesforce::describe::ObjectDescribe;
    use arrow::array::Array;
    use proptest::prelude::*;

    /// Account with one field of every type, a compound address with its components, and
    /// a custom location.
    fn schema() -> ObjectSchema {
        let mut fields: Vec<serde_json::Value> = [
            ("Id", "id"),
            ("Name", "string"),
            ("Flag__c", "boolean"),
            ("Count__c", "int"),
            ("Big__c", "long"),
            ("Ratio__c", "double"),
            ("Amount__c", "currency"),
            ("Day__c", "date"),
            ("LastModifiedDate", "datetime"),
            ("At__c", "time"),
            ("Tags__c", "multipicklist"),
            ("Any__c", "anyType"),
            ("BillingAddress", "address"),
            ("Spot__c", "location"),
        ]
        .iter()
        .map(|(n, t)| serde_json::json!({"name": n, "type": t, "label": n, "precision": 18, "scale": 2}))
        .collect();
        for (n, t) in [
            ("BillingStreet", "textarea"),
            ("BillingCity", "string"),
            ("BillingState", "string"),
            ("BillingPostalCode", "string"),
            ("BillingCountry", "string"),
            ("BillingLatitude", "double"),
            ("BillingLongitude", "double"),
            ("BillingGeocodeAccuracy", "picklist"),
        ] {
            fields.push(
                serde_json::json!({"name": n, "type": t, "compoundFieldName": "BillingAddress"}),
            );
        }
        for n in ["Spot__Latitude__s", "Spot__Longitude__s"] {
            fields.push(
                serde_json::json!({"name": n, "type": "double", "compoundFieldName": "Spot__c"}),
            );
        }
        for (n, to) in [("OwnerId", "User"), ("ParentId", "Account")] {
            fields.push(
                serde_json::json!({"name": n, "type": "reference", "referenceTo": [to],
                "relationshipName": n.trim_end_matches("Id")}),
            );
        }
        let d: ObjectDescribe =
            serde_json::from_value(serde_json::json!({"name": "Account", "fields": fields}))
                .unwrap();
        let mut known = crate::schema::Describes::default();
        known.insert(std::sync::Arc::new(d.clone()));
        known.insert(std::sync::Arc::new(crate::schema::fixtures::user()));
        let list: Vec<String> = [
            "Id",
            "Name",
            "Flag__c",
            "Count__c",
            "Big__c",
            "Ratio__c",
            "Amount__c",
            "Day__c",
            "LastModifiedDate",
            "At__c",
            "Tags__c",
            "Any__c",
            "BillingAddress",
            "Spot__c",
            "Owner.Name",
            "Owner.IsActive",
            "Parent.Owner.Name",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        ObjectSchema::resolve(&d, Some(&list), "LastModifiedDate", &known).unwrap()
    }

    /// One record's values as Salesforce text (None = null), in `schema()` column order, with
    /// the address and location as their components.
    #[derive(Debug, Clone)]
    struct Rec {
        name: Option<String>,
        flag: Option<bool>,
        count: Option<i32>,
        big: Option<i64>,
        ratio: Option<String>,
        amount: Option<String>,
        day: Option<String>,
        at: Option<String>,
        tags: Option<String>,
        street: Option<String>,
        city: Option<String>,
        lat: Option<String>,
        spot: Option<(String, String)>,
        /// `Owner.Name`, `Owner.IsActive`; None: an empty lookup.
        owner: Option<(Option<String>, Option<bool>)>,
        /// `Parent.Owner.Name`: no parent, a parent without owner, or the owner's name.
        parent: Option<Option<Option<String>>>,
        ms: i64,
    }

    impl Rec {
        fn empty(ms: i64) -> Self {
            Rec {
                name: None,
                flag: None,
                count: None,
                big: None,
                ratio: None,
                amount: None,
                day: None,
                at: None,
                tags: None,
                street: None,
                city: None,
                lat: None,
                spot: None,
                owner: None,
                parent: None,
                ms,
            }
        }
    }

    fn json_str(v: &Option<String>) -> String {
        v.as_ref()
            .map(|s| serde_json::to_string(s).unwrap())
            .unwrap_or_else(|| "null".into())
    }

    fn json_page(recs: &[Rec]) -> String {
        let mut out = format!("{{\"totalSize\":{},\"done\":true,\"records\":[", recs.len());
        for (i, r) in recs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let addr = if r.street.is_none() && r.city.is_none() && r.lat.is_none() {
                "null".to_string()
            } else {
                format!(
                    "{{\"street\":{},\"city\":{},\"state\":null,\"postalCode\":null,\"country\":null,\"latitude\":{},\"longitude\":null,\"geocodeAccuracy\":null}}",
                    json_str(&r.street),
                    json_str(&r.city),
                    r.lat.clone().unwrap_or_else(|| "null".into())
                )
            };
            let spot = r
                .spot
                .as_ref()
                .map(|(a, b)| format!("{{\"latitude\":{a},\"longitude\":{b}}}"))
                .unwrap_or_else(|| "null".into());
            let ts = sf_text(r.ms, "+0000");
            let user =
                r#""attributes":{"type":"User","url":"/services/data/v62.0/sobjects/User/005"}"#;
            let owner = match &r.owner {
                None => "null".to_string(),
                Some((n, a)) => format!(
                    "{{{user},\"Name\":{},\"IsActive\":{}}}",
                    json_str(n),
                    a.map(|b| b.to_string()).unwrap_or_else(|| "null".into())
                ),
            };
            let parent = match &r.parent {
                None => "null".to_string(),
                Some(o) => format!(
                    "{{\"attributes\":{{\"type\":\"Account\"}},\"Owner\":{}}}",
                    o.as_ref()
                        .map(|n| format!("{{{user},\"Name\":{}}}", json_str(n)))
                        .unwrap_or_else(|| "null".into())
                ),
            };
            out.push_str(&format!(
                "{{\"attributes\":{{\"type\":\"Account\"}},\"Id\":\"001{i:015}\",\"Name\":{},\"Flag__c\":{},\"Count__c\":{},\"Big__c\":{},\"Ratio__c\":{},\"Amount__c\":{},\"Day__c\":{},\"LastModifiedDate\":\"{ts}\",\"At__c\":{},\"Tags__c\":{},\"Any__c\":{},\"BillingAddress\":{addr},\"Spot__c\":{spot},\"Owner\":{owner},\"Parent\":{parent}}}",
                json_str(&r.name),
                r.flag.map(|b| b.to_string()).unwrap_or_else(|| "null".into()),
                r.count.map(|b| b.to_string()).unwrap_or_else(|| "null".into()),
                r.big.map(|b| b.to_string()).unwrap_or_else(|| "null".into()),
                r.ratio.clone().unwrap_or_else(|| "null".into()),
                r.amount.clone().unwrap_or_else(|| "null".into()),
                json_str(&r.day),
                json_str(&r.at),
                json_str(&r.tags),
                json_str(&r.name),
            ));
        }
        out.push_str("]}");
        out
    }

    fn q(v: &Option<String>) -> String {
        format!("\"{}\"", v.clone().unwrap_or_default().replace('"', "\"\""))
    }

    /// A CSV page as Bulk sends it: header, every field quoted, columns in another order than
    /// the schema's (the header decides).
    fn csv_page(recs: &[Rec]) -> String {
        let mut out = String::from("\"Name\",\"Id\",\"Flag__c\",\"Count__c\",\"Big__c\",\"Ratio__c\",\"Amount__c\",\"Day__c\",\"LastModifiedDate\",\"At__c\",\"Tags__c\",\"Any__c\",\"BillingStreet\",\"BillingCity\",\"BillingState\",\"BillingPostalCode\",\"BillingCountry\",\"BillingLatitude\",\"BillingLongitude\",\"BillingGeocodeAccuracy\",\"Spot__Latitude__s\",\"Spot__Longitude__s\",\"Owner.Name\",\"Owner.IsActive\",\"Owner.Id\",\"Parent.Owner.Name\",\"Parent.Owner.Id\",\"Parent.Id\"\n");
        for (i, r) in recs.iter().enumerate() {
            let ts = sf_text(r.ms, "Z");
            let cells = [
                q(&r.name),
                format!("\"001{i:015}\""),
                q(&r.flag.map(|b| b.to_string())),
                q(&r.count.map(|b| b.to_string())),
                q(&r.big.map(|b| b.to_string())),
                q(&r.ratio),
                q(&r.amount),
                q(&r.day),
                format!("\"{ts}\""),
                q(&r.at),
                q(&r.tags),
                q(&r.name),
                q(&r.street),
                q(&r.city),
                "\"\"".into(),
                "\"\"".into(),
                "\"\"".into(),
                q(&r.lat),
                "\"\"".into(),
                "\"\"".into(),
                q(&r.spot.as_ref().map(|s| s.0.clone())),
                q(&r.spot.as_ref().map(|s| s.1.clone())),
                q(&r.owner.as_ref().and_then(|o| o.0.clone())),
                q(&r.owner.as_ref().and_then(|o| o.1.map(|b| b.to_string()))),
                q(&r.owner.as_ref().map(|_| "005000000000000001".to_string())),
                q(&r.parent.as_ref().and_then(|p| p.clone().flatten())),
                q(&r.parent
                    .as_ref()
                    .and_then(|p| p.as_ref().map(|_| "005000000000000002".to_string()))),
                q(&r.parent.as_ref().map(|_| "001000000000000009".to_string())),
            ];
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    fn decode_json(page: &str) -> RecordBatch {
        let s = schema();
        let mut d = PageDecoder::new(&s);
        d.decode_page(page.as_bytes()).unwrap();
        d.finish_batch().unwrap()
    }

    /// A datetime as Salesforce writes it: `+0000` in REST JSON, `Z` in Bulk CSV.
    fn sf_text(ms: i64, zone: &str) -> String {
        let t = chrono::DateTime::from_timestamp_millis(ms).unwrap();
        format!("{}{zone}", t.format("%Y-%m-%dT%H:%M:%S%.3f"))
    }

    fn decode_csv(pages: &[String], step: usize) -> RecordBatch {
        let s = schema();
        let mut d = CsvDecoder::new(&s);
        for p in pages {
            d.start_page();
            for c in p.as_bytes().chunks(step.max(1)) {
                d.feed(c).unwrap();
            }
            d.end_page().unwrap();
        }
        d.finish_batch().unwrap()
    }

    /// Non-empty text with what breaks CSV: quotes, commas, CR/LF, non-ASCII.
    fn awkward() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("\"".to_string()),
                Just(",".to_string()),
                Just("\r\n".to_string()),
                Just("\n".to_string()),
                Just("é".to_string()),
                Just("日本".to_string()),
                Just("😀".to_string()),
                Just(" ".to_string()),
                "[a-z0-9]{1,5}",
            ],
            1..6,
        )
        .prop_map(|v| v.concat())
    }

    fn rec() -> impl Strategy<Value = Rec> {
        let num = prop_oneof![
            Just("1.0".to_string()),
            Just("9.9213206E7".to_string()),
            Just("-0.001".to_string()),
            Just("1.2345678E-5".to_string()),
            (-1_000_000i64..1_000_000).prop_map(|v| format!("{}.{}", v / 100, (v % 100).abs())),
        ];
        (
            (
                proptest::option::of(awkward()),
                proptest::option::of(any::<bool>()),
                proptest::option::of(any::<i32>()),
                proptest::option::of(any::<i64>()),
                proptest::option::of(num.clone()),
                proptest::option::of(
                    (0i64..10_000_000).prop_map(|c| format!("{}.{:02}", c / 100, c % 100)),
                ),
                proptest::option::of((0i64..20_000).prop_map(|d| {
                    chrono::DateTime::from_timestamp(d * 86_400, 0)
                        .unwrap()
                        .format("%Y-%m-%d")
                        .to_string()
                })),
            ),
            (
                proptest::option::of((0i32..86_400_000).prop_map(|ms| {
                    format!(
                        "{:02}:{:02}:{:02}.{:03}Z",
                        ms / 3_600_000,
                        ms / 60_000 % 60,
                        ms / 1000 % 60,
                        ms % 1000
                    )
                })),
                proptest::option::of(
                    proptest::collection::vec("[A-Za-z ]{1,6}", 1..4).prop_map(|v| v.join(";")),
                ),
                proptest::option::of(awkward()),
                proptest::option::of(awkward()),
                proptest::option::of(num.clone()),
                proptest::option::of((num.clone(), num)),
                0i64..4_000_000_000_000,
            ),
            (
                proptest::option::of((
                    proptest::option::of(awkward()),
                    proptest::option::of(any::<bool>()),
                )),
                proptest::option::of(proptest::option::of(proptest::option::of(awkward()))),
            ),
        )
            .prop_map(
                |(
                    (name, flag, count, big, ratio, amount, day),
                    (at, tags, street, city, lat, spot, ms),
                    (owner, parent),
                )| Rec {
                    owner,
                    parent,
                    name,
                    flag,
                    count,
                    big,
                    ratio,
                    amount,
                    day,
                    at,
                    tags,
                    street,
                    city,
                    lat,
                    spot,
                    ms,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// The same records through a REST JSON page and through Bulk CSV pages (split at
        /// any byte, several pages with a header each) give identical Arrow batches.
        #[test]
        fn csv_and_json_decode_to_the_same_batch(recs in proptest::collection::vec(rec(), 1..12), step in 1usize..64, cut in 0usize..12) {
            let json = decode_json(&json_page(&recs));
            let cut = cut.min(recs.len());
            let pages = vec![csv_page(&recs[..cut]), csv_page(&recs[cut..])];
            // Ids restart per page in csv_page: renumber the second page's by decoding both halves
            let first = decode_csv(&pages[..1], step);
            let second = decode_csv(&pages[1..], step);
            let json_first = json.slice(0, cut);
            prop_assert_eq!(&first, &json_first);
            let json_second = decode_json(&json_page(&recs[cut..]));
            prop_assert_eq!(&second, &json_second);
        }
    }

    #[test]
    fn pages_join_and_feeding_a_byte_at_a_time_changes_nothing() {
        let recs: Vec<Rec> = (0..5)
            .map(|i| Rec {
                name: Some(format!("a \"quoted\", name\r\nline {i}")),
                flag: Some(i % 2 == 0),
                count: Some(i),
                big: None,
                ratio: Some("9.9213206E7".into()),
                amount: Some("12.50".into()),
                day: Some("2024-02-29".into()),
                at: Some("10:30:00.000Z".into()),
                tags: Some("A;B".into()),
                street: (i % 2 == 1).then(|| "1 Main St\nSuite 2".to_string()),
                city: None,
                lat: None,
                spot: (i == 3).then(|| ("1.5".to_string(), "-2.25".to_string())),
                owner: (i != 2).then(|| (Some(format!("Owner \"{i}\", Jr.")), None)),
                parent: (i > 1).then(|| (i > 2).then(|| (i == 4).then(|| "Boss".to_string()))),
                ms: 1_700_000_000_000 + i as i64,
            })
            .collect();
        let page = csv_page(&recs);
        let whole = decode_csv(std::slice::from_ref(&page), usize::MAX);
        let bytewise = decode_csv(std::slice::from_ref(&page), 1);
        assert_eq!(whole, bytewise);
        assert_eq!(whole, decode_json(&json_page(&recs)));
        let two = decode_csv(&[page.clone(), page.clone()], 7);
        assert_eq!(two.num_rows(), 10);
    }

    #[test]
    fn feed_until_stops_at_the_row_limit_and_loses_nothing() {
        let recs: Vec<Rec> = (0..7)
            .map(|i| Rec {
                name: Some(format!("row \"{i}\",\r\nnext")),
                ..Rec::empty(i)
            })
            .collect();
        let page = csv_page(&recs);
        let s = schema();
        let mut d = CsvDecoder::new(&s);
        d.start_page();
        let mut batches = Vec::new();
        let mut rest = page.as_bytes();
        while !rest.is_empty() {
            rest = &rest[d.feed_until(rest, 2).unwrap()..];
            assert!(d.buffered_rows() <= 2, "one chunk decoded past the limit");
            if d.buffered_rows() == 2 {
                batches.push(d.finish_batch().unwrap());
            }
        }
        assert_eq!(d.end_page().unwrap(), 7);
        batches.push(d.finish_batch().unwrap());
        assert_eq!(batches.len(), 4);
        let joined = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        assert_eq!(joined, decode_csv(&[page], usize::MAX));
    }

    #[test]
    fn empty_and_quoted_empty_are_null_and_a_missing_header_column_is_an_error() {
        let rec = Rec::empty(0);
        let quoted = csv_page(std::slice::from_ref(&rec));
        assert!(quoted.lines().nth(1).unwrap().starts_with("\"\",\"001"));
        let bare = quoted.replace("\"\"", "");
        let a = decode_csv(&[quoted], 5);
        let b = decode_csv(&[bare], 5);
        assert_eq!(a, b);
        assert_eq!(a, decode_json(&json_page(&[rec])));
        assert_eq!(a.column(1).null_count(), 1);
        let s = schema();
        let mut d = CsvDecoder::new(&s);
        d.start_page();
        let e = d
            .feed(b"\"Id\",\"Name\"\n\"001\",\"\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no column Flag__c"), "{e}");
    }

    #[test]
    fn a_bad_value_names_record_field_and_value() {
        let recs = vec![Rec {
            name: Some("x".into()),
            ..Rec::empty(0)
        }];
        let page = csv_page(&recs).replacen(
            "\"\",\"\",\"\",\"\",\"\",\"\",\"",
            "\"maybe\",\"\",\"\",\"\",\"\",\"\",\"",
            1,
        );
        let s = schema();
        let mut d = CsvDecoder::new(&s);
        d.start_page();
        let e = d
            .feed(page.as_bytes())
            .and_then(|_| d.end_page().map(|_| ()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("Account record Id 001000000000000000: field Flag__c = \"maybe\" is not a valid boolean"), "{e}");
    }

    #[test]
    fn an_empty_body_is_an_empty_page() {
        let s = schema();
        let mut d = CsvDecoder::new(&s);
        d.start_page();
        assert_eq!(d.end_page().unwrap(), 0);
        d.start_page();
        d.feed(b"\n").unwrap();
        assert!(
            d.end_page().is_err(),
            "a body without a header row is not a page"
        );
    }

    #[test]
    fn a_page_cut_mid_row_is_a_retryable_error() {
        let recs: Vec<Rec> = vec![];
        let mut page = csv_page(&recs);
        page.push_str("\"x\",\"001\",\"tr");
        let s = schema();
        let mut d = CsvDecoder::new(&s);
        d.start_page();
        d.feed(page.as_bytes()).unwrap();
        let e = d.end_page().unwrap_err();
        assert!(e.is_retryable(), "{e}");
    }
}
