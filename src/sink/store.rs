//! Destination URL → object store. Every store goes through `object_store`, so the commit
//! protocol (data files, then a create-only manifest) is the same everywhere.
//!
//! Credentials come from each store's usual environment variables (`AWS_*`, `GOOGLE_*`,
//! `AZURE_*`, as object_store reads them) and from `[destination.options]`, whose keys are
//! checked against object_store's typed configuration keys, so a misspelt option is an error.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;

/// A destination setting that cannot work: the key, the value shown, and the rule (the
/// configuration layer reports it as a configuration error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSetting {
    pub key: String,
    pub value: String,
    pub rule: String,
}

impl std::fmt::Display for BadSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` = {}: {}", self.key, self.value, self.rule)
    }
}
use crate::sink::SinkError;

/// A parsed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A local folder (plain path or `file://`).
    Local(PathBuf),
    S3 {
        bucket: String,
        prefix: String,
    },
    Gcs {
        bucket: String,
        prefix: String,
    },
    /// `az://container/prefix`, or `abfs[s]://container@account.dfs.core.windows.net/prefix`.
    Azure {
        container: String,
        account: Option<String>,
        prefix: String,
    },
}

fn split_bucket(rest: &str, scheme: &str) -> Result<(String, String), String> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!(
            "{scheme}:// needs a bucket or container name, e.g. {scheme}://my-bucket/salesforce"
        ));
    }
    let prefix = prefix.trim_matches('/').to_string();
    if prefix.split('/').any(|s| s == ".." || s == ".") {
        return Err("the prefix may not contain . or .. segments".into());
    }
    Ok((bucket.to_string(), prefix))
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
    if let Some((scheme, rest)) = url.split_once("://") {
        return match scheme {
            "s3" => split_bucket(rest, scheme).map(|(bucket, prefix)| Destination::S3 { bucket, prefix }),
            "gs" => split_bucket(rest, scheme).map(|(bucket, prefix)| Destination::Gcs { bucket, prefix }),
            "az" | "azure" => split_bucket(rest, scheme).map(|(container, prefix)| Destination::Azure { container, account: None, prefix }),
            "abfs" | "abfss" => {
                let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
                let (container, host) = authority
                    .split_once('@')
                    .ok_or_else(|| format!("{scheme}:// URLs look like {scheme}://container@account.dfs.core.windows.net/prefix"))?;
                let account = host.split('.').next().filter(|a| !a.is_empty()).map(str::to_string);
                Ok(Destination::Azure { container: container.to_string(), account, prefix: path.trim_matches('/').to_string() })
            }
            _ => Err(format!("unknown scheme {scheme}://; use a local folder, file:///abs/path, s3://, gs://, az:// or abfss://")),
        };
    }
    Ok(Destination::Local(PathBuf::from(url)))
}

fn bad_option(k: &str, store: &str, e: impl std::fmt::Display) -> BadSetting {
    BadSetting {
        key: format!("destination.options.{k}"),
        value: "…".into(),
        rule: format!(
            "not an option of the {store} store ({e}); see the README's destination section"
        ),
    }
}

/// Validates the URL and the `[destination.options]` keys for its store.
pub fn check_url_and_options(
    url: &str,
    options: &BTreeMap<String, String>,
) -> Result<(), BadSetting> {
    let d = parse_destination(url).map_err(|rule| BadSetting {
        key: "destination.url".into(),
        value: format!("{url:?}"),
        rule,
    })?;
    for k in options.keys() {
        match &d {
            Destination::Local(_) => {
                return Err(BadSetting {
                    key: format!("destination.options.{k}"),
                    value: "…".into(),
                    rule: "a local destination takes no options; remove [destination.options]"
                        .into(),
                })
            }
            Destination::S3 { .. } => {
                k.parse::<AmazonS3ConfigKey>()
                    .map_err(|e| bad_option(k, "S3", e))?;
            }
            Destination::Gcs { .. } => {
                k.parse::<GoogleConfigKey>()
                    .map_err(|e| bad_option(k, "GCS", e))?;
            }
            Destination::Azure { .. } => {
                k.parse::<AzureConfigKey>()
                    .map_err(|e| bad_option(k, "Azure", e))?;
            }
        }
    }
    Ok(())
}

