//! The SOQL parser: tokens, then one method per clause (select list, WHERE, GROUP BY, ORDER BY,
//! LIMIT/OFFSET), resolving names against the object's fields as Salesforce does.

use super::*;

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
    // Collect the select list, resolve after FROM.
    let select = p.select_list()?;
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
    let mut fields = Vec::with_capacity(select.names.len());
    let mut rels: Vec<(usize, RelSelect)> = Vec::new();
    for (name, pos) in &select.names {
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
    if select.count && !(fields.is_empty() && rels.is_empty()) {
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
    let group = p.group_by(def, &select, &mut fields)?;
    let order = p.order_by()?;
    let (limit, offset) = p.limit_offset()?;
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
            count: select.count,
            group,
            cond,
            order,
            limit,
            offset,
        },
        def,
    ))
}

/// The select list before `FROM`: fields and paths by name, `COUNT()`, and the aggregate items
/// `DAY_ONLY(f)` and `COUNT(f)` (keyed `expr0`, `expr1`, … in select order unless aliased).
#[derive(Default)]
struct SelectList {
    names: Vec<(String, usize)>,
    count: bool,
    day_item: Option<(String, usize, String)>,
    count_item: Option<(String, usize, String)>,
}

impl<'a> Parser<'a> {
    /// `SELECT` items up to `FROM`.
    fn select_list(&mut self) -> Result<SelectList, SoqlError> {
        let mut s = SelectList::default();
        let mut exprs = 0;
        loop {
            let (name, pos) = self.ident()?;
            let call = self.peek() == Some(&Tok::LParen);
            if name.eq_ignore_ascii_case("COUNT") && call {
                self.pos += 1;
                if self.peek() == Some(&Tok::RParen) {
                    self.pos += 1;
                    s.count = true;
                } else {
                    let (f, fpos) = self.ident()?;
                    self.close_paren()?;
                    let key = self.alias().unwrap_or_else(|| format!("expr{exprs}"));
                    exprs += 1;
                    s.count_item = Some((f, fpos, key));
                }
            } else if name.eq_ignore_ascii_case("DAY_ONLY") && call {
                self.pos += 1;
                let (f, fpos) = self.ident()?;
                self.close_paren()?;
                let key = self.alias().unwrap_or_else(|| format!("expr{exprs}"));
                exprs += 1;
                s.day_item = Some((f, fpos, key));
            } else {
                s.names.push((name, pos));
            }
            if self.peek() == Some(&Tok::Comma) {
                self.pos += 1;
            } else {
                return Ok(s);
            }
        }
    }

    /// `GROUP BY day_field` or `GROUP BY DAY_ONLY(datetime_field)`, with the select list
    /// naming the group and `COUNT(field)`: records per day. An aggregate query selects no
    /// plain field (`fields` is cleared).
    fn group_by(
        &mut self,
        def: &ObjectDef,
        select: &SelectList,
        fields: &mut Vec<usize>,
    ) -> Result<Option<GroupByDay>, SoqlError> {
        let q = self.q;
        if !self.keyword("GROUP") {
            if select.day_item.is_some() || select.count_item.is_some() {
                return Err(malformed(
                    q,
                    0,
                    "an aggregate function in the select list needs GROUP BY here",
                ));
            }
            return Ok(None);
        }
        self.expect_kw("BY")?;
        let (name, pos) = self.ident()?;
        let (gname, gpos, day_only) =
            if name.eq_ignore_ascii_case("DAY_ONLY") && self.peek() == Some(&Tok::LParen) {
                self.pos += 1;
                let (f, fpos) = self.ident()?;
                self.close_paren()?;
                (f, fpos, true)
            } else {
                (name, pos, false)
            };
        let field = self.field(&gname, gpos)?;
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
        let day_key = match (&select.day_item, day_only) {
            (Some((f, fpos, key)), true) if self.field(f, *fpos)? == field => key.clone(),
            (None, false) if *fields == [field] => def.fields[field].name.clone(),
            _ => {
                return Err(malformed(
                    q,
                    0,
                    "Field must be grouped or aggregated: the select list must name the GROUP BY expression",
                ))
            }
        };
        let count_key = match &select.count_item {
            Some((f, fpos, key)) => {
                self.field(f, *fpos)?;
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
        Ok(Some(GroupByDay {
            field,
            day_only,
            day_key,
            count_key,
        }))
    }

    /// `ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], …` (nulls last by default when descending).
    fn order_by(&mut self) -> Result<Vec<OrderKey>, SoqlError> {
        let mut order = vec![];
        if !self.keyword("ORDER") {
            return Ok(order);
        }
        self.expect_kw("BY")?;
        loop {
            let (name, pos) = self.ident()?;
            let field = self.field(&name, pos)?;
            let desc = if self.keyword("DESC") {
                true
            } else {
                self.keyword("ASC");
                false
            };
            let mut nulls_last = desc;
            if self.keyword("NULLS") {
                if self.keyword("LAST") {
                    nulls_last = true;
                } else {
                    self.expect_kw("FIRST")?;
                    nulls_last = false;
                }
            }
            order.push(OrderKey {
                field,
                desc,
                nulls_last,
            });
            if self.peek() == Some(&Tok::Comma) {
                self.pos += 1;
            } else {
                return Ok(order);
            }
        }
    }

    /// `LIMIT n` and `OFFSET n`, in either order.
    fn limit_offset(&mut self) -> Result<(Option<usize>, usize), SoqlError> {
        let mut limit = None;
        let mut offset = 0;
        loop {
            if self.keyword("LIMIT") {
                limit = Some(self.number_after("LIMIT")?);
            } else if self.keyword("OFFSET") {
                offset = self.number_after("OFFSET")?;
            } else {
                return Ok((limit, offset));
            }
        }
    }

    /// The number after `LIMIT` or `OFFSET`.
    fn number_after(&mut self, kw: &str) -> Result<usize, SoqlError> {
        match self.toks.get(self.pos).cloned() {
            Some((Tok::Num(n), _)) => {
                let v = n
                    .parse()
                    .map_err(|_| malformed(self.q, self.at(), &format!("invalid {kw}")))?;
                self.pos += 1;
                Ok(v)
            }
            _ => Err(malformed(
                self.q,
                self.at(),
                &format!("unexpected token: expecting a number after {kw}"),
            )),
        }
    }
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
