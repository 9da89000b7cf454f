//! Serde types for describe results (only the keys forcelake reads; the rest are ignored).

use serde::Deserialize;

/// `GET /sobjects/{Object}/describe`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectDescribe {
    pub name: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub custom: bool,
    #[serde(default = "yes")]
    pub queryable: bool,
    /// getDeleted (and getUpdated) answer only for replicateable objects.
    #[serde(default = "yes")]
    pub replicateable: bool,
    pub fields: Vec<FieldDescribe>,
}

fn yes() -> bool {
    true
}

/// One entry of `fields[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldDescribe {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub custom: bool,
    #[serde(default)]
    pub calculated: bool,
    #[serde(default)]
    pub nillable: bool,
    #[serde(default)]
    pub precision: u32,
    #[serde(default)]
    pub scale: i32,
    #[serde(default)]
    pub digits: u32,
    #[serde(default)]
    pub length: u32,
    #[serde(default)]
    pub compound_field_name: Option<String>,
    #[serde(default)]
    pub soap_type: String,
    /// Lookups: the relationship name (`Owner` for `OwnerId`) and the objects it can point to.
    #[serde(default)]
    pub relationship_name: Option<String>,
    #[serde(default)]
    pub reference_to: Vec<String>,
    /// A lookup that can point to several objects (`Owner` on Case: Group or User).
    #[serde(default)]
    pub polymorphic_foreign_key: bool,
}

impl FieldDescribe {
    /// A lookup whose parent may be one of several objects: SOQL reaches its parent only as
    /// the `Name` object ([`name_object`]).
    pub fn is_polymorphic(&self) -> bool {
        self.polymorphic_foreign_key || self.reference_to.len() > 1
    }
}

/// The fields of Salesforce's `Name` object, which stands for the parent of a polymorphic
/// lookup (`Case.Owner`, `Task.What`, `Task.Who`): the only fields SOQL allows after such a
/// step (object reference, "Name"). A field the actual parent lacks comes back null.
pub const NAME_FIELDS: [(&str, &str); 20] = [
    ("Id", "id"),
    ("Alias", "string"),
    ("Email", "email"),
    ("FirstName", "string"),
    ("IsActive", "boolean"),
    ("LastName", "string"),
    ("LastReferencedDate", "datetime"),
    ("LastViewedDate", "datetime"),
    ("MiddleName", "string"),
    ("Name", "string"),
    ("NameOrAlias", "string"),
    ("Phone", "phone"),
    ("ProfileId", "reference"),
    ("RecordTypeId", "reference"),
    ("SmallPhotoUrl", "url"),
    ("Suffix", "string"),
    ("Title", "string"),
    ("Type", "picklist"),
    ("UserRoleId", "reference"),
    ("Username", "string"),
];

/// The `Name` object as a describe (it cannot be queried on its own).
pub fn name_object() -> ObjectDescribe {
    ObjectDescribe {
        name: "Name".into(),
        label: "Name".into(),
        custom: false,
        queryable: false,
        replicateable: false,
        fields: NAME_FIELDS
            .iter()
            .map(|(n, t)| FieldDescribe {
                name: (*n).into(),
                field_type: (*t).into(),
                label: (*n).into(),
                custom: false,
                calculated: false,
                nillable: *n != "Id",
                precision: 0,
                scale: 0,
                digits: 0,
                length: 0,
                compound_field_name: None,
                soap_type: String::new(),
                relationship_name: None,
                reference_to: Vec::new(),
                polymorphic_foreign_key: false,
            })
            .collect(),
    }
}

impl ObjectDescribe {
    /// The field with this name, compared case-insensitively as SOQL does.
    pub fn field(&self, name: &str) -> Option<&FieldDescribe> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The lookup whose relationship name this is (`Owner` → `OwnerId`), case-insensitively.
    pub fn relationship(&self, name: &str) -> Option<&FieldDescribe> {
        self.fields.iter().find(|f| {
            f.relationship_name
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(name))
        })
    }
}

/// `GET /sobjects` (global describe).
#[derive(Debug, Clone, Deserialize)]
pub struct GlobalDescribe {
    pub sobjects: Vec<GlobalObject>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GlobalObject {
    pub name: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub queryable: bool,
    #[serde(default)]
    pub custom: bool,
}