/// Option keys whose values are secrets (redacted in `Debug`).
pub fn is_secret_option(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["secret", "key", "token", "password", "sas", "credential"]
        .iter()
        .any(|s| k.contains(s))
        && !k.ends_with("_id")
        && !k.contains("key_id")
}

fn prefixed(store: Arc<dyn ObjectStore>, prefix: &str) -> Arc<dyn ObjectStore> {
    if prefix.is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    }
}

/// Opens the store rooted at the destination (a local folder is created if missing).
pub fn open(
    url: &str,
    options: &BTreeMap<String, String>,
) -> Result<Arc<dyn ObjectStore>, SinkError> {
    open_with_folder(url, options).map(|(store, _)| store)
}

/// [`open`], and the same store as a local folder when the destination is one (finished files
/// on its file system are then renamed into it, see `writer::place`).
pub fn open_with_folder(
    url: &str,
    options: &BTreeMap<String, String>,
) -> Result<(Arc<dyn ObjectStore>, Option<Arc<LocalFileSystem>>), SinkError> {
    let d = parse_destination(url).map_err(SinkError::Unusable)?;
    match &d {
        Destination::Local(dir) => {
            local_folder(dir).map_err(SinkError::Unusable)?;
            let folder = Arc::new(
                LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| SinkError::store(format!("opening {}", dir.display()), e))?
                    .with_automatic_cleanup(true),
            );
            Ok((folder.clone(), Some(folder)))
        }
        Destination::S3 { prefix, .. }
        | Destination::Gcs { prefix, .. }
        | Destination::Azure { prefix, .. } => {
            Ok((prefixed(bucket_store(url, &d, options)?, prefix), None))
        }
    }
}

/// The store rooted at the bucket (container, file system) root and the destination as a
/// directory URL in it: what the Delta kernel's engine needs (it maps URL paths straight to
/// store paths).
pub fn open_root(
    url: &str,
    options: &BTreeMap<String, String>,
) -> Result<(Arc<dyn ObjectStore>, url::Url), SinkError> {
    let d = parse_destination(url).map_err(SinkError::Unusable)?;
    let dir_url = |scheme: &str, bucket: &str, prefix: &str| {
        let s = if prefix.is_empty() {
            format!("{scheme}://{bucket}/")
        } else {
            format!("{scheme}://{bucket}/{prefix}/")
        };
        url::Url::parse(&s).map_err(|e| SinkError::Unusable(format!("{url}: {e}")))
    };
    match &d {
        Destination::Local(dir) => {
            local_folder(dir).map_err(SinkError::Unusable)?;
            let abs = std::fs::canonicalize(dir).map_err(|e| SinkError::Folder {
                what: dir.display().to_string(),
                source: e,
            })?;
            let root = url::Url::from_directory_path(&abs).map_err(|_| {
                SinkError::Unusable(format!(
                    "{} cannot be written as a file:// URL",
                    abs.display()
                ))
            })?;
            Ok((Arc::new(LocalFileSystem::new()), root))
        }
        Destination::S3 { bucket, prefix } => Ok((
            bucket_store(url, &d, options)?,
            dir_url("s3", bucket, prefix)?,
        )),
        Destination::Gcs { bucket, prefix } => Ok((
            bucket_store(url, &d, options)?,
            dir_url("gs", bucket, prefix)?,
        )),
        Destination::Azure {
            container, prefix, ..
        } => Ok((
            bucket_store(url, &d, options)?,
            dir_url("az", container, prefix)?,
        )),
    }
}

