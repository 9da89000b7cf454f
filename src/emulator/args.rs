//! Parsing of the emulator's `--rows` and `--synthetic` specifications.

use super::*;

/// Parses `Account=1000,Contact=500` (or a bare number for every object).
pub fn parse_rows(spec: &str) -> Result<(Option<usize>, HashMap<String, usize>), String> {
    let (default, pairs) = object_counts("--rows", spec)?;
    Ok((default, pairs.into_iter().collect()))
}

/// `OBJECT=N` pairs of a comma-separated flag value, and a bare `N` if one is given.
pub(super) fn object_counts<N: std::str::FromStr>(
    flag: &str,
    spec: &str,
) -> Result<(Option<N>, Vec<(String, N)>), String> {
    let mut pairs = Vec::new();
    let mut default = None;
    for part in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match part.split_once('=') {
            Some((k, v)) => pairs.push((
                k.trim().to_string(),
                v.trim()
                    .parse()
                    .map_err(|_| format!("{flag} {part}: not a number"))?,
            )),
            None => {
                default = Some(
                    part.parse()
                        .map_err(|_| format!("{flag} {part}: expected OBJECT=N or N"))?,
                )
            }
        }
    }
    Ok((default, pairs))
}

/// Parses `--synthetic Account=10000000,...`: known objects, and at most one record per
/// millisecond of the `days` window (so cursor values stay distinct).
pub fn parse_synthetic(spec: &str, days: i64) -> Result<HashMap<String, u64>, String> {
    let (default, pairs) = object_counts::<u64>("--synthetic", spec)?;
    if default.is_some() {
        return Err(format!(
            "--synthetic {spec}: name the object, e.g. Account=10000000"
        ));
    }
    let names: Vec<String> = data::object_defs().into_iter().map(|d| d.name).collect();
    let max = (days.max(1) as u64 * 86_400_000).min(u32::MAX as u64);
    let mut map = HashMap::new();
    for (k, n) in pairs {
        let name = names
            .iter()
            .find(|n| n.eq_ignore_ascii_case(&k))
            .ok_or_else(|| {
                format!(
                    "--synthetic {k}: unknown object (one of {})",
                    names.join(", ")
                )
            })?;
        if n > max {
            return Err(format!(
                "--synthetic {k}={n}: at most {max} records over {days} days"
            ));
        }
        map.insert(name.clone(), n);
    }
    Ok(map)
}
