//! The fast reader against the visitor on generated pages: clean ones, and ones with every
//! kind of oddity (escapes, surrogates, control characters, wrong types, bad numbers, unknown,
//! missing, duplicate and reordered keys, whitespace, compound values, relationship objects,
//! truncation). Test code only.
#![cfg(test)]

use super::*;
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
    // relationships: `Owner.Name`, `Owner.IsActive`; `Parent.Name`, `Parent.Owner.Name`
    ("Owner", "owner"),
    ("Parent", "parent"),
];

fn schema() -> ObjectSchema {
    use crate::schema::fixtures;
    let mut fields: Vec<(&str, &str)> = FIELDS
        .iter()
        .copied()
        .filter(|(_, t)| !matches!(*t, "owner" | "parent"))
        .collect();
    fields.extend([
        ("OwnerId", "reference:User"),
        ("ParentId", "reference:Account"),
    ]);
    let d = fixtures::describe("Account", &fields);
    let mut list: Vec<&str> = FIELDS
        .iter()
        .filter(|(_, t)| !matches!(*t, "owner" | "parent"))
        .map(|(n, _)| *n)
        .collect();
    list.extend([
        "Owner.Name",
        "Owner.IsActive",
        "Parent.Name",
        "Parent.Owner.Name",
    ]);
    fixtures::resolve(&d, &list, &[d.clone(), fixtures::user()]).unwrap()
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
            "owner" => self.parent(out, &[("Name", "string"), ("IsActive", "boolean")]),
            "parent" => self.parent(out, &[("Name", "string"), ("Owner", "owner")]),
            "array" => {
                out.push('[');
                self.number("double", out);
                out.push_str(",{\"x\":[]}]");
            }
            _ => self.string(out),
        }
    }
    /// A parent record as Salesforce nests it: its own `attributes`, then its fields.
    fn parent(&mut self, out: &mut String, fields: &[(&str, &str)]) {
        out.push('{');
        let mut first = true;
        if self.below(5) != 0 {
            out.push_str("\"attributes\":{\"type\":\"User\",\"url\":\"/services/data/v62.0/sobjects/User/005x\"}");
            first = false;
        }
        for (key, kind) in fields {
            if self.odd() {
                continue; // missing key
            }
            if !first {
                out.push(',');
                self.ws(out);
            }
            first = false;
            let key = if self.odd() {
                self.pick(&["Email", "name", "Name"])
            } else {
                key
            };
            out.push_str(&format!("\"{key}\":"));
            self.ws(out);
            self.value(kind, out);
        }
        out.push('}');
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
