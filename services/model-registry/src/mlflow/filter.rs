//! MLflow's search syntax translated to the registry's filter language
//! (`crate::filter`), which then validates it as it does for gRPC.
//!
//! MLflow writes `name = 'churn' and tags.\`team\` = "retention"`,
//! `version_number > 3`, `tag.key = 'v'`; the registry writes
//! `name = 'churn' AND tags.team = 'retention'`, `version > 3`. Clauses the
//! registry cannot answer (`ILIKE`, `IN`, `source_path`, `current_stage`,
//! `OR`, parentheses) are refused with a message naming them.

use super::MlflowError;

/// The attributes MLflow names differently.
fn attribute(name: &str, versions: bool) -> Result<String, MlflowError> {
    let lower = name.to_ascii_lowercase();
    Ok(match lower.as_str() {
        "name" => "name".into(),
        "version_number" | "version" if versions => "version".into(),
        "run_id" if versions => "run_id".into(),
        "user_id" if versions => "created_by".into(),
        "source_path"
        | "current_stage"
        | "creation_timestamp"
        | "last_updated_timestamp"
        | "description"
        | "storage_location" => {
            return Err(MlflowError::invalid(format!(
                "the registry cannot filter on `{name}`; filter on name, tags{}",
                if versions {
                    ", version_number, run_id or user_id"
                } else {
                    ""
                }
            )));
        }
        _ => {
            return Err(MlflowError::invalid(format!(
                "invalid attribute key `{name}`: expected name, tags.<key>{}",
                if versions {
                    ", version_number, run_id or user_id"
                } else {
                    ""
                }
            )));
        }
    })
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    /// A backquoted or quoted identifier part, e.g. the key in tags.`key`.
    Quoted(String),
    Text(String),
    Op(String),
}

fn tokenize(input: &str) -> Result<Vec<Token>, MlflowError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' || c == '`' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(MlflowError::invalid(format!(
                            "unterminated {c} in filter {input:?}"
                        )));
                    }
                    Some(&q) if q == c && chars.get(i + 1) == Some(&c) => {
                        text.push(c);
                        i += 2;
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        text.push(other);
                        i += 1;
                    }
                }
            }
            // After `tags.`, a quoted part is the key; elsewhere a value.
            let after_dot = matches!(tokens.last(), Some(Token::Word(w)) if w.ends_with('.'));
            tokens.push(if c == '`' || after_dot {
                Token::Quoted(text)
            } else {
                Token::Text(text)
            });
        } else if matches!(c, '=' | '!' | '<' | '>') {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op = match two.as_str() {
                "!=" | "<>" | "<=" | ">=" | "==" => two,
                _ if c == '!' => {
                    return Err(MlflowError::invalid(format!("unexpected `!` in {input:?}")));
                }
                _ => c.to_string(),
            };
            i += op.len();
            tokens.push(Token::Op(if op == "==" { "=".into() } else { op }));
        } else if c == '(' || c == ')' || c == ',' {
            return Err(MlflowError::invalid(format!(
                "`{c}` in {input:?}: the registry takes clauses joined by AND, without IN lists or parentheses"
            )));
        } else {
            let start = i;
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !matches!(
                    chars[i],
                    '=' | '!' | '<' | '>' | '\'' | '"' | '`' | '(' | ')'
                )
            {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        }
    }
    Ok(tokens)
}