/// The bucket's (container's) store, without the destination's prefix.
fn bucket_store(
    url: &str,
    d: &Destination,
    options: &BTreeMap<String, String>,
) -> Result<Arc<dyn ObjectStore>, SinkError> {
    let cfg_err = |store: &str, e: object_store::Error| {
        SinkError::store(format!("configuring the {store} store for {url}"), e)
    };
    match d {
        Destination::Local(_) => Err(SinkError::Unusable(format!(
            "{url} is a local folder, not a bucket"
        ))),
        Destination::S3 { bucket, .. } => {
            let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
            for (k, v) in options {
                b = b.with_config(k.parse().map_err(|e| cfg_err("S3", e))?, v);
            }
            Ok(Arc::new(b.build().map_err(|e| cfg_err("S3", e))?))
        }
        Destination::Gcs { bucket, .. } => {
            let mut b = GoogleCloudStorageBuilder::from_env().with_bucket_name(bucket);
            for (k, v) in options {
                b = b.with_config(k.parse().map_err(|e| cfg_err("GCS", e))?, v);
            }
            Ok(Arc::new(b.build().map_err(|e| cfg_err("GCS", e))?))
        }
        Destination::Azure {
            container, account, ..
        } => {
            let mut b = MicrosoftAzureBuilder::from_env().with_container_name(container);
            if let Some(a) = account {
                b = b.with_account(a);
            }
            for (k, v) in options {
                b = b.with_config(k.parse().map_err(|e| cfg_err("Azure", e))?, v);
            }
            Ok(Arc::new(b.build().map_err(|e| cfg_err("Azure", e))?))
        }
    }
}

/// Makes sure a local destination is (or can become) a folder, with a message that says what
/// is in the way: a file where the folder should be, a file among its parents, or a place the
/// user may not create folders in.
pub fn local_folder(dir: &std::path::Path) -> Result<(), String> {
    if dir.exists() && !dir.is_dir() {
        return Err(
            "is a file, not a folder: point destination.url at a folder (it is created if missing)"
                .into(),
        );
    }
    for a in dir.ancestors().skip(1) {
        if a.exists() {
            if !a.is_dir() {
                return Err(format!(
                    "lies under {}, which is a file, not a folder: point destination.url at a folder",
                    a.display()
                ));
            }
            break;
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        let fix = match e.kind() {
            std::io::ErrorKind::PermissionDenied => {
                "the user running forcelake may not create it: choose a writable folder or fix its permissions"
            }
            std::io::ErrorKind::ReadOnlyFilesystem => "the file system is read-only: choose another folder",
            _ => "choose a folder forcelake can create and write",
        };
        format!("cannot create the folder ({e}): {fix}")
    })
}

/// Writes (create-only, twice: the second must be refused), reads back and deletes a small
/// probe object under `_forcelake/`: the destination works, honours create-only writes, and
/// the credentials allow what a sync needs.
pub async fn probe(store: &Arc<dyn ObjectStore>) -> Result<(), String> {
    use object_store::ObjectStoreExt;
    let path = crate::sink::layout::probe_path(rand::random::<u32>());
    let hint = |op: &str, e: &object_store::Error| -> String {
        let fix = match e {
            object_store::Error::NotFound { .. } => {
                "the bucket/container does not exist: create it, or fix destination.url"
            }
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => {
                "the credentials may not write here: grant put, get, list and delete on the prefix"
            }
            _ => "check the destination URL, the endpoint and the credentials",
        };
        format!("{op} failed: {e} — {fix}")
    };
    // Create-only, as manifests and Delta log entries are written: a second create of the
    // same object must be refused, or two workers could both commit one chunk (one version).
    let create = || object_store::PutOptions {
        mode: object_store::PutMode::Create,
        ..Default::default()
    };
    store
        .put_opts(
            &path,
            object_store::PutPayload::from_static(b"forcelake probe"),
            create(),
        )
        .await
        .map_err(|e| match e {
            object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. } => format!(
                "writing a probe object create-only failed: {e} — the store cannot refuse a second write of the same object, which manifests and the Delta log rely on: use a store with conditional writes (S3: leave aws_conditional_put at its default)"
            ),
            e => hint("writing a probe object", &e),
        })?;
    match store
        .put_opts(
            &path,
            object_store::PutPayload::from_static(b"forcelake probe 2"),
            create(),
        )
        .await
    {
        Err(object_store::Error::AlreadyExists { .. }) => {}
        Ok(_) => {
            let _ = store.delete(&path).await;
            return Err("a second create-only write of the probe object was accepted (it overwrote the first): two workers could both commit the same chunk or Delta version; use a store that honours If-None-Match / create-only writes".into());
        }
        Err(e) => {
            let _ = store.delete(&path).await;
            return Err(hint(
                "writing the probe object a second time (create-only)",
                &e,
            ));
        }
    }
    let got = store
        .get(&path)
        .await
        .map_err(|e| hint("reading the probe object", &e))?
        .bytes()
        .await
        .map_err(|e| hint("reading the probe object", &e))?;
    if got.as_ref() != b"forcelake probe" {
        return Err("the probe object read back differs from what was written".into());
    }
    store
        .delete(&path)
        .await
        .map_err(|e| hint("deleting the probe object", &e))?;
    Ok(())
}

