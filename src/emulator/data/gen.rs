//! Generated records: deterministic (seeded) values of every field type, with the system
//! fields, compound fields and user names composed as Salesforce composes them.

use super::*;

const CITIES: [(&str, &str, &str, &str, f64, f64); 6] = [
    (
        "München", "Bayern", "80331", "Germany", 48.137154, 11.576124,
    ),
    (
        "São Paulo",
        "SP",
        "01000-000",
        "Brazil",
        -23.55052,
        -46.633308,
    ),
    (
        "San Francisco",
        "CA",
        "94105",
        "United States",
        37.7897,
        -122.3942,
    ),
    ("Tokyo", "Tokyo", "100-0001", "Japan", 35.681236, 139.767125),
    (
        "Lyon",
        "Auvergne-Rhône-Alpes",
        "69001",
        "France",
        45.764043,
        4.835659,
    ),
    (
        "Austin",
        "TX",
        "73301",
        "United States",
        30.267153,
        -97.743061,
    ),
];

pub(super) const WORDS: [&str; 12] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima",
];

/// Generation parameters.
#[derive(Debug, Clone)]
pub struct GenConfig {
    pub seed: u64,
    /// Records per object (objects missing here get `default_rows`).
    pub rows: HashMap<String, usize>,
    pub default_rows: usize,
    /// Cursor values fall in `[anchor − days, anchor)` (epoch ms).
    pub anchor_ms: i64,
    pub days: i64,
    /// Objects served as synthetic tables of this many records (see [`Synthetic`]).
    pub synthetic: HashMap<String, u64>,
}

/// Generates every table deterministically from the seed.
pub fn generate(cfg: &GenConfig) -> Dataset {
    let mut tables = Vec::new();
    let defs = object_defs();
    let count = |def: &ObjectDef| -> u64 {
        if let Some((_, &n)) = cfg
            .synthetic
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&def.name))
        {
            return n;
        }
        // Wide__c and AccountHistory are opt-in (name them in `rows`): 600 columns are costly
        // for tests that ignore them, and history rows are only wanted where tested.
        let default = match def.name.as_str() {
            "Wide__c" | "AccountHistory" => 0,
            "User" => DEFAULT_USERS,
            "Group" => DEFAULT_QUEUES,
            _ => cfg.default_rows,
        };
        cfg.rows
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&def.name))
            .map(|(_, v)| *v)
            .unwrap_or(default) as u64
    };
    let sizes: HashMap<String, u64> = defs.iter().map(|d| (d.name.clone(), count(d))).collect();
    for (oi, mut def) in defs.into_iter().enumerate() {
        // Lookups point to records that exist (a parent of n records has Ids 1..=n).
        for f in def.fields.iter_mut() {
            if let Some(&n) = f.reference_to.first().and_then(|t| sizes.get(*t)) {
                if n > 0 {
                    f.ref_span = n;
                }
            }
        }
        let n = sizes[&def.name] as usize;
        let mut rng =
            StdRng::seed_from_u64(cfg.seed.wrapping_mul(1_000_003).wrapping_add(oi as u64));
        let span = cfg.days * 86_400_000;
        if let Some((_, &n)) = cfg
            .synthetic
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&def.name))
        {
            let seed = cfg.seed.wrapping_mul(1_000_003).wrapping_add(oi as u64);
            let synthetic = Synthetic::new(&def, seed, n, cfg.anchor_ms - span, span);
            tables.push(Arc::new(Table {
                def,
                rows: Vec::new(),
                created: n,
                version: 0,
                synthetic: Some(Arc::new(synthetic)),
                deleted: Vec::new(),
                delete_log_from: i64::MIN,
            }));
            continue;
        }
        let mut rows = Vec::with_capacity(n);
        for i in 0..n {
            rows.push(Arc::new(gen_row(
                &def,
                i as u64,
                &mut rng,
                cfg.anchor_ms - span,
                span,
            )));
        }
        let deleted = delete_log_of(&def, &rows);
        tables.push(Arc::new(Table {
            def,
            rows,
            created: n as u64,
            version: 0,
            synthetic: None,
            deleted,
            delete_log_from: i64::MIN,
        }));
    }
    Dataset { tables }
}

