//! Salesforce identifier rules, checked before a name reaches SOQL or a storage path.
//!
//! API names contain only ASCII letters, digits and single underscores, start with a letter and
//! do not end with an underscore; the platform adds `__` separators (`ns__Obj__c`,
//! `Loc__Latitude__s`). Anything else — spaces, quotes, dots, slashes — is rejected, so no SOQL
//! can be injected and no path can escape its partition.

/// Relationships SOQL follows in one child-to-parent path (`a.b.c.d.e.Field`).
pub const MAX_HOPS: usize = 5;

/// True when `s` is a valid object API name (`Account`, `Invoice__c`, `ns__Thing__c`).
pub fn is_object_name(s: &str) -> bool {
    is_api_name(s, 3)
}

/// True when `s` is a valid field API name (`Name`, `Amount__c`, `Loc__Latitude__s`).
pub fn is_field_name(s: &str) -> bool {
    is_api_name(s, 4)
}

/// A field API name, or a child-to-parent relationship path of up to
/// [`MAX_HOPS`] relationships (`Owner.Name`, `Account__r.Owner.Email`):
/// every step a valid API name.
pub fn is_field_path(s: &str) -> bool {
    let steps: Vec<&str> = s.split('.').collect();
    steps.len() <= MAX_HOPS + 1 && steps.iter().all(|p| is_field_name(p))
}

fn is_api_name(s: &str, max_parts: usize) -> bool {
    if s.is_empty() || s.len() > 120 {
        return false;
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return false;
    }
    let parts: Vec<&str> = s.split("__").collect();
    if parts.len() > max_parts {
        return false;
    }
    parts.iter().all(|p| {
        let b = p.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b[b.len() - 1] != b'_'
    })
}

/// The names in `candidates` closest to `name` (case-insensitive), best first, at most `n`.
pub fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    n: usize,
) -> Vec<String> {
    let lname = name.to_ascii_lowercase();
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .map(|c| {
            let lc = c.to_ascii_lowercase();
            let mut score = strsim::jaro_winkler(&lname, &lc);
            if lc.contains(&lname) || lname.contains(&lc) {
                score = score.max(0.85);
            }
            (score, c)
        })
        .filter(|(s, _)| *s >= 0.75)
        .collect();
    scored.sort_by(|a, b| {
        b.0.partial_cmp(&a.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.1.cmp(b.1))
    });
    scored
        .into_iter()
        .take(n)
        .map(|(_, c)| c.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn real_names_pass() {
        for n in [
            "Account",
            "Invoice__c",
            "ns__Thing__c",
            "playgroundorg__CustomerPriority__c",
            "AccountHistory",
        ] {
            assert!(is_object_name(n), "{n}");
        }
        for n in [
            "Id",
            "Amount__c",
            "Loc__Latitude__s",
            "ns__Loc__Latitude__s",
            "Billing_City2__c",
        ] {
            assert!(is_field_name(n), "{n}");
        }
    }

    #[test]
    fn hostile_names_fail() {
        for n in [
            "",
            "1Account",
            "Account ",
            "Acc-ount",
            "Acc'ount",
            "../x",
            "a/b",
            "x__",
            "_x",
            "a___b",
            "Name FROM User",
            "Id,Name",
            "Account.Name",
            "a__b__c__d__e",
        ] {
            assert!(!is_field_name(n), "{n:?}");
        }
    }

    #[test]
    fn closest_suggests_similar_names() {
        let c = closest("Nmae", ["Name", "Id", "Industry", "OwnerId"], 3);
        assert_eq!(c.first().map(String::as_str), Some("Name"));
        let c = closest("Amount", ["Amount__c", "Id"], 3);
        assert_eq!(c, vec!["Amount__c".to_string()]);
    }

    proptest! {
        #[test]
        fn valid_names_never_contain_soql_or_path_syntax(s in "\\PC{0,30}") {
            if is_field_name(&s) {
                prop_assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
                prop_assert!(!s.starts_with('_') && !s.ends_with('_'));
            }
        }
    }
}
