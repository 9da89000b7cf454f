//! Records as Salesforce renders them in JSON pages: cached per-record templates, relationship parents, cells.

use super::*;

pub(super) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // serde_json escapes exactly as JSON requires; non-ASCII stays as UTF-8 like Salesforce sends it.
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// Where a pre-rendered synthetic record needs a per-record value: (byte offset, field).
pub(super) type Slots = Vec<(usize, usize)>;

/// The slot field that stands for the raw Id inside `attributes.url`.
pub(super) const URL_ID: usize = usize::MAX;

/// One pool record rendered without its per-record values, and where they go.
pub(super) struct Template {
    pub(super) bytes: Box<[u8]>,
    pub(super) slots: Box<[(usize, usize)]>,
}

pub(super) type Templates = Arc<Vec<std::sync::OnceLock<Template>>>;

pub(super) fn templates(st: &Inner, table: &Table, fields: &[usize]) -> Templates {
    let key = (table.def.name.clone(), fields.to_vec());
    let n = table.synthetic.as_ref().map_or(0, |s| s.pool_len());
    st.templates
        .lock()
        .expect("template cache")
        .entry(key)
        .or_insert_with(|| Arc::new((0..n).map(|_| std::sync::OnceLock::new()).collect()))
        .clone()
}

/// The CSV counterpart of [`templates`] (Bulk API 2.0 results).
pub(super) fn csv_templates(st: &Inner, table: &Table, fields: &[usize]) -> Templates {
    let key = (table.def.name.clone(), fields.to_vec());
    let n = table.synthetic.as_ref().map_or(0, |s| s.pool_len());
    st.csv_templates
        .lock()
        .expect("template cache")
        .entry(key)
        .or_insert_with(|| Arc::new((0..n).map(|_| std::sync::OnceLock::new()).collect()))
        .clone()
}

/// Renders synthetic record `i`: its pool record's bytes with Id and dates filled in.
pub(super) fn render_synthetic(
    out: &mut Vec<u8>,
    def: &ObjectDef,
    s: &data::Synthetic,
    t: &[std::sync::OnceLock<Template>],
    i: u64,
    fields: &[usize],
) {
    let p = s.pool_index(i);
    let tpl = t[p].get_or_init(|| {
        let mut bytes = Vec::with_capacity(1024);
        let mut slots = Vec::new();
        let dynamic = (s, &mut slots);
        render_record(
            &mut bytes,
            def,
            s.pool_row(p),
            fields,
            "62.0",
            None,
            Some(dynamic),
            None,
        );
        Template {
            bytes: bytes.into_boxed_slice(),
            slots: slots.into_boxed_slice(),
        }
    });
    let mut at = 0;
    for &(off, fi) in tpl.slots.iter() {
        out.extend_from_slice(&tpl.bytes[at..off]);
        at = off;
        s.push_dynamic(out, i, fi, fi == URL_ID);
    }
    out.extend_from_slice(&tpl.bytes[at..]);
}

/// Renders one record; with `dynamic`, per-record fields of a synthetic table are left out
/// and their offsets recorded instead (see [`render_synthetic`]).
/// What a record's relationship objects are rendered from: the dataset (their parents) and
/// the relationships selected.
pub(super) struct Parents<'a> {
    pub(super) data: &'a Dataset,
    pub(super) rels: &'a [(usize, soql::RelSelect)],
}

#[allow(clippy::too_many_arguments)]
pub(super) fn render_record(
    out: &mut Vec<u8>,
    def: &ObjectDef,
    row: &[Cell],
    fields: &[usize],
    version: &str,
    bad: Option<usize>,
    mut dynamic: Option<(&data::Synthetic, &mut Slots)>,
    parents: Option<&Parents>,
) {
    out.extend_from_slice(b"{\"attributes\":{\"type\":\"");
    out.extend_from_slice(def.name.as_bytes());
    out.extend_from_slice(b"\",\"url\":\"/services/data/v");
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(b"/sobjects/");
    out.extend_from_slice(def.name.as_bytes());
    out.push(b'/');
    match (&mut dynamic, def.field_index("Id")) {
        (Some((s, slots)), Some(i)) if s.is_dynamic(i) => slots.push((out.len(), URL_ID)),
        _ => {
            if let Some(Cell::Str(id)) = def.field_index("Id").map(|i| &row[i]) {
                out.extend_from_slice(id.as_bytes());
            }
        }
    }
    out.extend_from_slice(b"\"}");
    // The relationship objects selected before plain field `k` (or after the last).
    let push_rels = |out: &mut Vec<u8>, k: usize| {
        if let Some(p) = parents {
            for (_, r) in p.rels.iter().filter(|(at, _)| *at == k) {
                out.push(b',');
                render_parent(out, p.data, row, r, version);
            }
        }
    };
    for (k, &fi) in fields.iter().enumerate() {
        push_rels(out, k);
        let f = &def.fields[fi];
        out.push(b',');
        push_json_str(out, &f.name);
        out.push(b':');
        if let Some((s, slots)) = &mut dynamic {
            if s.is_dynamic(fi) {
                slots.push((out.len(), fi));
                continue;
            }
        }
        if Some(fi) == bad && row[fi] != Cell::Null {
            if matches!(
                f.ftype,
                "string" | "textarea" | "picklist" | "id" | "reference" | "email" | "phone" | "url"
            ) {
                out.extend_from_slice(b"12345");
            } else {
                out.extend_from_slice(b"\"not-a-");
                out.extend_from_slice(f.ftype.as_bytes());
                out.push(b'"');
            }
            continue;
        }
        render_cell(out, f, &row[fi]);
    }
    push_rels(out, fields.len());
    out.push(b'}');
}

