//! The emulator's objects (describe metadata) and their deterministic, seeded records.

use std::collections::HashMap;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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

fn system_fields(v: &mut Vec<FieldDef>) {
    v.push(FieldDef::new("OwnerId", "reference").refs("User"));
    v.push(FieldDef::new("CreatedDate", "datetime"));
    v.push(FieldDef::new("CreatedById", "reference").refs("User"));
    v.push(FieldDef::new("LastModifiedDate", "datetime"));
    v.push(FieldDef::new("LastModifiedById", "reference").refs("User"));
    v.push(FieldDef::new("SystemModstamp", "datetime"));
}

fn address(v: &mut Vec<FieldDef>, prefix: &str) {
    let c = format!("{prefix}Address");
    v.push(FieldDef::new(&format!("{prefix}Street"), "textarea").part_of(&c));
    v.push(FieldDef::new(&format!("{prefix}City"), "string").part_of(&c));
    v.push(FieldDef::new(&format!("{prefix}State"), "string").part_of(&c));
    v.push(FieldDef::new(&format!("{prefix}PostalCode"), "string").part_of(&c));
    v.push(FieldDef::new(&format!("{prefix}Country"), "string").part_of(&c));
    v.push(
        FieldDef::new(&format!("{prefix}Latitude"), "double")
            .num(18, 15)
            .part_of(&c),
    );
    v.push(
        FieldDef::new(&format!("{prefix}Longitude"), "double")
            .num(18, 15)
            .part_of(&c),
    );
    v.push(
        FieldDef::new(&format!("{prefix}GeocodeAccuracy"), "picklist")
            .pick(&["Address", "Street", "City", "Zip"])
            .part_of(&c),
    );
    v.push(FieldDef::new(&c, "address"));
}

fn location(v: &mut Vec<FieldDef>, base: &str) {
    let c = format!("{base}__c");
    v.push(FieldDef::new(&c, "location"));
    v.push(
        FieldDef::new(&format!("{base}__Latitude__s"), "double")
            .num(18, 15)
            .part_of(&c),
    );
    v.push(
        FieldDef::new(&format!("{base}__Longitude__s"), "double")
            .num(18, 15)
            .part_of(&c),
    );
}

