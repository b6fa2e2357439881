//! Input rules shared by every call. Each failure names the field and the rule.

use std::collections::HashMap;

use crate::error::{Error, Result};

pub const MAX_NAME_LEN: usize = 128;
pub const MAX_ALIAS_LEN: usize = 64;
pub const MAX_KEY_LEN: usize = 128;
pub const MAX_VALUE_LEN: usize = 4096;
pub const MAX_DESCRIPTION_LEN: usize = 16 * 1024;
pub const MAX_ENTRIES: usize = 256;

/// Model, token and artifact file names: 1-128 of `[A-Za-z0-9._-]`, starting
/// with a letter or digit (so names are safe in object-store paths and URLs).
pub fn name(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(format!("{field} is required")));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "{field} is {} characters long; the limit is {MAX_NAME_LEN}",
            value.len()
        )));
    }
    let first_ok = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !first_ok || !rest_ok {
        return Err(Error::invalid(format!(
            "{field} {value:?} is not valid: use letters, digits, '.', '_' and '-', starting with a letter or digit"
        )));
    }
    Ok(())
}

/// Aliases: 1-64 of `[a-z0-9_-]`, not all digits (so `3` always means a version).
pub fn alias(value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid("alias is required"));
    }
    if value.len() > MAX_ALIAS_LEN {
        return Err(Error::invalid(format!(
            "alias is {} characters long; the limit is {MAX_ALIAS_LEN}",
            value.len()
        )));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
    {
        return Err(Error::invalid(format!(
            "alias {value:?} is not valid: use lowercase letters, digits, '_' and '-'"
        )));
    }
    if value.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::invalid(format!(
            "alias {value:?} is not valid: an alias cannot be all digits"
        )));
    }
    Ok(())
}

pub fn version(value: i64) -> Result<()> {
    if value < 1 {
        return Err(Error::invalid(format!(
            "version must be 1 or more, got {value}"
        )));
    }
    Ok(())
}

pub fn description(value: &str) -> Result<()> {
    if value.len() > MAX_DESCRIPTION_LEN {
        return Err(Error::invalid(format!(
            "description is {} bytes long; the limit is {MAX_DESCRIPTION_LEN}",
            value.len()
        )));
    }
    Ok(())
}

/// Keys of tags, params and metrics: 1-128 of `[A-Za-z0-9._-/]`, so they can
/// be named in filters (`metrics.auc`, `tags.team`).
pub fn key(field: &str, key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Error::invalid(format!(
            "{field} key {key:?} must be 1-{MAX_KEY_LEN} characters"
        )));
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
    {
        return Err(Error::invalid(format!(
            "{field} key {key:?} is not valid: use letters, digits, '.', '_', '-' and '/'"
        )));
    }
    Ok(())
}

/// Tags to set and keys to remove in one edit: each valid, none in both.
pub fn tag_edit(set_tags: &HashMap<String, String>, remove_tags: &[String]) -> Result<()> {
    string_map("set_tags", set_tags)?;
    for key in remove_tags {
        self::key("remove_tags", key)?;
        if set_tags.contains_key(key) {
            return Err(Error::invalid(format!(
                "tag {key:?} is both set and removed"
            )));
        }
    }
    Ok(())
}

pub fn string_map(field: &str, map: &HashMap<String, String>) -> Result<()> {
    if map.len() > MAX_ENTRIES {
        return Err(Error::invalid(format!(
            "{field} has {} entries; the limit is {MAX_ENTRIES}",
            map.len()
        )));
    }
    for (k, v) in map {
        key(field, k)?;
        if v.len() > MAX_VALUE_LEN {
            return Err(Error::invalid(format!(
                "{field}.{k} is {} bytes long; the limit is {MAX_VALUE_LEN}",
                v.len()
            )));
        }
    }
    Ok(())
}

pub fn metric_map(field: &str, map: &HashMap<String, f64>) -> Result<()> {
    if map.len() > MAX_ENTRIES {
        return Err(Error::invalid(format!(
            "{field} has {} entries; the limit is {MAX_ENTRIES}",
            map.len()
        )));
    }
    for (k, v) in map {
        key(field, k)?;
        if !v.is_finite() {
            return Err(Error::invalid(format!(
                "{field}.{k} must be a finite number, got {v}"
            )));
        }
    }
    Ok(())
}

/// Lowercase hex sha256.
pub fn sha256(value: &str) -> Result<()> {
    if value.len() != 64 || !value.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(Error::invalid(format!(
            "sha256 must be 64 lowercase hex characters, got {value:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_the_documented_alphabet_only() {
        assert!(name("name", "churn-model_v2.onnx").is_ok());
        for bad in ["", "-lead", "a b", "a/b", "é", &"x".repeat(129)] {
            let err = name("name", bad).expect_err(bad);
            assert!(err.to_string().contains("name"), "{err}");
        }
    }

    #[test]
    fn aliases_are_lowercase_and_never_all_digits() {
        assert!(alias("champion").is_ok());
        assert!(alias("canary-2").is_ok());
        assert!(alias("Champion").is_err());
        let err = alias("42").expect_err("digits");
        assert!(err.to_string().contains("all digits"), "{err}");
    }

    #[test]
    fn metrics_must_be_finite() {
        let map = HashMap::from([("auc".to_string(), f64::NAN)]);
        let err = metric_map("metrics", &map).expect_err("nan");
        assert!(err.to_string().contains("metrics.auc"), "{err}");
    }

    #[test]
    fn sha256_is_lowercase_hex_of_the_right_length() {
        assert!(sha256(&"a".repeat(64)).is_ok());
        assert!(sha256(&"A".repeat(64)).is_err());
        assert!(sha256("abc").is_err());
    }
}
