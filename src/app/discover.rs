//! `discover`: the org's objects, or one object's fields, as configuration would name them.

use crate::app::{print_json, ExitCode, Out};
use crate::config::Config;
use crate::context::{Context, SyncError};

pub async fn discover(cfg: Config, object: Option<&str>, out: Out) -> Result<ExitCode, SyncError> {
    let json = out.json;
    let ctx = Context::new(cfg)?;
    ctx.client.authenticate().await?;
    match object {
        None => {
            let g = ctx.client.describe_global().await?;
            let list: Vec<_> = g.sobjects.iter().filter(|s| s.queryable).collect();
            if json {
                print_json(&list.iter().map(|s| serde_json::json!({"name": s.name, "label": s.label, "custom": s.custom})).collect::<Vec<_>>());
            } else {
                for s in list {
                    println!("{:<40} {}", s.name, s.label);
                }
            }
        }
        Some(name) => {
            if !crate::salesforce::ident::is_object_name(name) {
                return Err(SyncError::UnknownObject {
                    name: name.into(),
                    suggestions: vec![],
                });
            }
            // Only this object is read: no cursor, no other configured object is needed.
            let describe = match ctx.client.describe(name).await {
                Ok(d) => d,
                Err(crate::salesforce::SfError::Api { code, .. })
                    if code == "NOT_FOUND" || code == "INVALID_TYPE" =>
                {
                    let g = ctx.client.describe_global().await?;
                    return Err(SyncError::UnknownObject {
                        name: name.into(),
                        suggestions: crate::salesforce::ident::closest(
                            name,
                            g.sobjects.iter().map(|s| s.name.as_str()),
                            3,
                        ),
                    });
                }
                Err(e) => return Err(e.into()),
            };
            let fields = discover_fields(&describe);
            let cursors = crate::schema::cursor_candidates(&describe, "LastModifiedDate");
            if json {
                print_json(&serde_json::json!({
                    "object": describe.name,
                    "label": describe.label,
                    "custom": describe.custom,
                    "queryable": describe.queryable,
                    "cursor_candidates": cursors,
                    "fields": fields,
                }));
            } else {
                println!(
                    "{} ({} fields; * = in the default field set; -> relationship (parent): select its fields as Relationship.Field; cursor: {})",
                    describe.name,
                    fields.len(),
                    if cursors.is_empty() {
                        "none (no datetime or date field)".to_string()
                    } else {
                        cursors.join(" or ")
                    }
                );
                for f in &fields {
                    let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
                    let rel = match f["relationship_name"].as_str() {
                        Some(r) => format!(
                            " -> {r} ({}{})",
                            f["reference_to"]
                                .as_array()
                                .map(|a| a
                                    .iter()
                                    .filter_map(|x| x.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", "))
                                .unwrap_or_default(),
                            if f["polymorphic"] == true {
                                "; polymorphic: paths reach only the Name fields"
                            } else {
                                ""
                            }
                        ),
                        None => String::new(),
                    };
                    println!(
                        "{} {:<36} {:<14} {:<28}{}{}",
                        if f["default"] == true { "*" } else { " " },
                        s("name"),
                        s("type"),
                        s("arrow_type"),
                        if f["calculated"] == true {
                            " formula"
                        } else {
                            ""
                        },
                        rel
                    );
                }
            }
        }
    }
    Ok(0)
}

/// Every field of a describe as `discover` shows it: API name, Salesforce type, the Arrow type
/// written, whether it is in the default field set, whether it is a formula, and for lookups
/// the relationship name and the objects it points to.
pub fn discover_fields(d: &crate::salesforce::describe::ObjectDescribe) -> Vec<serde_json::Value> {
    d.fields
        .iter()
        .map(|f| {
            let arrow = crate::schema::arrow_field(&crate::schema::column(f));
            let mut v = serde_json::json!({
                "name": f.name,
                "label": f.label,
                "type": f.field_type,
                "arrow_type": arrow.data_type().to_string(),
                "default": crate::schema::is_default_field(f),
                "calculated": f.calculated,
                "nillable": f.nillable,
                "custom": f.custom,
            });
            if let Some(c) = &f.compound_field_name {
                v["compound_field"] = c.clone().into();
            }
            if let Some(r) = &f.relationship_name {
                v["relationship_name"] = r.clone().into();
                v["reference_to"] = f.reference_to.clone().into();
                v["polymorphic"] = f.is_polymorphic().into();
            }
            v
        })
        .collect()
}