/// A registry string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Translates an MLflow filter on registered models (`versions = false`)
/// or model versions.
pub fn translate(input: &str, versions: bool) -> Result<String, MlflowError> {
    let tokens = tokenize(input)?;
    let mut clauses = Vec::new();
    let mut rest = tokens.iter().peekable();
    while rest.peek().is_some() {
        // The field: `name`, `tags.key`, `tags.` + quoted key.
        let field = match rest.next() {
            Some(Token::Word(word)) => {
                let lower = word.to_ascii_lowercase();
                let tag = ["tags.", "tag."]
                    .iter()
                    .find_map(|p| lower.starts_with(p).then(|| &word[p.len()..]));
                match tag {
                    Some("") => match rest.next() {
                        Some(Token::Quoted(key)) => tag_field(key)?,
                        _ => {
                            return Err(MlflowError::invalid(format!(
                                "a tag key is missing after `{word}` in {input:?}"
                            )));
                        }
                    },
                    Some(key) => tag_field(key)?,
                    None => attribute(word, versions)?,
                }
            }
            Some(other) => {
                return Err(MlflowError::invalid(format!(
                    "expected an attribute or tags.<key> in {input:?}, found {other:?}"
                )));
            }
            None => unreachable!("peeked"),
        };
        let op = match rest.next() {
            Some(Token::Op(op)) => op.clone(),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("like") => "LIKE".into(),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("ilike") => {
                return Err(MlflowError::invalid(
                    "ILIKE is not supported: the registry's matches are case-sensitive; use LIKE",
                ));
            }
            Some(Token::Word(w))
                if w.eq_ignore_ascii_case("in") || w.eq_ignore_ascii_case("not") =>
            {
                return Err(MlflowError::invalid(
                    "IN and NOT IN are not supported: write one clause per value",
                ));
            }
            other => {
                return Err(MlflowError::invalid(format!(
                    "expected a comparison after `{field}` in {input:?}, found {other:?}"
                )));
            }
        };
        let value = match rest.next() {
            Some(Token::Text(text)) => literal(text),
            Some(Token::Word(number)) if number.parse::<f64>().is_ok() => number.clone(),
            other => {
                return Err(MlflowError::invalid(format!(
                    "expected a quoted string or a number after `{field} {op}` in {input:?}, found {other:?}"
                )));
            }
        };
        clauses.push(format!("{field} {op} {value}"));
        match rest.next() {
            None => break,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("and") => {}
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("or") => {
                return Err(MlflowError::invalid(
                    "OR is not supported: clauses are joined by AND",
                ));
            }
            Some(other) => {
                return Err(MlflowError::invalid(format!(
                    "expected AND between clauses in {input:?}, found {other:?}"
                )));
            }
        }
    }
    Ok(clauses.join(" AND "))
}

fn tag_field(key: &str) -> Result<String, MlflowError> {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'));
    if !plain {
        return Err(MlflowError::invalid(format!(
            "tag key {key:?} cannot be searched: keys of letters, digits, `_`, `.`, `-` and `/` can"
        )));
    }
    Ok(format!("tags.{key}"))
}

/// Translates one MLflow `order_by` entry (`version_number DESC`,
/// `last_updated_timestamp`, `name ASC`).
pub fn order(input: &str, versions: bool) -> Result<String, MlflowError> {
    let mut words = input.split_whitespace();
    let key = words.next().unwrap_or_default();
    let direction = words.next().unwrap_or("ASC");
    let key = match (key.to_ascii_lowercase().as_str(), versions) {
        ("name", _) => "name",
        ("creation_timestamp", _) => "created_at",
        ("last_updated_timestamp" | "timestamp", false) => "updated_at",
        ("version_number" | "version", true) => "version",
        _ => {
            return Err(MlflowError::invalid(format!(
                "cannot order by {input:?}: use name, creation_timestamp{}",
                if versions {
                    " or version_number"
                } else {
                    " or last_updated_timestamp"
                }
            )));
        }
    };
    if !direction.eq_ignore_ascii_case("asc") && !direction.eq_ignore_ascii_case("desc")
        || words.next().is_some()
    {
        return Err(MlflowError::invalid(format!(
            "cannot order by {input:?}: expected `<key> ASC` or `<key> DESC`"
        )));
    }
    Ok(format!("{key} {}", direction.to_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlflow_filters_become_registry_filters() {
        assert_eq!(
            translate("name = 'churn' and tags.`team` = \"retention\"", true).expect("ok"),
            "name = 'churn' AND tags.team = 'retention'"
        );
        assert_eq!(
            translate(
                "name LIKE 'ch%' AND tag.`mlflow.prompt.is_prompt` != 'true'",
                false
            )
            .expect("ok"),
            "name LIKE 'ch%' AND tags.mlflow.prompt.is_prompt != 'true'"
        );
        assert_eq!(
            translate("version_number>=3 and run_id='r''1'", true).expect("ok"),
            "version >= 3 AND run_id = 'r''1'"
        );
        assert_eq!(translate("", true).expect("empty"), "");
        assert_eq!(
            order("version_number DESC", true).expect("ok"),
            "version DESC"
        );
        assert_eq!(
            order("last_updated_timestamp", false).expect("ok"),
            "updated_at ASC"
        );
    }

    #[test]
    fn what_the_registry_cannot_answer_is_refused_by_name() {
        let refused = |f: &str| translate(f, true).expect_err(f).message;
        assert!(refused("name ILIKE 'c%'").contains("ILIKE"));
        assert!(refused("run_id IN ('a', 'b')").contains("IN lists"));
        assert!(refused("name = 'a' OR name = 'b'").contains("OR"));
        assert!(refused("current_stage = 'Production'").contains("current_stage"));
        assert!(refused("tags.`a key` = 'x'").contains("cannot be searched"));
        assert!(refused("name = ").contains("expected a quoted string"));
        assert!(order("metrics.auc DESC", true).is_err());
        assert!(
            translate("version_number > 3", false).is_err(),
            "models have no version"
        );
    }
}