/// The paths under `prefix` (none when it does not exist).
pub async fn list_paths(
    store: &dyn ObjectStore,
    prefix: &object_store::path::Path,
) -> Result<Vec<object_store::path::Path>, SinkError> {
    use futures::TryStreamExt;
    match store.list(Some(prefix)).try_collect::<Vec<_>>().await {
        Ok(v) => Ok(v.into_iter().map(|m| m.location).collect()),
        Err(object_store::Error::NotFound { .. }) => Ok(vec![]),
        Err(e) => Err(SinkError::store(format!("listing {prefix}"), e)),
    }
}

/// Deletes files, logging (not failing on) what could not be deleted: they are uncommitted or
/// superseded, and a later run removes what is left.
pub async fn delete_quietly(store: &Arc<dyn ObjectStore>, paths: impl Iterator<Item = String>) {
    for p in paths {
        let path = object_store::path::Path::from(p);
        if let Err(e) = object_store::ObjectStoreExt::delete(store.as_ref(), &path).await {
            if !matches!(e, object_store::Error::NotFound { .. }) {
                tracing::warn!(path = %path, error = %e, "could not delete an uncommitted file; a later run removes it");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse() {
        assert_eq!(
            parse_destination("/tmp/x"),
            Ok(Destination::Local("/tmp/x".into()))
        );
        assert_eq!(
            parse_destination("file:///tmp/x"),
            Ok(Destination::Local("/tmp/x".into()))
        );
        assert!(parse_destination("file://tmp/x").is_err());
        assert!(parse_destination("ftp://x").is_err());
        assert_eq!(
            parse_destination("s3://b/raw/sf/"),
            Ok(Destination::S3 {
                bucket: "b".into(),
                prefix: "raw/sf".into()
            })
        );
        assert_eq!(
            parse_destination("gs://b"),
            Ok(Destination::Gcs {
                bucket: "b".into(),
                prefix: "".into()
            })
        );
        assert_eq!(
            parse_destination("az://c/p"),
            Ok(Destination::Azure {
                container: "c".into(),
                account: None,
                prefix: "p".into()
            })
        );
        assert_eq!(
            parse_destination("abfss://c@acct.dfs.core.windows.net/lake"),
            Ok(Destination::Azure {
                container: "c".into(),
                account: Some("acct".into()),
                prefix: "lake".into()
            })
        );
        assert!(parse_destination("s3:///x").is_err());
        assert!(parse_destination("s3://b/../x").is_err());
    }

    #[test]
    fn options_are_checked_against_the_store_keys() {
        let o = |k: &str| BTreeMap::from([(k.to_string(), "x".to_string())]);
        assert!(check_url_and_options("/tmp/x", &o("aws_region"))
            .unwrap_err()
            .to_string()
            .contains("local destination takes no options"));
        assert!(check_url_and_options("s3://b", &o("aws_region")).is_ok());
        assert!(check_url_and_options("s3://b", &o("aws_allow_http")).is_ok());
        let e = check_url_and_options("s3://b", &o("aws_regoin"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("aws_regoin") && e.contains("S3"), "{e}");
        assert!(check_url_and_options("gs://b", &o("google_service_account")).is_ok());
        assert!(check_url_and_options("gs://b", &o("aws_region")).is_err());
        assert!(check_url_and_options("az://c", &o("azure_storage_account_name")).is_ok());
        assert!(check_url_and_options("az://c", &o("azure_storage_acount_name")).is_err());
        assert!(
            is_secret_option("aws_secret_access_key")
                && is_secret_option("azure_storage_account_key")
                && is_secret_option("google_bearer_token")
        );
        assert!(!is_secret_option("aws_access_key_id") && !is_secret_option("aws_region"));
    }
}
