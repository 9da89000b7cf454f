//! The SOQL subset the emulator understands: a select list (or `COUNT()`), `FROM`, `WHERE` with
//! comparisons joined by AND/OR/NOT and parentheses, `ORDER BY` (ASC/DESC, NULLS FIRST/LAST),
//! `LIMIT` and `OFFSET`. Errors carry Salesforce's errorCodes and message shapes.

use std::cmp::Ordering;

use crate::emulator::data::{Cell, ObjectDef};

mod parse;
pub use self::parse::parse;

/// The fields of Salesforce's `Name` object (the parent of a polymorphic lookup such as
/// `Case.Owner`): the only fields SOQL allows after such a step. The emulator's own list, so
/// that a mistake in the product's copy shows.
const NAME_OBJECT_FIELDS: [&str; 20] = [
    "Id",
    "Alias",
    "Email",
    "FirstName",
    "IsActive",
    "LastName",
    "LastReferencedDate",
    "LastViewedDate",
    "MiddleName",
    "Name",
    "NameOrAlias",
    "Phone",
    "ProfileId",
    "RecordTypeId",
    "SmallPhotoUrl",
    "Suffix",
    "Title",
    "Type",
    "UserRoleId",
    "Username",
];

/// A SOQL error: `(errorCode, message)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoqlError {
    pub code: &'static str,
    pub message: String,
}

fn malformed(q: &str, pos: usize, what: &str) -> SoqlError {
    SoqlError {
        code: "MALFORMED_QUERY",
        message: format!(
            "\n{q}\n{}^\nERROR at Row:1:Column:{}\n{what}",
            " ".repeat(pos),
            pos + 1
        ),
    }
}

/// A literal on the right of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    DateTime(i64),
    Date(i32),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Cmp {
        field: usize,
        op: &'static str,
        lit: Literal,
    },
    In {
        field: usize,
        lits: Vec<Literal>,
        negate: bool,
    },
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderKey {
    pub field: usize,
    pub desc: bool,
    pub nulls_last: bool,
}

/// `GROUP BY DAY_ONLY(<datetime>)` or `GROUP BY <date>`, with `COUNT(<field>)`: records per day.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupByDay {
    pub field: usize,
    /// `DAY_ONLY(field)` (a datetime grouped by its UTC day) rather than the date field itself.
    pub day_only: bool,
    /// JSON key of the day (`expr0`, the field name, or an alias) and of the count.
    pub day_key: String,
    pub count_key: String,
}

/// A child-to-parent relationship in a select list (`Owner.Name`, `Account.Owner.Email`): the
/// lookup it follows and what its paths select from the parent, in select order.
#[derive(Debug, Clone, PartialEq)]
pub struct RelSelect {
    /// The lookup field on the object the step leaves.
    pub fk: usize,
    /// The relationship name as describe spells it (the JSON key, the CSV header's step).
    pub name: String,
    /// Objects the parent may be; several (a polymorphic lookup): it is rendered as `Name`.
    pub targets: Vec<String>,
    pub items: Vec<RelItem>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RelItem {
    /// A parent field by its canonical name (looked up on the actual parent's object).
    Field(String),
    Rel(RelSelect),
}

impl RelSelect {
    /// Every path through this relationship as (`Owner.Manager.Name`, the relationships from
    /// here to the leaf, the leaf field's name).
    pub fn paths(&self) -> Vec<(String, Vec<&RelSelect>, &str)> {
        let mut out = Vec::new();
        for item in &self.items {
            match item {
                RelItem::Field(f) => {
                    out.push((format!("{}.{f}", self.name), vec![self], f.as_str()))
                }
                RelItem::Rel(r) => {
                    for (name, mut chain, leaf) in r.paths() {
                        chain.insert(0, self);
                        out.push((format!("{}.{name}", self.name), chain, leaf));
                    }
                }
            }
        }
        out
    }
}

/// A parsed query against one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub object: String,
    /// Field indexes in select order; empty for `COUNT()` and aggregates.
    pub fields: Vec<usize>,
    /// Relationships selected (`Owner.Name`), each with the number of `fields` selected before
    /// its first path (where its object goes in a record).
    pub rels: Vec<(usize, RelSelect)>,
    pub count: bool,
    /// An aggregate query: records per day (`AggregateResult` records).
    pub group: Option<GroupByDay>,
    pub cond: Option<Cond>,
    pub order: Vec<OrderKey>,
    pub limit: Option<usize>,
    pub offset: usize,
}

