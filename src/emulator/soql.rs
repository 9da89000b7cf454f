//! The SOQL subset the emulator understands: a select list (or `COUNT()`), `FROM`, `WHERE` with
//! comparisons joined by AND/OR/NOT and parentheses, `ORDER BY` (ASC/DESC, NULLS FIRST/LAST),
//! `LIMIT` and `OFFSET`. Errors carry Salesforce's errorCodes and message shapes.

use std::cmp::Ordering;

use crate::emulator::data::{Cell, ObjectDef};

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

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(String),
    Str(String),
    /// A date or datetime literal (parsed later).
    Temporal(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn tokenize(q: &str) -> Result<Vec<(Tok, usize)>, SoqlError> {
    let b = q.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            out.push((Tok::Ident(q[start..i].to_string()), start));
        } else if c.is_ascii_digit() || (c == b'-' && i + 1 < b.len() && b[i + 1].is_ascii_digit())
        {
            i += 1;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'-' | b':' | b'.' | b'+'))
            {
                i += 1;
            }
            let t = &q[start..i];
            if t.len() >= 10 && t.as_bytes()[4] == b'-' {
                out.push((Tok::Temporal(t.to_string()), start));
            } else {
                out.push((Tok::Num(t.to_string()), start));
            }
        } else if c == b'\'' {
            i += 1;
            let mut s = String::new();
            loop {
                if i >= b.len() {
                    return Err(malformed(q, start, "line 1: unterminated string literal"));
                }
                if b[i] == b'\\' && i + 1 < b.len() {
                    s.push(b[i + 1] as char);
                    i += 2;
                } else if b[i] == b'\'' {
                    i += 1;
                    break;
                } else {
                    let ch = q[i..].chars().next().unwrap_or('?');
                    s.push(ch);
                    i += ch.len_utf8();
                }
            }
            out.push((Tok::Str(s), start));
        } else {
            let two = if i + 1 < b.len() { &q[i..i + 2] } else { "" };
            let (tok, len) = match (c, two) {
                (_, "<=") => (Tok::Op("<="), 2),
                (_, ">=") => (Tok::Op(">="), 2),
                (_, "!=") => (Tok::Op("!="), 2),
                (_, "<>") => (Tok::Op("!="), 2),
                (b'<', _) => (Tok::Op("<"), 1),
                (b'>', _) => (Tok::Op(">"), 1),
                (b'=', _) => (Tok::Op("="), 1),
                (b'(', _) => (Tok::LParen, 1),
                (b')', _) => (Tok::RParen, 1),
                (b',', _) => (Tok::Comma, 1),
                _ => {
                    return Err(malformed(
                        q,
                        start,
                        &format!(
                            "line 1:{} no viable alternative at character '{}'",
                            start + 1,
                            c as char
                        ),
                    ))
                }
            };
            i += len;
            out.push((tok, start));
        }
    }
    Ok(out)
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