/// A relationship's JSON member: `"Owner":{"attributes":{…},"Name":…}`, or `null` for an
/// empty lookup. A polymorphic parent is typed `Name`; its fields the actual parent lacks are
/// null (`Type` is the parent's object).
pub(super) fn render_parent(
    out: &mut Vec<u8>,
    data: &Dataset,
    row: &[Cell],
    rel: &soql::RelSelect,
    version: &str,
) {
    push_json_str(out, &rel.name);
    out.push(b':');
    let Some((table, prow)) = parent_record(data, row, rel) else {
        out.extend_from_slice(b"null");
        return;
    };
    let def = &table.def;
    let polymorphic = rel.targets.len() > 1;
    let id = def
        .field_index("Id")
        .and_then(|i| match &prow[i] {
            Cell::Str(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_default();
    out.extend_from_slice(b"{\"attributes\":{\"type\":");
    push_json_str(out, if polymorphic { "Name" } else { &def.name });
    out.extend_from_slice(
        format!(
            ",\"url\":\"/services/data/v{version}/sobjects/{}/{id}\"}}",
            def.name
        )
        .as_bytes(),
    );
    for item in &rel.items {
        out.push(b',');
        match item {
            soql::RelItem::Field(name) => {
                push_json_str(out, name);
                out.push(b':');
                match def.field_index(name) {
                    Some(fi) => render_cell(out, &def.fields[fi], &prow[fi]),
                    None if polymorphic && name == "Type" => push_json_str(out, &def.name),
                    None => out.extend_from_slice(b"null"),
                }
            }
            soql::RelItem::Rel(r) => render_parent(out, data, &prow, r, version),
        }
    }
    out.push(b'}');
}

/// The record a relationship's lookup points to, if it is set and exists.
pub(crate) fn parent_record(
    data: &Dataset,
    row: &[Cell],
    rel: &soql::RelSelect,
) -> Option<(Arc<Table>, data::Row)> {
    let Cell::Str(id) = &row[rel.fk] else {
        return None;
    };
    data.record(id, &rel.targets)
}

pub(super) fn render_cell(out: &mut Vec<u8>, f: &FieldDef, c: &Cell) {
    match c {
        Cell::Null => out.extend_from_slice(b"null"),
        Cell::Str(s) => push_json_str(out, s),
        Cell::Num(v) => out.extend_from_slice(java_double(*v).as_bytes()),
        Cell::Cents(units) => {
            let v = *units as f64 / 10f64.powi(f.scale);
            out.extend_from_slice(java_double(v).as_bytes());
        }
        Cell::Int(v) => out.extend_from_slice(v.to_string().as_bytes()),
        Cell::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Cell::DateTime(ms) => push_json_str(out, &render::sf_datetime(*ms)),
        Cell::Date(d) => {
            let day = chrono::DateTime::from_timestamp(*d as i64 * 86_400, 0)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            push_json_str(out, &day);
        }
        Cell::Time(ms) => {
            let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
            push_json_str(out, &format!("{h:02}:{m:02}:{s:02}.{milli:03}Z"));
        }
        Cell::Address(a) => {
            let opt_s = |v: &Option<String>| {
                v.as_ref()
                    .map(|s| serde_json::to_string(s).expect("string"))
                    .unwrap_or_else(|| "null".into())
            };
            let opt_n = |v: &Option<f64>| v.map(java_double).unwrap_or_else(|| "null".into());
            let s = format!(
                "{{\"city\":{},\"country\":{},\"countryCode\":{},\"geocodeAccuracy\":{},\"latitude\":{},\"longitude\":{},\"postalCode\":{},\"state\":{},\"stateCode\":{},\"street\":{}}}",
                opt_s(&a.city), opt_s(&a.country), opt_s(&a.country_code), opt_s(&a.geocode_accuracy), opt_n(&a.latitude), opt_n(&a.longitude), opt_s(&a.postal_code), opt_s(&a.state), opt_s(&a.state_code), opt_s(&a.street)
            );
            out.extend_from_slice(s.as_bytes());
        }
        Cell::Location(lat, lon) => {
            out.extend_from_slice(
                format!(
                    "{{\"latitude\":{},\"longitude\":{}}}",
                    java_double(*lat),
                    java_double(*lon)
                )
                .as_bytes(),
            );
        }
    }
}

/// Renders one REST query page exactly as the emulator serves it (for benchmarks and tests).
pub fn render_page(
    table: &data::Table,
    rows: &[u32],
    fields: &[usize],
    total_size: usize,
    next_records_url: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 800 + 200);
    out.extend_from_slice(
        format!(
            "{{\"totalSize\":{total_size},\"done\":{}",
            next_records_url.is_none()
        )
        .as_bytes(),
    );
    if let Some(u) = next_records_url {
        out.extend_from_slice(b",\"nextRecordsUrl\":");
        push_json_str(&mut out, u);
    }
    out.extend_from_slice(b",\"records\":[");
    for (k, &ri) in rows.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        render_record(
            &mut out,
            &table.def,
            &table.row(ri as usize),
            fields,
            "62.0",
            None,
            None,
            None,
        );
    }
    out.extend_from_slice(b"]}");
    out
}
