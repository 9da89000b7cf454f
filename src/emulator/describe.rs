//! Global and object describe answers.

use super::*;

pub(super) fn global_describe(data: &Dataset, version: &str) -> serde_json::Value {
    let sobjects: Vec<_> = data
        .tables
        .iter()
        .map(|t| {
            let n = &t.def.name;
            serde_json::json!({
                "activateable": false, "associateEntityType": null, "associateParentEntity": null,
                "createable": true, "custom": t.def.custom, "customSetting": false, "dataTranslationEnabled": false,
                "deepCloneable": false, "deletable": true, "deprecatedAndHidden": false, "feedEnabled": !t.def.custom,
                "hasSubtypes": false, "isInterface": false, "isSubtype": false, "keyPrefix": t.def.key_prefix,
                "label": t.def.label, "labelPlural": format!("{}s", t.def.label), "layoutable": true, "mergeable": n == "Account",
                "mruEnabled": true, "name": n, "queryable": true, "replicateable": t.def.replicateable, "retrieveable": true,
                "searchable": true, "triggerable": true, "undeletable": true, "updateable": true,
                "urls": {
                    "sobject": format!("/services/data/v{version}/sobjects/{n}"),
                    "describe": format!("/services/data/v{version}/sobjects/{n}/describe"),
                    "rowTemplate": format!("/services/data/v{version}/sobjects/{n}/{{ID}}"),
                }
            })
        })
        .collect();
    serde_json::json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects})
}

pub(super) fn soap_type(t: &str) -> &'static str {
    match t {
        "id" | "reference" => "tns:ID",
        "boolean" => "xsd:boolean",
        "int" => "xsd:int",
        "long" => "xsd:long",
        "double" | "currency" | "percent" => "xsd:double",
        "date" => "xsd:date",
        "datetime" => "xsd:dateTime",
        "time" => "xsd:time",
        "base64" => "xsd:base64Binary",
        "address" => "urn:address",
        "location" => "urn:location",
        "anyType" => "xsd:anyType",
        _ => "xsd:string",
    }
}

pub(super) fn field_describe(f: &FieldDef) -> serde_json::Value {
    let text = matches!(
        f.ftype,
        "string"
            | "textarea"
            | "picklist"
            | "multipicklist"
            | "email"
            | "phone"
            | "url"
            | "combobox"
            | "encryptedstring"
    );
    let compound = matches!(f.ftype, "address" | "location");
    serde_json::json!({
        "aggregatable": !compound && f.ftype != "textarea", "aiPredictionField": false, "autoNumber": f.name == "CaseNumber",
        "byteLength": if text || matches!(f.ftype, "id" | "reference") { if f.ftype == "id" || f.ftype == "reference" { 18 } else { f.length * 3 } } else { 0 },
        "calculated": f.calculated, "calculatedFormula": if f.calculated { serde_json::json!("/* formula */ 0") } else { serde_json::Value::Null },
        "cascadeDelete": false, "caseSensitive": false, "compoundFieldName": f.compound,
        "controllerName": null, "createable": !f.calculated && !compound && f.ftype != "id", "custom": f.custom,
        "defaultValue": null, "defaultValueFormula": null, "defaultedOnCreate": f.ftype == "boolean",
        "dependentPicklist": false, "deprecatedAndHidden": false,
        "digits": if f.ftype == "int" { f.precision } else { 0 },
        "displayLocationInDecimal": false, "encrypted": false, "externalId": false,
        "extraTypeInfo": if f.ftype == "textarea" { serde_json::json!("plaintextarea") } else { serde_json::Value::Null },
        "filterable": !compound && f.ftype != "textarea", "filteredLookupInfo": null, "formulaTreatNullNumberAsZero": false,
        "groupable": matches!(f.ftype, "string" | "picklist" | "id" | "reference" | "boolean" | "date"),
        "highScaleNumber": false, "htmlFormatted": false, "idLookup": f.ftype == "id", "inlineHelpText": null,
        "label": f.label, "length": if compound { 0 } else { f.length }, "mask": null, "maskType": null,
        "name": f.name, "nameField": f.name == "Name", "namePointing": f.reference_to.len() > 1, "nillable": f.nillable,
        "permissionable": f.custom, "picklistValues": f.picklist.iter().map(|v| serde_json::json!({"active": true, "defaultValue": false, "label": v, "validFor": null, "value": v})).collect::<Vec<_>>(),
        "polymorphicForeignKey": f.reference_to.len() > 1,
        "precision": if matches!(f.ftype, "currency" | "double" | "percent") { f.precision } else { 0 },
        "queryByDistance": false, "referenceTargetField": null, "referenceTo": f.reference_to,
        "relationshipName": f.relationship_name(),
        "relationshipOrder": null, "restrictedDelete": false, "restrictedPicklist": false,
        "scale": if matches!(f.ftype, "currency" | "double" | "percent") { f.scale } else { 0 },
        "searchPrefilterable": false, "soapType": soap_type(f.ftype), "sortable": !compound && f.ftype != "textarea",
        "type": f.ftype, "unique": false, "updateable": !f.calculated && !compound && f.ftype != "id" && !f.name.starts_with("Created") && !f.name.starts_with("LastModified") && f.name != "SystemModstamp",
        "writeRequiresMasterRead": false,
    })
}

pub(super) fn object_describe(def: &ObjectDef, version: &str) -> serde_json::Value {
    let n = &def.name;
    let u = |s: &str| format!("/services/data/v{version}/sobjects/{n}/{s}");
    serde_json::json!({
        "actionOverrides": [], "activateable": false, "associateEntityType": null, "associateParentEntity": null,
        "childRelationships": [], "compactLayoutable": true, "createable": true, "custom": def.custom, "customSetting": false,
        "dataTranslationEnabled": false, "deepCloneable": false, "defaultImplementation": null, "deletable": true,
        "deprecatedAndHidden": false, "extendedBy": null, "extendsInterfaces": null, "feedEnabled": !def.custom,
        "fields": def.fields.iter().map(field_describe).collect::<Vec<_>>(),
        "hasSubtypes": false, "implementedBy": null, "implementsInterfaces": null, "isInterface": false, "isSubtype": false,
        "keyPrefix": def.key_prefix, "label": def.label, "labelPlural": format!("{}s", def.label), "layoutable": true,
        "listviewable": null, "lookupLayoutable": null, "mergeable": n == "Account", "mruEnabled": true, "name": n,
        "namedLayoutInfos": [], "networkScopeFieldName": null, "queryable": true,
        "recordTypeInfos": [{"active": true, "available": true, "defaultRecordTypeMapping": true, "developerName": "Master", "master": true, "name": "Master", "recordTypeId": "012000000000000AAA", "urls": {"layout": u("describe/layouts/012000000000000AAA")}}],
        "replicateable": def.replicateable, "retrieveable": true, "searchLayoutable": true, "searchable": true, "sobjectDescribeOption": "FULL",
        "supportedScopes": [{"label": "All", "name": "everything"}, {"label": "My", "name": "mine"}],
        "triggerable": true, "undeletable": true, "updateable": true,
        "urls": {
            "compactLayouts": u("describe/compactLayouts"), "rowTemplate": u("{ID}"), "approvalLayouts": u("describe/approvalLayouts"),
            "defaultValues": u("defaultValues?recordTypeId&fields"), "listviews": u("listviews"), "describe": u("describe"),
            "quickActions": u("quickActions"), "layouts": u("describe/layouts"), "sobject": format!("/services/data/v{version}/sobjects/{n}"),
        },
    })
}