/// The five emulated objects.
pub fn object_defs() -> Vec<ObjectDef> {
    let mut account = vec![
        FieldDef::new("Id", "id"),
        FieldDef::new("IsDeleted", "boolean"),
        FieldDef::new("MasterRecordId", "reference").refs("Account"),
        FieldDef::new("Name", "string"),
        FieldDef::new("Type", "picklist").pick(&[
            "Prospect",
            "Customer - Direct",
            "Customer - Channel",
            "Partner",
            "Other",
        ]),
        FieldDef::new("ParentId", "reference").refs("Account"),
    ];
    address(&mut account, "Billing");
    account.extend([
        FieldDef::new("Phone", "phone"),
        FieldDef::new("Website", "url"),
        FieldDef::new("Industry", "picklist").pick(&[
            "Agriculture",
            "Banking",
            "Chemicals",
            "Energy",
            "Retail",
            "Technology",
        ]),
        FieldDef::new("AnnualRevenue", "currency").num(18, 0),
        FieldDef::new("NumberOfEmployees", "int").num(8, 0),
        FieldDef::new("Ownership", "picklist").pick(&["Public", "Private", "Subsidiary", "Other"]),
        FieldDef::new("Description", "textarea"),
        FieldDef::new("Rating", "picklist").pick(&["Hot", "Warm", "Cold"]),
    ]);
    system_fields(&mut account);
    account.push(FieldDef::new("LastActivityDate", "date"));
    account.extend([
        FieldDef::new("Credit_Limit__c", "currency").num(18, 2),
        FieldDef::new("Global_Employees__c", "double").num(18, 0),
        FieldDef::new("Tier__c", "picklist").pick(&["Gold", "Silver", "Bronze"]),
        FieldDef::new("Regions__c", "multipicklist").pick(&["EMEA", "AMER", "APAC", "LATAM"]),
        FieldDef::new("Discount__c", "percent").num(5, 2),
        FieldDef::new("Is_Partner__c", "boolean"),
        FieldDef::new("Health_Score__c", "double")
            .num(18, 2)
            .formula(),
        FieldDef::new("Support_Cutoff__c", "time"),
    ]);
    location(&mut account, "HQ_Location");

    let mut contact = vec![
        FieldDef::new("Id", "id"),
        FieldDef::new("IsDeleted", "boolean"),
        FieldDef::new("AccountId", "reference").refs("Account"),
        FieldDef::new("FirstName", "string"),
        FieldDef::new("LastName", "string"),
        FieldDef::new("Email", "email"),
        FieldDef::new("Phone", "phone"),
        FieldDef::new("Title", "string"),
        FieldDef::new("Birthdate", "date"),
    ];
    address(&mut contact, "Mailing");
    contact.push(FieldDef::new("HasOptedOutOfEmail", "boolean"));
    system_fields(&mut contact);
    contact.push(
        FieldDef::new("Languages__c", "multipicklist")
            .pick(&["English", "German", "French", "Spanish"]),
    );

    let mut opp = vec![
        FieldDef::new("Id", "id"),
        FieldDef::new("IsDeleted", "boolean"),
        FieldDef::new("AccountId", "reference").refs("Account"),
        FieldDef::new("Name", "string"),
        FieldDef::new("StageName", "picklist").pick(&[
            "Prospecting",
            "Qualification",
            "Negotiation",
            "Closed Won",
            "Closed Lost",
        ]),
        FieldDef::new("Amount", "currency").num(18, 2),
        FieldDef::new("Probability", "percent").num(3, 0),
        FieldDef::new("ExpectedRevenue", "currency")
            .num(18, 2)
            .formula(),
        FieldDef::new("CloseDate", "date"),
        FieldDef::new("Type", "picklist").pick(&["New Business", "Existing Business"]),
        FieldDef::new("IsClosed", "boolean"),
        FieldDef::new("IsWon", "boolean"),
        FieldDef::new("TotalOpportunityQuantity", "double").num(18, 2),
    ];
    system_fields(&mut opp);
    opp.push(FieldDef::new("Next_Step_Time__c", "time"));

    let mut case = vec![
        FieldDef::new("Id", "id"),
        FieldDef::new("IsDeleted", "boolean"),
        FieldDef::new("CaseNumber", "string"),
        FieldDef::new("AccountId", "reference").refs("Account"),
        FieldDef::new("ContactId", "reference").refs("Contact"),
        FieldDef::new("Subject", "string"),
        FieldDef::new("Description", "textarea"),
        FieldDef::new("Status", "picklist").pick(&["New", "Working", "Escalated", "Closed"]),
        FieldDef::new("Priority", "picklist").pick(&["High", "Medium", "Low"]),
        FieldDef::new("Origin", "picklist").pick(&["Phone", "Email", "Web"]),
        FieldDef::new("IsEscalated", "boolean"),
        FieldDef::new("ClosedDate", "datetime"),
    ];
    system_fields(&mut case);
    // A case is owned by a user or a queue: its Owner is polymorphic.
    if let Some(o) = case.iter_mut().find(|f| f.name == "OwnerId") {
        o.reference_to = vec!["Group", "User"];
    }

    let mut invoice = vec![
        FieldDef::new("Id", "id"),
        FieldDef::new("IsDeleted", "boolean"),
        FieldDef::new("Name", "string"),
    ];
    system_fields(&mut invoice);
    invoice.push(FieldDef::new("LastActivityDate", "date"));
    invoice.extend([
        FieldDef::new("Account__c", "reference").refs("Account"),
        FieldDef::new("Amount__c", "currency").num(16, 2),
        FieldDef::new("Tax_Rate__c", "percent").num(5, 2),
        FieldDef::new("Due_Date__c", "date"),
        FieldDef::new("Paid__c", "boolean"),
        FieldDef::new("Units__c", "double").num(18, 0),
        FieldDef::new("Line_Items__c", "int").num(9, 0),
        FieldDef::new("Status__c", "picklist").pick(&["Draft", "Sent", "Paid", "Void"]),
        FieldDef::new("Tags__c", "multipicklist").pick(&[
            "Urgent",
            "Disputed",
            "Recurring",
            "Export",
        ]),
        FieldDef::new("Cutoff_Time__c", "time"),
        FieldDef::new("Notes__c", "textarea"),
        FieldDef::new("Contact_Email__c", "email"),
        FieldDef::new("Portal_Url__c", "url"),
        FieldDef::new("Billing_Phone__c", "phone"),
        FieldDef::new("Document__c", "base64"),
    ]);
    location(&mut invoice, "Ship_To");

    // A field-history object: no LastModifiedDate or SystemModstamp, only CreatedDate.
    let account_history = vec![
        FieldDef::new("Id", "id"),
        FieldDef::new("IsDeleted", "boolean"),
        FieldDef::new("AccountId", "reference").refs("Account"),
        FieldDef::new("CreatedById", "reference").refs("User"),
        FieldDef::new("CreatedDate", "datetime"),
        FieldDef::new("Field", "picklist").pick(&["Name", "Industry", "Rating", "created"]),
        FieldDef::new("DataType", "picklist").pick(&["Text", "Picklist", "EntityId"]),
        FieldDef::new("OldValue", "anyType"),
        FieldDef::new("NewValue", "anyType"),
    ];

    // A wide custom object (600 custom fields): its full field list does not fit one request URI.
    let mut wide = vec![
        FieldDef::new("Id", "id"),
        FieldDef::new("IsDeleted", "boolean"),
        FieldDef::new("Name", "string"),
    ];
    system_fields(&mut wide);
    for i in 1..=600 {
        let name = format!("Customer_Attribute_{i:04}__c");
        wide.push(match i % 5 {
            0 => FieldDef::new(&name, "double").num(18, 2),
            1 => FieldDef::new(&name, "boolean"),
            2 => FieldDef::new(&name, "currency").num(18, 2),
            3 => FieldDef::new(&name, "date"),
            _ => FieldDef::new(&name, "string"),
        });
    }

    // Users (owners, creators, managers) and queues: the parents of the system lookups.
    let user = vec![
        FieldDef::new("Id", "id"),
        FieldDef::new("Username", "string"),
        FieldDef::new("LastName", "string"),
        FieldDef::new("FirstName", "string"),
        FieldDef::new("Name", "string"),
        FieldDef::new("Alias", "string"),
        FieldDef::new("Email", "email"),
        FieldDef::new("IsActive", "boolean"),
        FieldDef::new("Title", "string"),
        FieldDef::new("Department", "string"),
        FieldDef::new("Phone", "phone"),
        FieldDef::new("ManagerId", "reference").refs("User"),
        FieldDef::new("CreatedDate", "datetime"),
        FieldDef::new("CreatedById", "reference").refs("User"),
        FieldDef::new("LastModifiedDate", "datetime"),
        FieldDef::new("LastModifiedById", "reference").refs("User"),
        FieldDef::new("SystemModstamp", "datetime"),
    ];
    let group = vec![
        FieldDef::new("Id", "id"),
        FieldDef::new("Name", "string"),
        FieldDef::new("DeveloperName", "string"),
        FieldDef::new("Type", "picklist").pick(&["Queue"]),
        FieldDef::new("Email", "email"),
        FieldDef::new("CreatedDate", "datetime"),
        FieldDef::new("CreatedById", "reference").refs("User"),
        FieldDef::new("LastModifiedDate", "datetime"),
        FieldDef::new("LastModifiedById", "reference").refs("User"),
        FieldDef::new("SystemModstamp", "datetime"),
    ];

    vec![
        ObjectDef {
            name: "Account".into(),
            label: "Account".into(),
            key_prefix: "001",
            custom: false,
            fields: account,
        },
        ObjectDef {
            name: "Contact".into(),
            label: "Contact".into(),
            key_prefix: "003",
            custom: false,
            fields: contact,
        },
        ObjectDef {
            name: "Opportunity".into(),
            label: "Opportunity".into(),
            key_prefix: "006",
            custom: false,
            fields: opp,
        },
        ObjectDef {
            name: "Case".into(),
            label: "Case".into(),
            key_prefix: "500",
            custom: false,
            fields: case,
        },
        ObjectDef {
            name: "Invoice__c".into(),
            label: "Invoice".into(),
            key_prefix: "a01",
            custom: true,
            fields: invoice,
        },
        ObjectDef {
            name: "AccountHistory".into(),
            label: "Account History".into(),
            key_prefix: "017",
            custom: false,
            fields: account_history,
        },
        ObjectDef {
            name: "Wide__c".into(),
            label: "Wide".into(),
            key_prefix: "a02",
            custom: true,
            fields: wide,
        },
        ObjectDef {
            name: "User".into(),
            label: "User".into(),
            key_prefix: "005",
            custom: false,
            fields: user,
        },
        ObjectDef {
            name: "Group".into(),
            label: "Group".into(),
            key_prefix: "00G",
            custom: false,
            fields: group,
        },
    ]
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

const WORDS: [&str; 12] = [
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
        tables.push(Arc::new(Table {
            def,
            rows,
            created: n as u64,
            version: 0,
            synthetic: None,
        }));
    }
    Dataset { tables }
}