/// The delete log of generated records: each soft-deleted one was deleted at its
/// SystemModstamp (getDeleted's `deletedDate`), oldest first.
fn delete_log_of(def: &ObjectDef, rows: &[Arc<Vec<Cell>>]) -> Vec<(String, i64)> {
    let (Some(id), Some(del), Some(stamp)) = (
        def.field_index("Id"),
        def.field_index("IsDeleted"),
        def.field_index("SystemModstamp"),
    ) else {
        return Vec::new();
    };
    let mut log: Vec<(String, i64)> = rows
        .iter()
        .filter(|r| matches!(r[del], Cell::Bool(true)))
        .filter_map(|r| match (&r[id], &r[stamp]) {
            (Cell::Str(i), Cell::DateTime(t)) => Some((i.clone(), *t)),
            _ => None,
        })
        .collect();
    log.sort_by_key(|(_, t)| *t);
    log
}

fn maybe<T>(rng: &mut StdRng, v: T) -> Option<T> {
    // ~30% nulls
    (rng.random::<f64>() >= 0.3).then_some(v)
}

pub(super) fn gen_row(
    def: &ObjectDef,
    i: u64,
    rng: &mut StdRng,
    from_ms: i64,
    span_ms: i64,
) -> Vec<Cell> {
    let span_ms = span_ms.max(1);
    let created = from_ms + rng.random_range(0..span_ms);
    let modified = (created + rng.random_range(0..(30 * 86_400_000i64))).min(from_ms + span_ms - 1);
    // Some records share a modification instant (second resolution), as bulk updates do.
    let modified = modified - modified % 1000;
    let stamp = (modified
        + if rng.random::<f64>() < 0.2 {
            rng.random_range(0..5_000)
        } else {
            0
        })
    .min(from_ms + span_ms - 1);
    let city = CITIES[rng.random_range(0..CITIES.len())];
    let deleted = rng.random::<f64>() < 0.03;
    let mut out = Vec::with_capacity(def.fields.len());
    for f in &def.fields {
        let name = f.name.as_str();
        let cell = match (name, f.ftype) {
            ("Id", _) => Cell::Str(record_id(def.key_prefix, i + 1)),
            ("IsDeleted", _) => Cell::Bool(deleted),
            ("CreatedDate", _) => Cell::DateTime(created),
            ("LastModifiedDate", _) => Cell::DateTime(modified),
            ("SystemModstamp", _) => Cell::DateTime(stamp),
            ("Name", _) if def.custom => Cell::Str(format!("INV-{:06}", i + 1)),
            ("Name", _) => Cell::Str(format!(
                "{} {} {}",
                WORDS[rng.random_range(0..12)],
                WORDS[rng.random_range(0..12)],
                i + 1
            )),
            ("CaseNumber", _) => Cell::Str(format!("{:08}", i + 1)),
            ("Username", _) => Cell::Str(format!("user{}@forcelake.example", i + 1)),
            ("Type", _) if def.name == "Group" => Cell::Str("Queue".into()),
            ("LastName", _) => Cell::Str(format!("{}son", WORDS[rng.random_range(0..12)])),
            (_, "reference") if name.ends_with("ById") || name == "OwnerId" => {
                let user = rng.random_range(1..20u64);
                if f.reference_to.len() > 1 && (i + user) % 4 == 0 {
                    // a polymorphic owner: every fourth or so is a queue
                    Cell::Str(record_id("00G", 1 + user % DEFAULT_QUEUES as u64))
                } else {
                    Cell::Str(record_id("005", 1 + (user - 1) % f.ref_span.min(19)))
                }
            }
            (_, "reference") => maybe(rng, ())
                .map(|_| {
                    Cell::Str(record_id(
                        f.reference_to
                            .first()
                            .map(|r| prefix_of(r))
                            .unwrap_or("001"),
                        1 + (rng.random_range(1..500u64) - 1) % f.ref_span,
                    ))
                })
                .unwrap_or(Cell::Null),
            (_, "address") => address_cell(&out, def, name),
            _ if f.compound.is_some() && f.ftype != "double" => compound_part(name, city, rng),
            (_, "double") if f.compound.is_some() => {
                let (lat, lon) = (
                    city.4 + rng.random_range(-0.05..0.05),
                    city.5 + rng.random_range(-0.05..0.05),
                );
                if rng.random::<f64>() < 0.3 {
                    Cell::Null
                } else if name.contains("Latitude") {
                    Cell::Num(round_to(lat, 6))
                } else {
                    Cell::Num(round_to(lon, 6))
                }
            }
            (_, "location") => Cell::Null, // filled from components below
            _ => typed_value(def, f, i, rng, created),
        };
        out.push(cell);
    }
    compose(def, &mut out);
    out
}

