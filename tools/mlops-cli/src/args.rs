//! Parsers for argument values: `key=value`, `key=number`,
//! `name:dtype:shape`, `TABLE_URI@VERSION`, roles and version references.

use std::collections::HashMap;

use anyhow::{Context, bail};
use mlops_registry_client::proto as pb;

pub(crate) fn key_value(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected key=value, got {raw:?}"))
}

pub(crate) fn key_number(raw: &str) -> Result<(String, f64), String> {
    let (k, v) = key_value(raw)?;
    let n = v
        .parse::<f64>()
        .map_err(|_| format!("{k}: {v:?} is not a number"))?;
    Ok((k, n))
}

pub(crate) fn tensor(raw: &str) -> Result<pb::TensorSpec, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let [name, dtype, shape] = parts[..] else {
        return Err(format!(
            "expected name:dtype:shape (e.g. features:float32:-1x12), got {raw:?}"
        ));
    };
    let shape = shape
        .split('x')
        .map(|d| {
            d.parse::<i64>()
                .map_err(|_| format!("shape dimension {d:?} is not a number"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(pb::TensorSpec {
        name: name.to_string(),
        dtype: dtype.to_string(),
        shape,
        columns: Vec::new(),
    })
}

pub(crate) fn dataset(raw: &str) -> Result<pb::DatasetLineage, String> {
    let (uri, version) = raw
        .rsplit_once('@')
        .ok_or_else(|| format!("expected TABLE_URI@VERSION, got {raw:?}"))?;
    let table_version = version
        .parse()
        .map_err(|_| format!("table version {version:?} is not a number"))?;
    Ok(pb::DatasetLineage {
        table_uri: uri.to_string(),
        table_version,
        upstream: HashMap::new(),
    })
}

pub(crate) fn role(raw: &str) -> anyhow::Result<pb::Role> {
    Ok(match raw {
        "reader" => pb::Role::Reader,
        "writer" => pb::Role::Writer,
        "approver" => pb::Role::Approver,
        "admin" => pb::Role::Admin,
        other => bail!("role {other:?} is not one of reader, writer, approver, admin"),
    })
}

/// `3` or `@champion`.
#[derive(Debug, PartialEq)]
pub(crate) enum VersionRef {
    Number(i64),
    Alias(String),
}

pub(crate) fn version_ref(raw: &str) -> anyhow::Result<VersionRef> {
    if let Some(alias) = raw.strip_prefix('@') {
        return Ok(VersionRef::Alias(alias.to_string()));
    }
    raw.parse()
        .map(VersionRef::Number)
        .with_context(|| format!("{raw:?} is neither a version number nor @alias"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_splits_at_the_first_equals_and_needs_a_key() {
        assert_eq!(
            key_value("query=a=b"),
            Ok(("query".to_string(), "a=b".to_string()))
        );
        assert_eq!(
            key_value("=x"),
            Err("expected key=value, got \"=x\"".to_string())
        );
        assert_eq!(
            key_number("auc=x"),
            Err("auc: \"x\" is not a number".to_string())
        );
    }

    #[test]
    fn tensor_and_dataset_parse_their_documented_forms() {
        let spec = tensor("features:float32:-1x12").expect("tensor");
        assert_eq!(
            (spec.name.as_str(), spec.dtype.as_str(), spec.shape),
            ("features", "float32", vec![-1, 12])
        );
        let lineage = dataset("s3://lake/gold/t@42").expect("dataset");
        assert_eq!(
            (lineage.table_uri.as_str(), lineage.table_version),
            ("s3://lake/gold/t", 42)
        );
        assert!(tensor("features:float32").is_err());
        assert!(dataset("s3://lake/gold/t").is_err());
    }

    #[test]
    fn version_refs_are_numbers_or_aliases() {
        assert_eq!(version_ref("3").expect("number"), VersionRef::Number(3));
        assert_eq!(
            version_ref("@champion").expect("alias"),
            VersionRef::Alias("champion".to_string())
        );
        let err = version_ref("champion").expect_err("neither");
        assert_eq!(
            err.to_string(),
            "\"champion\" is neither a version number nor @alias"
        );
    }
}
