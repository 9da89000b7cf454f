//! Child-to-parent relationship paths (`Owner.Name`, `Account.Owner.Email`, `Account__r.Name`):
//! each step is checked against the describe of the object it reaches, and the paths of one
//! relationship become one struct column (pure: describes come in, nothing is fetched here).
//!
//! A step is a lookup's `relationshipName`; its parent is the lookup's `referenceTo` object,
//! or — for a polymorphic lookup (several `referenceTo`) — Salesforce's `Name` object, whose
//! fields are the only ones SOQL allows after it and which cannot be followed further.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use crate::salesforce::describe::{name_object, FieldDescribe, ObjectDescribe, NAME_FIELDS};
use crate::salesforce::ident;

use super::{attach_components, column, Column, ColumnKind, SchemaError};

pub use crate::salesforce::ident::MAX_HOPS;

static NAME_OBJECT: LazyLock<ObjectDescribe> = LazyLock::new(name_object);

/// The describes a run has read, by object name (case-insensitive): each object is described
/// once however many paths reach it.
#[derive(Debug, Default, Clone)]
pub struct Describes {
    by_name: HashMap<String, Arc<ObjectDescribe>>,
}

impl Describes {
    pub fn insert(&mut self, d: Arc<ObjectDescribe>) {
        self.by_name.insert(d.name.to_ascii_lowercase(), d);
    }

    pub fn get(&self, name: &str) -> Option<Arc<ObjectDescribe>> {
        self.by_name.get(&name.to_ascii_lowercase()).cloned()
    }

    fn find(&self, name: &str) -> Option<&ObjectDescribe> {
        self.by_name.get(&name.to_ascii_lowercase()).map(|d| &**d)
    }
}

/// One followed relationship: the lookup field (`OwnerId`) on the object the step starts from.
struct Hop<'a> {
    lookup: &'a FieldDescribe,
}

enum Walk<'a> {
    /// This object's describe is needed to go on.
    Need(String),
    Found {
        hops: Vec<Hop<'a>>,
        leaf: &'a FieldDescribe,
        /// The object the leaf field belongs to (`Name` after a polymorphic lookup).
        leaf_object: &'a ObjectDescribe,
    },
}

/// True when a configured field names a relationship path.
pub fn is_path(field: &str) -> bool {
    field.contains('.')
}

/// The first parent object a path of `fields` reaches whose describe `known` lacks, with that
/// path (describe the object, add it and ask again), or `None` when every path can be
/// resolved. A bad step is an error here already, so no describe is fetched past it.
pub fn missing_describe<'f>(
    root: &ObjectDescribe,
    fields: Option<&'f [String]>,
    known: &Describes,
) -> Result<Option<(String, &'f str)>, SchemaError> {
    for f in fields.unwrap_or_default().iter().filter(|f| is_path(f)) {
        if let Walk::Need(object) = walk(root, f, known)? {
            return Ok(Some((object, f.as_str())));
        }
    }
    Ok(None)
}

/// Adds the column a path stands for to `columns`: inside the struct column of its first
/// relationship (created at its first path), nested for each further step.
pub(super) fn add_path(
    root: &ObjectDescribe,
    path: &str,
    known: &Describes,
    columns: &mut Vec<Column>,
) -> Result<(), SchemaError> {
    match walk(root, path, known)? {
        Walk::Need(object) => Err(SchemaError::BadPath {
            object: root.name.clone(),
            path: path.to_string(),
            message: format!("the describe of {object} was not read (a bug: please report it)"),
        }),
        Walk::Found {
            hops,
            leaf,
            leaf_object,
        } => {
            let mut level = columns;
            for h in &hops {
                let rel = h
                    .lookup
                    .relationship_name
                    .clone()
                    .unwrap_or_else(|| h.lookup.name.clone());
                let at = match level.iter().position(|c| c.name == rel) {
                    Some(i) => i,
                    None => {
                        level.push(relationship_column(h.lookup, rel));
                        level.len() - 1
                    }
                };
                level = &mut level[at]
                    .parent
                    .as_mut()
                    .expect("relationship columns have a parent")
                    .fields;
            }
            if level.iter().any(|c| c.name == leaf.name) {
                return Err(SchemaError::BadPath {
                    object: root.name.clone(),
                    path: path.to_string(),
                    message: "is listed twice (the same field under another spelling)".into(),
                });
            }
            let mut c = column(leaf);
            c.nullable = true; // every parent field is null when its lookup is empty
            level.push(c);
            let at = level.len() - 1;
            attach_components(leaf_object, &mut level[at..]);
            Ok(())
        }
    }
}