/// A generated value of a field that is not a system field: by type, null 30 % of the
/// time (`maybe`).
fn typed_value(def: &ObjectDef, f: &FieldDef, i: u64, rng: &mut StdRng, created: i64) -> Cell {
    let name = f.name.as_str();
    match f.ftype {
        "boolean" => Cell::Bool(rng.random::<bool>()),
        "int" => maybe(rng, ())
            .map(|_| Cell::Int(rng.random_range(1..200_000)))
            .unwrap_or(Cell::Null),
        "currency" => maybe(rng, ())
            .map(|_| {
                // Some values above 10^7 so they arrive in exponent form (1.2345678E7).
                let big = rng.random::<f64>() < 0.3;
                let units: i64 = if big {
                    rng.random_range(10_000_000..9_000_000_000)
                } else {
                    rng.random_range(0..9_999_999)
                };
                if f.scale > 0 {
                    Cell::Cents(
                        units * 10i64.pow(f.scale as u32)
                            + rng.random_range(0..10i64.pow(f.scale as u32)),
                    )
                } else {
                    Cell::Cents(units)
                }
            })
            .unwrap_or(Cell::Null),
        "percent" => maybe(rng, ())
            .map(|_| Cell::Num(rng.random_range(0..10_000) as f64 / 100.0))
            .unwrap_or(Cell::Null),
        "double" if f.scale == 0 => maybe(rng, ())
            .map(|_| Cell::Num(rng.random_range(0..50_000_000i64) as f64))
            .unwrap_or(Cell::Null),
        "double" => maybe(rng, ())
            .map(|_| Cell::Num(rng.random_range(0..1_000_000) as f64 / 100.0))
            .unwrap_or(Cell::Null),
        "date" => maybe(rng, ())
            .map(|_| Cell::Date(((created / 86_400_000) + rng.random_range(-30..60)) as i32))
            .unwrap_or(Cell::Null),
        "datetime" => maybe(rng, ())
            .map(|_| Cell::DateTime(created + rng.random_range(0..86_400_000)))
            .unwrap_or(Cell::Null),
        "time" => maybe(rng, ())
            .map(|_| Cell::Time(rng.random_range(0..86_400) * 1000 + rng.random_range(0..2) * 500))
            .unwrap_or(Cell::Null),
        "picklist" => maybe(rng, ())
            .map(|_| Cell::Str(f.picklist[rng.random_range(0..f.picklist.len())].to_string()))
            .unwrap_or(Cell::Null),
        "multipicklist" => maybe(rng, ())
            .map(|_| {
                let k = rng.random_range(1..=f.picklist.len().min(3));
                let start = rng.random_range(0..f.picklist.len());
                let picked: Vec<&str> = (0..k)
                    .map(|j| f.picklist[(start + j) % f.picklist.len()])
                    .collect();
                Cell::Str(picked.join(";"))
            })
            .unwrap_or(Cell::Null),
        "email" => maybe(rng, ())
            .map(|_| {
                Cell::Str(format!(
                    "{}.{}@example.com",
                    WORDS[rng.random_range(0..12)],
                    i
                ))
            })
            .unwrap_or(Cell::Null),
        "phone" => maybe(rng, ())
            .map(|_| {
                Cell::Str(format!(
                    "+1 (555) {:03}-{:04}",
                    rng.random_range(0..1000),
                    rng.random_range(0..10000)
                ))
            })
            .unwrap_or(Cell::Null),
        "url" => maybe(rng, ())
            .map(|_| {
                Cell::Str(format!(
                    "https://www.{}.example.com/{}",
                    WORDS[rng.random_range(0..12)],
                    i
                ))
            })
            .unwrap_or(Cell::Null),
        "textarea" => maybe(rng, ())
            .map(|_| {
                let n = rng.random_range(1..12);
                let mut s = String::new();
                for k in 0..n {
                    s.push_str(WORDS[rng.random_range(0..12)]);
                    s.push_str(if k % 4 == 3 { "\n\n" } else { " " });
                }
                s.push_str("\"quoted\" — ünïcødé");
                Cell::Str(s)
            })
            .unwrap_or(Cell::Null),
        "base64" => Cell::Str(format!(
            "/services/data/v62.0/sobjects/{}/{}/{}",
            def.name,
            record_id(def.key_prefix, i + 1),
            name
        )),
        _ => maybe(rng, ())
            .map(|_| Cell::Str(format!("{} {}", WORDS[rng.random_range(0..12)], i)))
            .unwrap_or(Cell::Null),
    }
}