fn maybe<T>(rng: &mut StdRng, v: T) -> Option<T> {
    // ~30% nulls
    (rng.random::<f64>() >= 0.3).then_some(v)
}

fn gen_row(def: &ObjectDef, i: u64, rng: &mut StdRng, from_ms: i64, span_ms: i64) -> Vec<Cell> {
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
            (_, "boolean") => Cell::Bool(rng.random::<bool>()),
            (_, "int") => maybe(rng, ())
                .map(|_| Cell::Int(rng.random_range(1..200_000)))
                .unwrap_or(Cell::Null),
            (_, "currency") => maybe(rng, ())
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
            (_, "percent") => maybe(rng, ())
                .map(|_| Cell::Num(rng.random_range(0..10_000) as f64 / 100.0))
                .unwrap_or(Cell::Null),
            (_, "double") if f.scale == 0 => maybe(rng, ())
                .map(|_| Cell::Num(rng.random_range(0..50_000_000i64) as f64))
                .unwrap_or(Cell::Null),
            (_, "double") => maybe(rng, ())
                .map(|_| Cell::Num(rng.random_range(0..1_000_000) as f64 / 100.0))
                .unwrap_or(Cell::Null),
            (_, "date") => maybe(rng, ())
                .map(|_| Cell::Date(((created / 86_400_000) + rng.random_range(-30..60)) as i32))
                .unwrap_or(Cell::Null),
            (_, "datetime") => maybe(rng, ())
                .map(|_| Cell::DateTime(created + rng.random_range(0..86_400_000)))
                .unwrap_or(Cell::Null),
            (_, "time") => maybe(rng, ())
                .map(|_| {
                    Cell::Time(rng.random_range(0..86_400) * 1000 + rng.random_range(0..2) * 500)
                })
                .unwrap_or(Cell::Null),
            (_, "picklist") => maybe(rng, ())
                .map(|_| Cell::Str(f.picklist[rng.random_range(0..f.picklist.len())].to_string()))
                .unwrap_or(Cell::Null),
            (_, "multipicklist") => maybe(rng, ())
                .map(|_| {
                    let k = rng.random_range(1..=f.picklist.len().min(3));
                    let start = rng.random_range(0..f.picklist.len());
                    let picked: Vec<&str> = (0..k)
                        .map(|j| f.picklist[(start + j) % f.picklist.len()])
                        .collect();
                    Cell::Str(picked.join(";"))
                })
                .unwrap_or(Cell::Null),
            (_, "email") => maybe(rng, ())
                .map(|_| {
                    Cell::Str(format!(
                        "{}.{}@example.com",
                        WORDS[rng.random_range(0..12)],
                        i
                    ))
                })
                .unwrap_or(Cell::Null),
            (_, "phone") => maybe(rng, ())
                .map(|_| {
                    Cell::Str(format!(
                        "+1 (555) {:03}-{:04}",
                        rng.random_range(0..1000),
                        rng.random_range(0..10000)
                    ))
                })
                .unwrap_or(Cell::Null),
            (_, "url") => maybe(rng, ())
                .map(|_| {
                    Cell::Str(format!(
                        "https://www.{}.example.com/{}",
                        WORDS[rng.random_range(0..12)],
                        i
                    ))
                })
                .unwrap_or(Cell::Null),
            (_, "textarea") => maybe(rng, ())
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
            (_, "base64") => Cell::Str(format!(
                "/services/data/v62.0/sobjects/{}/{}/{}",
                def.name,
                record_id(def.key_prefix, i + 1),
                name
            )),
            _ => maybe(rng, ())
                .map(|_| Cell::Str(format!("{} {}", WORDS[rng.random_range(0..12)], i)))
                .unwrap_or(Cell::Null),
        };
        out.push(cell);
    }
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
            "address" => out[fi] = address_cell(&out, def, &f.name),
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
    out
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
