//! Where the lake lives (`LAKE_URL`) and how a table URL is derived from it.

use std::collections::HashMap;
use std::path::Path;

use url::Url;

use crate::{Error, Result};

/// The root of the lake; every table lives under it.
#[derive(Clone, PartialEq, Eq)]
pub struct LakeLocation {
    root: Url,
    /// Extra `object_store` options (endpoint, credentials…). Empty in
    /// services, which take them from the standard environment variables.
    options: HashMap<String, String>,
}

impl std::fmt::Debug for LakeLocation {
    // Options may hold credentials: show their keys only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<_> = self.options.keys().collect();
        keys.sort();
        f.debug_struct("LakeLocation")
            .field("root", &self.root.as_str())
            .field("option_keys", &keys)
            .finish()
    }
}

/// So configs read `LAKE_URL` with `EnvReader::value`, reporting a bad URL
/// beside every other problem.
impl std::str::FromStr for LakeLocation {
    type Err = Error;
    fn from_str(raw: &str) -> Result<Self> {
        Self::parse(raw)
    }
}

impl LakeLocation {
    /// Parses `LAKE_URL`. A plain filesystem path is accepted and made
    /// absolute (the directory is created on first write).
    pub fn parse(raw: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidLocation {
            url: raw.to_string(),
            reason: reason.to_string(),
        };
        let mut root = if raw.contains("://") {
            Url::parse(raw).map_err(|e| invalid(&e.to_string()))?
        } else {
            let path = Path::new(raw);
            let absolute = if path.is_absolute() {
                path.to_path_buf()
            } else {
                std::env::current_dir()
                    .map_err(|e| invalid(&format!("cannot resolve a relative path: {e}")))?
                    .join(path)
            };
            Url::from_directory_path(&absolute)
                .map_err(|()| invalid("not a valid filesystem path"))?
        };
        match root.scheme() {
            "file" | "memory" => {}
            "s3" | "s3a" | "az" | "azure" | "abfs" | "abfss" => {
                if root.host_str().is_none_or(str::is_empty) {
                    return Err(invalid("the URL must name a bucket or container"));
                }
            }
            other => {
                return Err(invalid(&format!(
                    "unsupported scheme `{other}` (use file://, s3://, az:// or memory://)"
                )));
            }
        }
        if !root.path().ends_with('/') {
            let path = format!("{}/", root.path());
            root.set_path(&path);
        }
        Ok(Self {
            root,
            options: HashMap::new(),
        })
    }

    /// Adds explicit storage options (e.g. `aws_endpoint`), which take
    /// precedence over the environment.
    pub fn with_options(mut self, options: HashMap<String, String>) -> Self {
        self.options.extend(options);
        self
    }

    pub fn options(&self) -> &HashMap<String, String> {
        &self.options
    }

    pub fn root(&self) -> &Url {
        &self.root
    }

    /// URL of the table `name` (e.g. `bronze/telecom_events`), ending in `/`.
    pub fn table_url(&self, name: &str) -> Url {
        let mut url = self.root.clone();
        let path = format!("{}{}/", self.root.path(), name.trim_matches('/'));
        url.set_path(&path);
        url
    }

    /// The local directory of a `file://` lake, created if missing, so the
    /// first table can be created under it.
    pub fn ensure_local_dir(&self, name: &str) -> Result<()> {
        if self.root.scheme() != "file" {
            return Ok(());
        }
        let url = self.table_url(name);
        let dir = url.to_file_path().map_err(|()| Error::InvalidLocation {
            url: url.to_string(),
            reason: "not a local path".into(),
        })?;
        std::fs::create_dir_all(&dir).map_err(|e| Error::InvalidLocation {
            url: url.to_string(),
            reason: format!("cannot create directory: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_urls_nest_under_the_root() {
        let lake = LakeLocation::parse("s3://lake/prod").expect("valid");
        assert_eq!(
            lake.table_url("bronze/telecom_events").as_str(),
            "s3://lake/prod/bronze/telecom_events/"
        );
        let lake = LakeLocation::parse("az://data/").expect("valid");
        assert_eq!(
            lake.table_url("gold/kpi_daily").as_str(),
            "az://data/gold/kpi_daily/"
        );
    }

    #[test]
    fn plain_paths_become_file_urls() {
        let lake = LakeLocation::parse("/var/lake").expect("valid");
        assert_eq!(lake.root().as_str(), "file:///var/lake/");
        let relative = LakeLocation::parse("data/lake").expect("valid");
        assert!(relative.root().as_str().starts_with("file:///"));
        assert!(relative.root().as_str().ends_with("/data/lake/"));
    }

    #[test]
    fn bad_locations_are_explained() {
        let err = LakeLocation::parse("ftp://host/x").expect_err("unsupported");
        assert!(
            err.to_string().contains("unsupported scheme `ftp`"),
            "{err}"
        );
        let err = LakeLocation::parse("s3:///no-bucket").expect_err("no bucket");
        assert!(err.to_string().contains("bucket"), "{err}");
    }
}