/// Values composed from other fields, as Salesforce composes them: a user's Name, and compound
/// addresses and geolocations from their components.
fn compose(def: &ObjectDef, out: &mut [Cell]) {
    // A user's Name is their first and last name, as Salesforce composes it.
    if def.name == "User" {
        if let (Some(n), Some(l)) = (def.field_index("Name"), def.field_index("LastName")) {
            let first = def
                .field_index("FirstName")
                .and_then(|f| match &out[f] {
                    Cell::Str(s) => Some(format!("{s} ")),
                    _ => None,
                })
                .unwrap_or_default();
            if let Cell::Str(last) = &out[l] {
                out[n] = Cell::Str(format!("{first}{last}"));
            }
        }
    }
    // Compound values mirror their components.
    for (fi, f) in def.fields.iter().enumerate() {
        match f.ftype {
            "address" => out[fi] = address_cell(out, def, &f.name),
            "location" => {
                let lat = def.fields.iter().position(|g| {
                    g.compound.as_deref() == Some(&f.name) && g.name.contains("Latitude")
                });
                let lon = def.fields.iter().position(|g| {
                    g.compound.as_deref() == Some(&f.name) && g.name.contains("Longitude")
                });
                out[fi] = match (lat.map(|i| &out[i]), lon.map(|i| &out[i])) {
                    (Some(Cell::Num(a)), Some(Cell::Num(b))) => Cell::Location(*a, *b),
                    _ => {
                        // Salesforce keeps a geolocation's latitude and longitude set together
                        for i in [lat, lon].into_iter().flatten() {
                            out[i] = Cell::Null;
                        }
                        Cell::Null
                    }
                };
            }
            _ => {}
        }
    }
}

fn prefix_of(object: &str) -> &'static str {
    match object {
        "Account" => "001",
        "Contact" => "003",
        "Opportunity" => "006",
        "User" => "005",
        "Group" => "00G",
        _ => "a01",
    }
}

fn round_to(v: f64, d: i32) -> f64 {
    let p = 10f64.powi(d);
    (v * p).round() / p
}

fn compound_part(name: &str, city: (&str, &str, &str, &str, f64, f64), rng: &mut StdRng) -> Cell {
    if rng.random::<f64>() < 0.3 {
        return Cell::Null;
    }
    let v = if name.ends_with("Street") {
        format!(
            "{} {} Street\nSuite {}",
            rng.random_range(1..999),
            WORDS[rng.random_range(0..12)],
            rng.random_range(1..50)
        )
    } else if name.ends_with("City") {
        city.0.to_string()
    } else if name.ends_with("State") {
        city.1.to_string()
    } else if name.ends_with("PostalCode") {
        city.2.to_string()
    } else if name.ends_with("Country") {
        city.3.to_string()
    } else if name.ends_with("GeocodeAccuracy") {
        ["Address", "Street", "City"][rng.random_range(0..3)].to_string()
    } else {
        WORDS[rng.random_range(0..12)].to_string()
    };
    Cell::Str(v)
}

fn address_cell(cells: &[Cell], def: &ObjectDef, compound: &str) -> Cell {
    if cells.len() < def.fields.len() {
        return Cell::Null; // first pass: components not generated yet
    }
    let prefix = compound.trim_end_matches("Address");
    let get_s = |suffix: &str| match def
        .field_index(&format!("{prefix}{suffix}"))
        .map(|i| &cells[i])
    {
        Some(Cell::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let get_n = |suffix: &str| match def
        .field_index(&format!("{prefix}{suffix}"))
        .map(|i| &cells[i])
    {
        Some(Cell::Num(v)) => Some(*v),
        _ => None,
    };
    let a = Address {
        street: get_s("Street"),
        city: get_s("City"),
        state: get_s("State"),
        state_code: None,
        postal_code: get_s("PostalCode"),
        country: get_s("Country"),
        country_code: None,
        latitude: get_n("Latitude"),
        longitude: get_n("Longitude"),
        geocode_accuracy: get_s("GeocodeAccuracy"),
    };
    if a == Address::default() {
        Cell::Null
    } else {
        Cell::Address(Box::new(a))
    }
}
