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
}

impl ObjectDescribe {
    /// The field with this name, compared case-insensitively as SOQL does.
    pub fn field(&self, name: &str) -> Option<&FieldDescribe> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
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
