//! The objects the emulator serves: their fields as describe reports them (a data table).

use super::*;

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
            replicateable: true,
            fields: account,
        },
        ObjectDef {
            name: "Contact".into(),
            label: "Contact".into(),
            key_prefix: "003",
            custom: false,
            replicateable: true,
            fields: contact,
        },
        ObjectDef {
            name: "Opportunity".into(),
            label: "Opportunity".into(),
            key_prefix: "006",
            custom: false,
            replicateable: true,
            fields: opp,
        },
        ObjectDef {
            name: "Case".into(),
            label: "Case".into(),
            key_prefix: "500",
            custom: false,
            replicateable: true,
            fields: case,
        },
        ObjectDef {
            name: "Invoice__c".into(),
            label: "Invoice".into(),
            key_prefix: "a01",
            custom: true,
            replicateable: true,
            fields: invoice,
        },
        ObjectDef {
            name: "AccountHistory".into(),
            label: "Account History".into(),
            key_prefix: "017",
            custom: false,
            replicateable: true,
            fields: account_history,
        },
        ObjectDef {
            name: "Wide__c".into(),
            label: "Wide".into(),
            key_prefix: "a02",
            custom: true,
            replicateable: true,
            fields: wide,
        },
        ObjectDef {
            name: "User".into(),
            label: "User".into(),
            key_prefix: "005",
            custom: false,
            replicateable: true,
            fields: user,
        },
        ObjectDef {
            name: "Group".into(),
            label: "Group".into(),
            key_prefix: "00G",
            custom: false,
            replicateable: true,
            fields: group,
        },
    ]
}