fn cmp_cell(c: &Cell, l: &Literal) -> Option<Ordering> {
    match (c, l) {
        (Cell::Null, _) | (_, Literal::Null) => None,
        (Cell::DateTime(a), Literal::DateTime(b)) => Some(a.cmp(b)),
        (Cell::Date(a), Literal::Date(b)) => Some(a.cmp(b)),
        (Cell::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        (Cell::Int(a), Literal::Num(b)) => (*a as f64).partial_cmp(b),
        (Cell::Num(a), Literal::Num(b)) => a.partial_cmp(b),
        (Cell::Cents(a), Literal::Num(b)) => (*a as f64).partial_cmp(b),
        (Cell::Str(a), Literal::Str(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        _ => None,
    }
}

impl Cond {
    /// Evaluates against a row (SOQL: comparisons with null are false except `= null` / `!= null`).
    pub fn eval(&self, row: &[Cell]) -> bool {
        match self {
            Cond::Cmp { field, op, lit } => {
                let c = &row[*field];
                if *lit == Literal::Null {
                    return match *op {
                        "=" => *c == Cell::Null,
                        "!=" => *c != Cell::Null,
                        _ => false,
                    };
                }
                match cmp_cell(c, lit) {
                    None => false,
                    Some(o) => match *op {
                        "=" => o == Ordering::Equal,
                        "!=" => o != Ordering::Equal,
                        "<" => o == Ordering::Less,
                        "<=" => o != Ordering::Greater,
                        ">" => o == Ordering::Greater,
                        ">=" => o != Ordering::Less,
                        _ => false,
                    },
                }
            }
            Cond::In {
                field,
                lits,
                negate,
            } => {
                let hit = lits
                    .iter()
                    .any(|l| cmp_cell(&row[*field], l) == Some(Ordering::Equal));
                hit != *negate
            }
            Cond::And(a, b) => a.eval(row) && b.eval(row),
            Cond::Or(a, b) => a.eval(row) || b.eval(row),
            Cond::Not(a) => !a.eval(row),
        }
    }

    /// The exact half-open bounds `[lo, hi)` in ms when the condition is nothing but
    /// `>`/`>=`/`<`/`<=` datetime comparisons on `field` joined by AND.
    pub fn exact_range_on(&self, field: usize) -> Option<(i64, i64)> {
        match self {
            Cond::Cmp {
                field: f,
                op,
                lit: Literal::DateTime(t),
            } if *f == field => match *op {
                ">=" => Some((*t, i64::MAX)),
                ">" => Some((t.saturating_add(1), i64::MAX)),
                "<" => Some((i64::MIN, *t)),
                "<=" => Some((i64::MIN, t.saturating_add(1))),
                _ => None,
            },
            Cond::And(a, b) => {
                let (x, y) = (a.exact_range_on(field)?, b.exact_range_on(field)?);
                Some((x.0.max(y.0), x.1.min(y.1)))
            }
            _ => None,
        }
    }

    /// The span `[lo, hi)` in ms that the condition restricts a datetime field to, if bounded.
    pub fn datetime_span(&self) -> Option<(i64, i64)> {
        match self {
            Cond::And(a, b) => {
                let (x, y) = (a.bounds(), b.bounds());
                let lo = x.0.or(y.0)?;
                let hi = x.1.or(y.1)?;
                Some((lo, hi))
            }
            _ => None,
        }
    }

    /// `(field, lo, hi)` when the condition requires `lo <= field < hi` (or `<=`) for one
    /// datetime field — what an index can answer.
    pub fn datetime_range(&self) -> Option<(usize, i64, i64)> {
        fn walk(c: &Cond, out: &mut Vec<(usize, &'static str, i64)>) {
            match c {
                Cond::Cmp {
                    field,
                    op,
                    lit: Literal::DateTime(t),
                } => out.push((*field, op, *t)),
                Cond::And(a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                _ => {}
            }
        }
        let mut v = Vec::new();
        walk(self, &mut v);
        let field = v.first()?.0;
        let lo = v
            .iter()
            .filter(|(f, op, _)| *f == field && (*op == ">=" || *op == ">"))
            .map(|x| x.2)
            .max()?;
        let hi = v
            .iter()
            .filter(|(f, op, _)| *f == field && (*op == "<" || *op == "<="))
            .map(|x| x.2)
            .min()?;
        // inclusive bounds widened by one ms; the full condition is still applied to candidates
        Some((field, lo, hi + 1))
    }

    fn bounds(&self) -> (Option<i64>, Option<i64>) {
        match self {
            Cond::Cmp {
                op,
                lit: Literal::DateTime(t),
                ..
            } => match *op {
                ">=" | ">" => (Some(*t), None),
                "<" | "<=" => (None, Some(*t)),
                _ => (None, None),
            },
            Cond::And(a, b) => {
                let (x, y) = (a.bounds(), b.bounds());
                (x.0.or(y.0), x.1.or(y.1))
            }
            _ => (None, None),
        }
    }
}

/// Orders two rows by the ORDER BY keys (nulls first by default; text case-insensitive).
pub fn order_rows(a: &[Cell], b: &[Cell], keys: &[OrderKey]) -> Ordering {
    for k in keys {
        let (x, y) = (&a[k.field], &b[k.field]);
        let o = match (x, y) {
            (Cell::Null, Cell::Null) => Ordering::Equal,
            (Cell::Null, _) => {
                if k.nulls_last {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (_, Cell::Null) => {
                if k.nulls_last {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            _ => {
                let o = cell_cmp(x, y);
                if k.desc {
                    o.reverse()
                } else {
                    o
                }
            }
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

fn cell_cmp(a: &Cell, b: &Cell) -> Ordering {
    match (a, b) {
        (Cell::DateTime(x), Cell::DateTime(y)) => x.cmp(y),
        (Cell::Date(x), Cell::Date(y)) => x.cmp(y),
        (Cell::Time(x), Cell::Time(y)) => x.cmp(y),
        (Cell::Int(x), Cell::Int(y)) => x.cmp(y),
        (Cell::Cents(x), Cell::Cents(y)) => x.cmp(y),
        (Cell::Num(x), Cell::Num(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (Cell::Bool(x), Cell::Bool(y)) => x.cmp(y),
        // Ids sort by their exact text (case-safe ids differ by case).
        (Cell::Str(x), Cell::Str(y)) => x
            .to_lowercase()
            .cmp(&y.to_lowercase())
            .then_with(|| x.cmp(y)),
        _ => Ordering::Equal,
    }
}

/// A SOQL date literal (`2026-01-31`) as days since 1970-01-01 — parsed here with chrono,
/// not with the product's decoder, so the emulator can catch the product's date mistakes.
fn literal_date_days(t: &str) -> Option<i32> {
    let d = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((d - epoch).num_days()).ok()
}

/// A SOQL datetime literal (`2026-01-31T10:00:00Z`, `…T10:00:00.000+0000`, `…+01:00`) as epoch
/// milliseconds, parsed with chrono (see [`literal_date_days`]).
fn literal_datetime_ms(t: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t)
        .or_else(|_| chrono::DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|x| x.timestamp_millis())
}

#[cfg(test)]
mod tests;