/// The struct column of one relationship (its fields are added by the paths that use it).
fn relationship_column(lookup: &FieldDescribe, name: String) -> Column {
    Column {
        name,
        sf_type: "relationship".into(),
        kind: ColumnKind::Relationship,
        nullable: true,
        label: lookup.label.clone(),
        calculated: false,
        components: Vec::new(),
        parent: Some(Box::new(super::Parent {
            lookup: lookup.name.clone(),
            reference_to: lookup.reference_to.clone(),
            polymorphic: lookup.is_polymorphic(),
            fields: Vec::new(),
        })),
    }
}

fn walk<'a>(
    root: &'a ObjectDescribe,
    path: &str,
    known: &'a Describes,
) -> Result<Walk<'a>, SchemaError> {
    let steps: Vec<&str> = path.split('.').collect();
    let bad = |message: String| SchemaError::BadPath {
        object: root.name.clone(),
        path: path.to_string(),
        message,
    };
    if steps.len() > MAX_HOPS + 1 {
        return Err(bad(format!(
            "follows {} relationships; SOQL follows at most {MAX_HOPS} in one path",
            steps.len() - 1
        )));
    }
    let (leaf, rels) = steps.split_last().expect("split yields one piece at least");
    let mut at: &ObjectDescribe = root;
    let mut hops: Vec<Hop> = Vec::with_capacity(rels.len());
    for (k, step) in rels.iter().enumerate() {
        let so_far = steps[..k].join(".");
        let Some(lookup) = at.relationship(step) else {
            return Err(bad(not_a_relationship(at, &hops, &so_far, step, k + 1)));
        };
        let parent: &ObjectDescribe = if lookup.is_polymorphic() {
            &NAME_OBJECT
        } else {
            let Some(target) = lookup.reference_to.first() else {
                return Err(bad(format!(
                    "{} on {} points to no object in describe (step {} of the path)",
                    lookup.name,
                    at.name,
                    k + 1
                )));
            };
            match known.find(target) {
                Some(d) => d,
                None => return Ok(Walk::Need(target.clone())),
            }
        };
        hops.push(Hop { lookup });
        at = parent;
    }
    match at.field(leaf) {
        Some(f) => Ok(Walk::Found {
            hops,
            leaf: f,
            leaf_object: at,
        }),
        None => Err(bad(no_such_leaf(at, &hops, &steps, leaf))),
    }
}

