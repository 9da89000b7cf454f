//! Destination URL → object store. Every store goes through `object_store`, so the commit
//! protocol (data files, then a create-only manifest) is the same everywhere.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::ObjectStore;

use crate::config::ConfigError;
use crate::sink::SinkError;

/// A parsed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A local folder (plain path or `file://`).
    Local(PathBuf),
}

/// Parses `destination.url`.
pub fn parse_destination(url: &str) -> Result<Destination, String> {
    let url = url.trim();
    if let Some(rest) = url.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err("file:// URLs need an absolute path, e.g. file:///data/lake".into());
        }
        return Ok(Destination::Local(PathBuf::from(rest)));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        return Err(match scheme {
            "s3" | "gs" | "az" | "abfs" | "abfss" => format!(
                "{scheme}:// destinations are not available in this build yet; use a local folder or file:///abs/path"
            ),
            _ => format!("unknown scheme {scheme}://; use a local folder or file:///abs/path"),
        });
    }
    Ok(Destination::Local(PathBuf::from(url)))
}

/// Validates the URL and the `[destination.options]` keys for its store.
pub fn check_url_and_options(url: &str, options: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    let d = parse_destination(url).map_err(|rule| ConfigError::Invalid {
        key: "destination.url".into(),
        value: format!("{url:?}"),
        rule,
    })?;
    match d {
        Destination::Local(_) => {
            if let Some(k) = options.keys().next() {
                return Err(ConfigError::Invalid {
                    key: format!("destination.options.{k}"),
                    value: "…".into(),
                    rule: "a local destination takes no options; remove [destination.options]".into(),
                });
            }
        }
    }
    Ok(())
}

/// Opens the store rooted at the destination (a local folder is created if missing).
pub fn open(url: &str, _options: &BTreeMap<String, String>) -> Result<Arc<dyn ObjectStore>, SinkError> {
    let d = parse_destination(url).map_err(|m| SinkError::Manifest { path: url.into(), message: m })?;
    match d {
        Destination::Local(dir) => {
            std::fs::create_dir_all(&dir).map_err(|source| SinkError::Io { what: format!("creating {}", dir.display()), source })?;
            let store = LocalFileSystem::new_with_prefix(&dir)
                .map_err(|e| SinkError::store(format!("opening {}", dir.display()), e))?
                .with_automatic_cleanup(true);
            Ok(Arc::new(store))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse() {
        assert_eq!(parse_destination("/tmp/x"), Ok(Destination::Local("/tmp/x".into())));
        assert_eq!(parse_destination("file:///tmp/x"), Ok(Destination::Local("/tmp/x".into())));
        assert!(parse_destination("file://tmp/x").is_err());
        assert!(parse_destination("ftp://x").is_err());
        let mut o = BTreeMap::new();
        o.insert("aws_regoin".to_string(), "x".to_string());
        assert!(check_url_and_options("/tmp/x", &o).unwrap_err().to_string().contains("aws_regoin"));
    }
}