struct Parser<'a> {
    q: &'a str,
    toks: Vec<(Tok, usize)>,
    pos: usize,
    def: Option<&'a ObjectDef>,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }
    fn at(&self) -> usize {
        self.toks.get(self.pos).map(|t| t.1).unwrap_or(self.q.len())
    }
    fn keyword(&mut self, kw: &str) -> bool {
        if let Some(Tok::Ident(s)) = self.peek() {
            if s.eq_ignore_ascii_case(kw) {
                self.pos += 1;
                return true;
            }
        }
        false
    }
    fn expect_kw(&mut self, kw: &str) -> Result<(), SoqlError> {
        if self.keyword(kw) {
            Ok(())
        } else {
            Err(malformed(
                self.q,
                self.at(),
                &format!("unexpected token: expecting '{kw}'"),
            ))
        }
    }
    fn close_paren(&mut self) -> Result<(), SoqlError> {
        if self.peek() == Some(&Tok::RParen) {
            self.pos += 1;
            Ok(())
        } else {
            Err(malformed(
                self.q,
                self.at(),
                "unexpected token: expecting ')'",
            ))
        }
    }
    /// An alias after an aggregate item (`COUNT(Id) n`).
    fn alias(&mut self) -> Option<String> {
        match self.peek() {
            Some(Tok::Ident(s)) if !s.eq_ignore_ascii_case("FROM") => {
                let a = s.clone();
                self.pos += 1;
                Some(a)
            }
            _ => None,
        }
    }
    fn ident(&mut self) -> Result<(String, usize), SoqlError> {
        match self.toks.get(self.pos).cloned() {
            Some((Tok::Ident(s), p)) => {
                self.pos += 1;
                Ok((s, p))
            }
            _ => Err(malformed(
                self.q,
                self.at(),
                "unexpected token: expecting a field name",
            )),
        }
    }
    fn field(&self, name: &str, pos: usize) -> Result<usize, SoqlError> {
        let def = self.def.expect("object resolved before fields");
        def.field_index(name).ok_or_else(|| SoqlError {
            code: "INVALID_FIELD",
            message: format!(
                "\n{}\n{}^\nERROR at Row:1:Column:{}\nNo such column '{}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                self.q,
                " ".repeat(pos),
                pos + 1,
                name,
                def.name
            ),
        })
    }

    fn cond(&mut self) -> Result<Cond, SoqlError> {
        let mut left = self.and()?;
        while self.keyword("OR") {
            let right = self.and()?;
            left = Cond::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Cond, SoqlError> {
        let mut left = self.unary()?;
        while self.keyword("AND") {
            let right = self.unary()?;
            left = Cond::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }
    fn unary(&mut self) -> Result<Cond, SoqlError> {
        if self.keyword("NOT") {
            return Ok(Cond::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let c = self.cond()?;
            if self.peek() != Some(&Tok::RParen) {
                return Err(malformed(
                    self.q,
                    self.at(),
                    "unexpected token: expecting ')'",
                ));
            }
            self.pos += 1;
            return Ok(c);
        }
        let (name, p) = self.ident()?;
        let field = self.field(&name, p)?;
        let negate_in = if self.keyword("NOT") {
            self.expect_kw("IN")?;
            Some(true)
        } else if self.keyword("IN") {
            Some(false)
        } else {
            None
        };
        if let Some(negate) = negate_in {
            if self.peek() != Some(&Tok::LParen) {
                return Err(malformed(
                    self.q,
                    self.at(),
                    "unexpected token: expecting '('",
                ));
            }
            self.pos += 1;
            let mut lits = vec![];
            loop {
                lits.push(self.literal(field)?);
                match self.peek() {
                    Some(Tok::Comma) => self.pos += 1,
                    Some(Tok::RParen) => {
                        self.pos += 1;
                        break;
                    }
                    _ => {
                        return Err(malformed(
                            self.q,
                            self.at(),
                            "unexpected token: expecting ')'",
                        ))
                    }
                }
            }
            return Ok(Cond::In {
                field,
                lits,
                negate,
            });
        }
        let op = match self.toks.get(self.pos) {
            Some((Tok::Op(o), _)) => *o,
            _ => {
                return Err(malformed(
                    self.q,
                    self.at(),
                    "unexpected token: expecting a comparison operator",
                ))
            }
        };
        self.pos += 1;
        let lit = self.literal(field)?;
        Ok(Cond::Cmp { field, op, lit })
    }

    fn literal(&mut self, field: usize) -> Result<Literal, SoqlError> {
        let def = self.def.expect("object resolved");
        let f = &def.fields[field];
        let (tok, p) = self.toks.get(self.pos).cloned().ok_or_else(|| {
            malformed(
                self.q,
                self.q.len(),
                "unexpected end of query: expecting a value",
            )
        })?;
        self.pos += 1;
        let bad_type = |what: &str| SoqlError {
            code: "INVALID_FIELD",
            message: format!(
                "\n{}\n{}^\nERROR at Row:1:Column:{}\n{what}",
                self.q,
                " ".repeat(p),
                p + 1
            ),
        };
        Ok(match tok {
            Tok::Ident(s) if s.eq_ignore_ascii_case("null") => Literal::Null,
            Tok::Ident(s) if s.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Tok::Ident(s) if s.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Tok::Str(s) => Literal::Str(s),
            Tok::Num(n) => Literal::Num(
                n.parse()
                    .map_err(|_| malformed(self.q, p, "invalid number"))?,
            ),
            Tok::Temporal(t) => {
                if t.len() == 10 {
                    let d = literal_date_days(&t).ok_or_else(|| {
                        malformed(self.q, p, &format!("line 1:{} invalid date: {t}", p + 1))
                    })?;
                    if f.ftype == "datetime" {
                        return Err(bad_type(&format!("value of filter criterion for field '{}' must be of type dateTime and should not be enclosed in quotes", f.name)));
                    }
                    Literal::Date(d)
                } else {
                    let ms = literal_datetime_ms(&t).ok_or_else(|| {
                        malformed(
                            self.q,
                            p,
                            &format!("line 1:{} invalid dateTime: {t}", p + 1),
                        )
                    })?;
                    if f.ftype == "date" {
                        return Err(bad_type(&format!("value of filter criterion for field '{}' must be of type date and should not be enclosed in quotes", f.name)));
                    }
                    Literal::DateTime(ms)
                }
            }
            _ => return Err(malformed(self.q, p, "unexpected token: expecting a value")),
        })
    }
}

/// Parses a query; `lookup` resolves the object name.
pub fn parse<'a>(
    q: &'a str,
    lookup: impl Fn(&str) -> Option<&'a ObjectDef>,
) -> Result<(Query, &'a ObjectDef), SoqlError> {
    if q.trim().is_empty() {
        return Err(SoqlError {
            code: "MALFORMED_QUERY",
            message: "SOQL statements cannot be empty or null".into(),
        });
    }
    let toks = tokenize(q)?;
    let mut p = Parser {
        q,
        toks,
        pos: 0,
        def: None,
    };
    p.expect_kw("SELECT")?;
    // Collect the select list, resolve after FROM. Aggregate items (`DAY_ONLY(f)`,
    // `COUNT(f)`) take keys `expr0`, `expr1`, … in select order unless aliased.
    let mut select: Vec<(String, usize)> = vec![];
    let mut count = false;
    let mut day_item: Option<(String, usize, String)> = None;
    let mut count_item: Option<(String, usize, String)> = None;
    let mut exprs = 0;
    loop {
        let (name, pos) = p.ident()?;
        let call = p.peek() == Some(&Tok::LParen);
        if name.eq_ignore_ascii_case("COUNT") && call {
            p.pos += 1;
            if p.peek() == Some(&Tok::RParen) {
                p.pos += 1;
                count = true;
            } else {
                let (f, fpos) = p.ident()?;
                p.close_paren()?;
                let key = p.alias().unwrap_or_else(|| format!("expr{exprs}"));
                exprs += 1;
                count_item = Some((f, fpos, key));
            }
        } else if name.eq_ignore_ascii_case("DAY_ONLY") && call {
            p.pos += 1;
            let (f, fpos) = p.ident()?;
            p.close_paren()?;
            let key = p.alias().unwrap_or_else(|| format!("expr{exprs}"));
            exprs += 1;
            day_item = Some((f, fpos, key));
        } else {
            select.push((name, pos));
        }
        if p.peek() == Some(&Tok::Comma) {
            p.pos += 1;
        } else {
            break;
        }
    }
    p.expect_kw("FROM")?;
    let (object, opos) = p.ident()?;
    let def = lookup(&object).ok_or_else(|| SoqlError {
        code: "INVALID_TYPE",
        message: format!(
            "\n{q}\n{}^\nERROR at Row:1:Column:{}\nsObject type '{object}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
            " ".repeat(opos),
            opos + 1
        ),
    })?;
    p.def = Some(def);
    let mut fields = Vec::with_capacity(select.len());
    let mut rels: Vec<(usize, RelSelect)> = Vec::new();
    for (name, pos) in &select {
        if name.contains('.') {
            let at = fields.len();
            add_path(q, def, name, *pos, &lookup, at, &mut rels)?;
            continue;
        }
        let i = p.field(name, *pos)?;
        if fields.contains(&i) {
            return Err(SoqlError {
                code: "INVALID_FIELD",
                message: format!("duplicate field selected: {}", def.fields[i].name),
            });
        }
        fields.push(i);
    }
    if count && !(fields.is_empty() && rels.is_empty()) {
        return Err(malformed(
            q,
            0,
            "COUNT() cannot be combined with other fields",
        ));
    }
    let cond = if p.keyword("WHERE") {
        Some(p.cond()?)
    } else {
        None
    };
    let mut group = None;
    if p.keyword("GROUP") {
        p.expect_kw("BY")?;
        let (name, pos) = p.ident()?;
        let (gname, gpos, day_only) =
            if name.eq_ignore_ascii_case("DAY_ONLY") && p.peek() == Some(&Tok::LParen) {
                p.pos += 1;
                let (f, fpos) = p.ident()?;
                p.close_paren()?;
                (f, fpos, true)
            } else {
                (name, pos, false)
            };
        let field = p.field(&gname, gpos)?;
        let ftype = def.fields[field].ftype;
        if day_only && ftype != "datetime" {
            return Err(malformed(q, gpos, "DAY_ONLY() takes a dateTime field"));
        }
        if !day_only && ftype != "date" {
            return Err(malformed(
                q,
                gpos,
                "this emulator groups only by a date field or DAY_ONLY(dateTime)",
            ));
        }
        let day_key = match (&day_item, day_only) {
            (Some((f, fpos, key)), true) if p.field(f, *fpos)? == field => key.clone(),
            (None, false) if fields == [field] => def.fields[field].name.clone(),
            _ => {
                return Err(malformed(
                    q,
                    0,
                    "Field must be grouped or aggregated: the select list must name the GROUP BY expression",
                ))
            }
        };
        let count_key = match &count_item {
            Some((f, fpos, key)) => {
                p.field(f, *fpos)?;
                key.clone()
            }
            None => {
                return Err(malformed(
                    q,
                    0,
                    "this emulator's GROUP BY needs COUNT(field)",
                ))
            }
        };
        fields.clear();
        group = Some(GroupByDay {
            field,
            day_only,
            day_key,
            count_key,
        });
    } else if day_item.is_some() || count_item.is_some() {
        return Err(malformed(
            q,
            0,
            "an aggregate function in the select list needs GROUP BY here",
        ));
    }
    let mut order = vec![];
    if p.keyword("ORDER") {
        p.expect_kw("BY")?;
        loop {
            let (name, pos) = p.ident()?;
            let field = p.field(&name, pos)?;
            let desc = if p.keyword("DESC") {
                true
            } else {
                p.keyword("ASC");
                false
            };
            let mut nulls_last = desc;
            if p.keyword("NULLS") {
                if p.keyword("LAST") {
                    nulls_last = true;
                } else {
                    p.expect_kw("FIRST")?;
                    nulls_last = false;
                }
            }
            order.push(OrderKey {
                field,
                desc,
                nulls_last,
            });
            if p.peek() == Some(&Tok::Comma) {
                p.pos += 1;
            } else {
                break;
            }
        }
    }
    let mut limit = None;
    let mut offset = 0;
    loop {
        if p.keyword("LIMIT") {
            match p.toks.get(p.pos).cloned() {
                Some((Tok::Num(n), _)) => {
                    limit = Some(
                        n.parse()
                            .map_err(|_| malformed(q, p.at(), "invalid LIMIT"))?,
                    );
                    p.pos += 1;
                }
                _ => {
                    return Err(malformed(
                        q,
                        p.at(),
                        "unexpected token: expecting a number after LIMIT",
                    ))
                }
            }
        } else if p.keyword("OFFSET") {
            match p.toks.get(p.pos).cloned() {
                Some((Tok::Num(n), _)) => {
                    offset = n
                        .parse()
                        .map_err(|_| malformed(q, p.at(), "invalid OFFSET"))?;
                    p.pos += 1;
                }
                _ => {
                    return Err(malformed(
                        q,
                        p.at(),
                        "unexpected token: expecting a number after OFFSET",
                    ))
                }
            }
        } else {
            break;
        }
    }
    if p.pos < p.toks.len() {
        return Err(malformed(
            q,
            p.at(),
            &format!("line 1:{} unexpected token", p.at() + 1),
        ));
    }
    Ok((
        Query {
            object: def.name.clone(),
            fields,
            rels,
            count,
            group,
            cond,
            order,
            limit,
            offset,
        },
        def,
    ))
}

/// Adds one select path (`Account.Owner.Name`) to the relationships selected, checking each
/// step as Salesforce does: a step is a lookup's relationship name, a polymorphic lookup's
/// parent is the `Name` object (its fields only, no further step).
fn add_path<'a>(
    q: &str,
    root: &'a ObjectDef,
    path: &str,
    pos: usize,
    lookup: &impl Fn(&str) -> Option<&'a ObjectDef>,
    at: usize,
    rels: &mut Vec<(usize, RelSelect)>,
) -> Result<(), SoqlError> {
    let steps: Vec<&str> = path.split('.').collect();
    let (leaf, hops) = steps.split_last().expect("a path has a dot");
    let relationship_error = |step: &str| {
        SoqlError {
        code: "INVALID_FIELD",
        message: format!(
            "\n{q}\n{}^\nERROR at Row:1:Column:{}\nDidn't understand relationship '{step}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.",
            " ".repeat(pos),
            pos + 1
        ),
    }
    };
    let column_error = |entity: &str| {
        SoqlError {
        code: "INVALID_FIELD",
        message: format!(
            "\n{q}\n{}^\nERROR at Row:1:Column:{}\nNo such column '{leaf}' on entity '{entity}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
            " ".repeat(pos),
            pos + 1
        ),
    }
    };
    if hops.len() > 5 {
        return Err(SoqlError {
            code: "MALFORMED_QUERY",
            message: format!("\n{q}\nERROR at Row:1:Column:{}\nSOQL statements cannot query more than 5 levels of child-to-parent relationships", pos + 1),
        });
    }
    // Walk the steps: resolve each against the object it leaves.
    let mut at_def: Option<&ObjectDef> = Some(root);
    let mut chain: Vec<(usize, String, Vec<String>)> = Vec::new();
    for step in hops {
        let Some(d) = at_def else {
            return Err(relationship_error(step)); // past a polymorphic lookup
        };
        let Some(fk) = d.relationship_index(step) else {
            return Err(relationship_error(step));
        };
        let f = &d.fields[fk];
        let name = f
            .relationship_name()
            .expect("relationship_index finds lookups");
        let targets: Vec<String> = f.reference_to.iter().map(|t| t.to_string()).collect();
        at_def = if targets.len() > 1 {
            None
        } else {
            targets.first().and_then(|t| lookup(t))
        };
        chain.push((fk, name, targets));
    }
    let leaf_name = match at_def {
        Some(d) => match d.field_index(leaf) {
            Some(i) => d.fields[i].name.clone(),
            None => return Err(column_error(&d.name)),
        },
        None => match NAME_OBJECT_FIELDS
            .iter()
            .find(|n| n.eq_ignore_ascii_case(leaf))
        {
            Some(n) => n.to_string(),
            None => return Err(column_error("Name")),
        },
    };
    // Merge into the tree of selected relationships.
    let (first, rest) = chain.split_first().expect("a path has a step");
    let top = match rels.iter().position(|(_, r)| r.name == first.1) {
        Some(i) => i,
        None => {
            rels.push((
                at,
                RelSelect {
                    fk: first.0,
                    name: first.1.clone(),
                    targets: first.2.clone(),
                    items: Vec::new(),
                },
            ));
            rels.len() - 1
        }
    };
    let mut node = &mut rels[top].1;
    for (fk, name, targets) in rest {
        let i = node
            .items
            .iter()
            .position(|it| matches!(it, RelItem::Rel(r) if &r.name == name));
        let i = match i {
            Some(i) => i,
            None => {
                node.items.push(RelItem::Rel(RelSelect {
                    fk: *fk,
                    name: name.clone(),
                    targets: targets.clone(),
                    items: Vec::new(),
                }));
                node.items.len() - 1
            }
        };
        node = match &mut node.items[i] {
            RelItem::Rel(r) => r,
            RelItem::Field(_) => unreachable!("found as a relationship"),
        };
    }
    if node
        .items
        .iter()
        .any(|it| matches!(it, RelItem::Field(f) if *f == leaf_name))
    {
        return Err(SoqlError {
            code: "INVALID_FIELD",
            message: format!("duplicate field selected: {path}"),
        });
    }
    node.items.push(RelItem::Field(leaf_name));
    Ok(())
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