/// Why `step` cannot be followed from `at`, and what can.
fn not_a_relationship(
    at: &ObjectDescribe,
    hops: &[Hop],
    so_far: &str,
    step: &str,
    k: usize,
) -> String {
    if let Some(poly) = hops.last().filter(|h| h.lookup.is_polymorphic()) {
        return format!(
            "{} is polymorphic ({}): SOQL reaches its parent only as the Name object, which cannot be followed further (\"Didn't understand relationship '{step}' in field path\"); after {so_far} name one of the Name fields: {}",
            rel_name(poly),
            poly.lookup.reference_to.join(", "),
            name_field_list()
        );
    }
    let place = format!("step {k} of the path");
    if let Some(f) = at.field(step) {
        return match &f.relationship_name {
            Some(r) => format!(
                "{} is the lookup field; a path follows its relationship name: {r} ({place})",
                f.name
            ),
            None => format!(
                "{} on {} is a {} field, not a relationship; only lookups can be followed ({place})",
                f.name, at.name, f.field_type
            ),
        };
    }
    let names = at
        .fields
        .iter()
        .filter_map(|f| f.relationship_name.as_deref());
    let close = ident::closest(step, names, 3);
    let hint = if close.is_empty() {
        String::new()
    } else {
        format!(
            "; did you mean {}?",
            close
                .iter()
                .map(|r| match at.relationship(r) {
                    Some(l) => format!("{r} (→ {})", l.reference_to.join(" or ")),
                    None => r.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let custom = if step.ends_with("__c") {
        format!(
            " (a custom lookup is followed as {}__r)",
            step.trim_end_matches("__c")
        )
    } else {
        String::new()
    };
    format!(
        "{} has no relationship {step} ({place}; Salesforce answers \"Didn't understand relationship '{step}' in field path\"){custom}{hint}",
        at.name
    )
}

/// Why `leaf` is not a field of `at`, and what is.
fn no_such_leaf(at: &ObjectDescribe, hops: &[Hop], steps: &[&str], leaf: &str) -> String {
    let place = format!("step {} of the path", steps.len());
    if let Some(poly) = hops.last().filter(|h| h.lookup.is_polymorphic()) {
        return format!(
            "{} is polymorphic ({}): SOQL reaches its parent only as the Name object and answers \"No such column '{leaf}' on entity 'Name'\" ({place}); the fields allowed are {}; for other fields sync {} and join on {}",
            rel_name(poly),
            poly.lookup.reference_to.join(", "),
            name_field_list(),
            poly.lookup.reference_to.join(" / "),
            poly.lookup.name,
        );
    }
    if let Some(l) = at.relationship(leaf) {
        let stem = steps[..steps.len() - 1].join(".");
        return format!(
            "{} is a relationship of {} (→ {}), not a field: name one of its parent's fields, e.g. {stem}.{}.Id",
            l.relationship_name.as_deref().unwrap_or(leaf),
            at.name,
            l.reference_to.join(" or "),
            l.relationship_name.as_deref().unwrap_or(leaf),
        );
    }
    let close = ident::closest(leaf, at.fields.iter().map(|f| f.name.as_str()), 3);
    format!(
        "{} has no field {leaf} ({place}){}",
        at.name,
        if close.is_empty() {
            String::new()
        } else {
            format!("; did you mean {}?", close.join(", "))
        }
    )
}

fn rel_name<'a>(h: &'a Hop) -> &'a str {
    h.lookup
        .relationship_name
        .as_deref()
        .unwrap_or(&h.lookup.name)
}

fn name_field_list() -> String {
    NAME_FIELDS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::fixtures::{describe, resolve, user};
    use arrow::datatypes::DataType;

    fn contact() -> ObjectDescribe {
        describe(
            "Contact",
            &[
                ("Id", "id"),
                ("LastName", "string"),
                ("AccountId", "reference:Account"),
                ("OwnerId", "reference:User"),
                ("Invoice__c", "reference:Invoice__c"),
                ("LastModifiedDate", "datetime"),
            ],
        )
    }

    fn account() -> ObjectDescribe {
        describe(
            "Account",
            &[
                ("Id", "id"),
                ("Name", "string"),
                ("AnnualRevenue", "currency"),
                ("OwnerId", "reference:User"),
                ("LastModifiedDate", "datetime"),
            ],
        )
    }

    fn case() -> ObjectDescribe {
        describe(
            "Case",
            &[
                ("Id", "id"),
                ("OwnerId", "reference:Group,User"),
                ("LastModifiedDate", "datetime"),
            ],
        )
    }

    fn err(root: &ObjectDescribe, field: &str, parents: &[ObjectDescribe]) -> String {
        resolve(root, &["Id", field], parents)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn describes_are_asked_for_step_by_step() {
        let fields: Vec<String> = vec!["Id".into(), "Account.Owner.Email".into()];
        let mut known = Describes::default();
        let need = |k: &Describes| missing_describe(&contact(), Some(&fields), k).unwrap();
        assert_eq!(need(&known).map(|n| n.0), Some("Account".to_string()));
        known.insert(Arc::new(account()));
        assert_eq!(need(&known).map(|n| n.0), Some("User".to_string()));
        known.insert(Arc::new(user()));
        assert_eq!(need(&known), None);
        // a bad first step is an error before any describe is fetched
        let bad: Vec<String> = vec!["Acount.Name".into()];
        assert!(missing_describe(&contact(), Some(&bad), &Describes::default()).is_err());
    }

    #[test]
    fn paths_of_one_relationship_share_one_nested_struct_column() {
        let s = resolve(
            &contact(),
            &[
                "Id",
                "Account.Name",
                "owner.name",
                "Account.Owner.Email",
                "Account.AnnualRevenue",
            ],
            &[account(), user()],
        )
        .unwrap();
        let names: Vec<&str> = s.arrow.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["Id", "Account", "Owner"]);
        assert_eq!(
            s.select_list(),
            [
                "Id",
                "Account.Name",
                "Account.Owner.Email",
                "Account.AnnualRevenue",
                "Owner.Name",
                "LastModifiedDate"
            ]
        );
        let acct = s.arrow.field(1);
        assert!(acct.is_nullable());
        assert_eq!(acct.metadata()["salesforce.type"], "relationship");
        assert_eq!(acct.metadata()["salesforce.lookup"], "AccountId");
        assert_eq!(acct.metadata()["salesforce.reference_to"], "Account");
        let DataType::Struct(kids) = acct.data_type() else {
            panic!("{acct:?}")
        };
        let kid_names: Vec<&str> = kids.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(kid_names, ["Name", "Owner", "AnnualRevenue"]);
        assert_eq!(kids[2].data_type(), &DataType::Decimal128(18, 2));
        assert_eq!(kids[2].metadata()["salesforce.type"], "currency");
        let DataType::Struct(owner) = kids[1].data_type() else {
            panic!()
        };
        assert_eq!(owner[0].name(), "Email");
        assert!(owner.iter().all(|f| f.is_nullable()));
        // Bulk selects each relationship's Id too (an empty lookup vs. null parent fields)
        assert_eq!(
            s.bulk_select_list(),
            [
                "Id",
                "Account.Name",
                "Account.Owner.Email",
                "Account.Owner.Id",
                "Account.AnnualRevenue",
                "Account.Id",
                "Owner.Name",
                "Owner.Id",
                "LastModifiedDate"
            ]
        );
    }

    #[test]
    fn a_custom_lookup_is_followed_by_its_r_name() {
        let inv = describe("Invoice__c", &[("Id", "id"), ("Name", "string")]);
        let s = resolve(&contact(), &["Invoice__r.Name"], &[inv.clone()]).unwrap();
        assert_eq!(s.arrow.field(0).name(), "Invoice__r");
        let e = err(&contact(), "Invoice__c.Name", &[inv]);
        assert!(
            e.contains(
                "Invoice__c is the lookup field; a path follows its relationship name: Invoice__r"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_typo_at_each_step_names_the_step_and_the_closest_names() {
        let parents = [account(), user()];
        let e = err(&contact(), "Acount.Owner.Email", &parents);
        assert!(
            e.contains(
                "Contact field \"Acount.Owner.Email\": Contact has no relationship Acount (step 1"
            ),
            "{e}"
        );
        assert!(e.contains("did you mean Account (→ Account)"), "{e}");
        let e = err(&contact(), "Account.Ownr.Email", &parents);
        assert!(
            e.contains("Account has no relationship Ownr (step 2"),
            "{e}"
        );
        assert!(e.contains("did you mean Owner (→ User)"), "{e}");
        let e = err(&contact(), "Account.Owner.Emial", &parents);
        assert!(
            e.contains("User has no field Emial (step 3 of the path); did you mean Email"),
            "{e}"
        );
        let e = err(&contact(), "AccountId.Name", &parents);
        assert!(e.contains("follows its relationship name: Account"), "{e}");
        let e = err(&contact(), "LastName.Foo", &parents);
        assert!(
            e.contains("LastName on Contact is a string field, not a relationship"),
            "{e}"
        );
        let e = err(&contact(), "Account.Owner", &parents);
        assert!(
            e.contains("Owner is a relationship of Account (→ User), not a field"),
            "{e}"
        );
        let e = err(
            &contact(),
            "Account.Owner.Manager.Manager.Manager.Manager.Name",
            &parents,
        );
        assert!(e.contains("at most 5"), "{e}");
    }

    #[test]
    fn a_polymorphic_lookup_offers_the_name_fields_only() {
        let s = resolve(&case(), &["Owner.Name", "Owner.Type", "Owner.Email"], &[]).unwrap();
        let f = s.arrow.field(0);
        assert_eq!(f.metadata()["salesforce.polymorphic"], "true");
        assert_eq!(f.metadata()["salesforce.reference_to"], "Group,User");
        let e = err(&case(), "Owner.Department", &[]);
        assert!(e.contains("Owner is polymorphic (Group, User)"), "{e}");
        assert!(
            e.contains("No such column 'Department' on entity 'Name'"),
            "{e}"
        );
        assert!(e.contains("Alias, Email"), "{e}");
        let e = err(&case(), "Owner.Manager.Name", &[]);
        assert!(e.contains("cannot be followed further"), "{e}");
    }

    #[test]
    fn the_same_path_twice_under_another_spelling_is_refused() {
        let e = resolve(&contact(), &["Owner.Name", "OWNER.name"], &[user()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("listed twice"), "{e}");
    }
}
