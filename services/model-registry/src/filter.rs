//! The search filter language: clauses joined by `AND`.
//!
//! ```text
//! name LIKE 'churn-%' AND metrics.auc > 0.8 AND tags.team = 'retention'
//! ```
//!
//! A clause is `field op value`. Strings are single-quoted (`''` escapes a
//! quote), numbers are plain, booleans are `true`/`false`. Which fields and
//! operators are allowed depends on what is searched; anything else is an
//! `INVALID_ARGUMENT` naming the position and what was expected.

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Text(String),
    Number(f64),
    Bool(bool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
}

impl Op {
    pub fn sql(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "<>",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Like => "LIKE",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Self::Ne => "!=",
            other => other.sql(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    Name,
    Version,
    Status,
    Format,
    RunId,
    CreatedBy,
    Archived,
    Alias,
    Metric(String),
    Param(String),
    Tag(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Clause {
    pub field: Field,
    pub op: Op,
    pub value: Value,
}

/// What is being searched; decides the fields allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Models,
    Versions,
}

const EQ_NE: &[Op] = &[Op::Eq, Op::Ne];
const TEXT_OPS: &[Op] = &[Op::Eq, Op::Ne, Op::Like];
const NUMERIC_OPS: &[Op] = &[Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
    Bool,
}

fn rules(field: &Field, target: Target) -> Option<(&'static [Op], Kind)> {
    use Target::*;
    Some(match (field, target) {
        (Field::Name, _) => (TEXT_OPS, Kind::Text),
        (Field::Tag(_), _) => (EQ_NE, Kind::Text),
        (Field::Alias, _) => (&[Op::Eq], Kind::Text),
        (Field::Archived, Models) => (&[Op::Eq], Kind::Bool),
        (Field::Version, Versions) => (NUMERIC_OPS, Kind::Number),
        (Field::Metric(_), Versions) => (NUMERIC_OPS, Kind::Number),
        (Field::Param(_), Versions) => (EQ_NE, Kind::Text),
        (Field::Status | Field::Format | Field::RunId | Field::CreatedBy, Versions) => {
            (EQ_NE, Kind::Text)
        }
        _ => return None,
    })
}

fn fields_help(target: Target) -> &'static str {
    match target {
        Target::Models => "name, tags.<key>, alias, archived",
        Target::Versions => {
            "name, version, status, format, run_id, created_by, alias, metrics.<key>, params.<key>, tags.<key>"
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    Text(String),
    Number(f64),
    Op(Op),
}

fn tokenize(input: &str) -> Result<Vec<(usize, Token)>> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(at(start, "unterminated string: add the closing '")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        text.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(other) => {
                        text.push(*other);
                        i += 1;
                    }
                }
            }
            tokens.push((start, Token::Text(text)));
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | '-' | '+'))
            {
                i += 1;
            }
            let raw: String = chars[start..i].iter().collect();
            let number = raw
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| at(start, &format!("`{raw}` is not a number")))?;
            tokens.push((start, Token::Number(number)));
        } else if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '.' | '-' | '/'))
            {
                i += 1;
            }
            tokens.push((start, Token::Ident(chars[start..i].iter().collect())));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let (op, len) = match (c, two.as_str()) {
                (_, "!=") | (_, "<>") => (Op::Ne, 2),
                (_, "<=") => (Op::Le, 2),
                (_, ">=") => (Op::Ge, 2),
                ('=', _) => (Op::Eq, 1),
                ('<', _) => (Op::Lt, 1),
                ('>', _) => (Op::Gt, 1),
                _ => return Err(at(start, &format!("unexpected character `{c}`"))),
            };
            i += len;
            tokens.push((start, Token::Op(op)));
        }
    }
    Ok(tokens)
}

fn at(position: usize, message: &str) -> Error {
    Error::invalid(format!(
        "invalid filter at character {}: {message}",
        position + 1
    ))
}

fn parse_field(name: &str) -> Option<Field> {
    let keyed = |prefix: &str| {
        name.strip_prefix(prefix)
            .filter(|key| !key.is_empty())
            .map(str::to_string)
    };
    if let Some(key) = keyed("metrics.") {
        return Some(Field::Metric(key));
    }
    if let Some(key) = keyed("params.") {
        return Some(Field::Param(key));
    }
    if let Some(key) = keyed("tags.") {
        return Some(Field::Tag(key));
    }
    Some(match name.to_ascii_lowercase().as_str() {
        "name" => Field::Name,
        "version" => Field::Version,
        "status" => Field::Status,
        "format" => Field::Format,
        "run_id" => Field::RunId,
        "created_by" => Field::CreatedBy,
        "archived" => Field::Archived,
        "alias" => Field::Alias,
        _ => return None,
    })
}

/// Parses a filter; an empty or blank filter matches everything.
pub fn parse(input: &str, target: Target) -> Result<Vec<Clause>> {
    let tokens = tokenize(input)?;
    let end = input.chars().count();
    let mut clauses = Vec::new();
    let mut iter = tokens.into_iter().peekable();
    while iter.peek().is_some() {
        if !clauses.is_empty() {
            match iter.next() {
                Some((_, Token::Ident(word))) if word.eq_ignore_ascii_case("and") => {}
                Some((pos, _)) => {
                    return Err(at(
                        pos,
                        "expected AND between clauses (OR is not supported)",
                    ));
                }
                None => unreachable!("peeked"),
            }
        }
        let (pos, name) = match iter.next() {
            Some((pos, Token::Ident(name))) => (pos, name),
            Some((pos, _)) => {
                return Err(at(
                    pos,
                    &format!("expected a field ({})", fields_help(target)),
                ));
            }
            None => return Err(at(end, "expected a clause after AND")),
        };
        let unknown = || {
            at(
                pos,
                &format!("unknown field `{name}`; fields are {}", fields_help(target)),
            )
        };
        let field = parse_field(&name).ok_or_else(unknown)?;
        let (ops, kind) = rules(&field, target).ok_or_else(unknown)?;
        let (op_pos, op) = match iter.next() {
            Some((p, Token::Op(op))) => (p, op),
            Some((p, Token::Ident(word))) if word.eq_ignore_ascii_case("like") => (p, Op::Like),
            Some((p, _)) => return Err(at(p, &format!("expected an operator after `{name}`"))),
            None => return Err(at(end, &format!("expected an operator after `{name}`"))),
        };
        if !ops.contains(&op) {
            let allowed: Vec<_> = ops.iter().map(|o| o.text()).collect();
            return Err(at(
                op_pos,
                &format!("`{name}` allows {}, not {}", allowed.join(" "), op.text()),
            ));
        }
        let (value_pos, token) = match iter.next() {
            Some(t) => t,
            None => {
                return Err(at(
                    end,
                    &format!("expected a value after `{name} {}`", op.text()),
                ));
            }
        };
        let value = match (kind, token) {
            (Kind::Text, Token::Text(text)) => Value::Text(text),
            (Kind::Number, Token::Number(n)) => Value::Number(n),
            (Kind::Bool, Token::Ident(word)) if word.eq_ignore_ascii_case("true") => {
                Value::Bool(true)
            }
            (Kind::Bool, Token::Ident(word)) if word.eq_ignore_ascii_case("false") => {
                Value::Bool(false)
            }
            (Kind::Text, _) => {
                return Err(at(
                    value_pos,
                    &format!("`{name}` compares with a 'quoted string'"),
                ));
            }
            (Kind::Number, _) => {
                return Err(at(value_pos, &format!("`{name}` compares with a number")));
            }
            (Kind::Bool, _) => {
                return Err(at(
                    value_pos,
                    &format!("`{name}` compares with true or false"),
                ));
            }
        };
        let value = match (&field, value) {
            (Field::Status, Value::Text(s)) => {
                Value::Text(normalise_status(&s).ok_or_else(|| {
                    at(
                        value_pos,
                        &format!("status {s:?} is not one of PENDING, READY, FAILED"),
                    )
                })?)
            }
            (Field::Version, Value::Number(n)) if n.fract() != 0.0 => {
                return Err(at(value_pos, "version compares with a whole number"));
            }
            (_, value) => value,
        };
        clauses.push(Clause { field, op, value });
    }
    Ok(clauses)
}

fn normalise_status(raw: &str) -> Option<String> {
    let upper = raw.to_ascii_uppercase();
    let bare = upper
        .strip_prefix("MODEL_VERSION_STATUS_")
        .unwrap_or(&upper);
    matches!(bare, "PENDING" | "READY" | "FAILED").then(|| bare.to_string())
}

/// A sort key for search results.
#[derive(Clone, Debug, PartialEq)]
pub enum SortKey {
    Name,
    Version,
    CreatedAt,
    UpdatedAt,
    Metric(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct OrderBy {
    pub key: SortKey,
    pub descending: bool,
}

/// Parses `order_by` (`<key> [ASC|DESC]`); `default` applies when blank.
pub fn parse_order(input: &str, target: Target, default: OrderBy) -> Result<OrderBy> {
    let words: Vec<&str> = input.split_whitespace().collect();
    if words.is_empty() {
        return Ok(default);
    }
    let allowed = match target {
        Target::Models => "name, created_at, updated_at",
        Target::Versions => "version, name, created_at, metrics.<key>",
    };
    let invalid = |why: &str| {
        Error::invalid(format!(
            "invalid order_by {input:?}: {why}; sort by {allowed}, optionally followed by ASC or DESC"
        ))
    };
    let key = match (words[0], target) {
        ("name", _) => SortKey::Name,
        ("created_at", _) => SortKey::CreatedAt,
        ("updated_at", Target::Models) => SortKey::UpdatedAt,
        ("version", Target::Versions) => SortKey::Version,
        (other, Target::Versions) if other.starts_with("metrics.") && other.len() > 8 => {
            SortKey::Metric(other["metrics.".len()..].to_string())
        }
        (other, _) => return Err(invalid(&format!("unknown key `{other}`"))),
    };
    let descending = match words.get(1).map(|w| w.to_ascii_uppercase()) {
        None => false,
        Some(w) if w == "ASC" => false,
        Some(w) if w == "DESC" => true,
        Some(w) => return Err(invalid(&format!("`{w}` is neither ASC nor DESC"))),
    };
    if words.len() > 2 {
        return Err(invalid("too many words"));
    }
    Ok(OrderBy { key, descending })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str, target: Target) -> String {
        parse(input, target).expect_err(input).to_string()
    }

    #[test]
    fn parses_a_conjunction_of_typed_clauses() {
        let clauses = parse(
            "name LIKE 'churn-%' AND metrics.auc >= 0.8 and tags.team = 'o''neil' AND status = 'ready'",
            Target::Versions,
        )
        .expect("valid");
        assert_eq!(
            clauses,
            vec![
                Clause {
                    field: Field::Name,
                    op: Op::Like,
                    value: Value::Text("churn-%".into())
                },
                Clause {
                    field: Field::Metric("auc".into()),
                    op: Op::Ge,
                    value: Value::Number(0.8)
                },
                Clause {
                    field: Field::Tag("team".into()),
                    op: Op::Eq,
                    value: Value::Text("o'neil".into())
                },
                Clause {
                    field: Field::Status,
                    op: Op::Eq,
                    value: Value::Text("READY".into())
                },
            ]
        );
        assert!(parse("   ", Target::Models).expect("blank").is_empty());
        assert_eq!(
            parse("version > -1", Target::Versions).expect("negative")[0].value,
            Value::Number(-1.0)
        );
    }

    #[test]
    fn errors_name_the_position_and_the_fix() {
        assert_eq!(
            err("metrics.auc > 'high'", Target::Versions),
            "invalid filter at character 15: `metrics.auc` compares with a number"
        );
        assert_eq!(
            err("name = 'a' OR name = 'b'", Target::Versions),
            "invalid filter at character 12: expected AND between clauses (OR is not supported)"
        );
        assert!(err("metrics.auc > 0.8", Target::Models).contains("unknown field `metrics.auc`"));
        assert!(err("tags.team > 'x'", Target::Models).contains("allows = !=, not >"));
        assert!(err("name = 'x", Target::Models).contains("unterminated string"));
        assert!(
            err("status = 'DONE'", Target::Versions).contains("not one of PENDING, READY, FAILED")
        );
        assert!(err("name = 'x' AND", Target::Models).contains("expected a clause after AND"));
        assert!(err("archived = 1", Target::Models).contains("true or false"));
        assert!(err("version = 1.5", Target::Versions).contains("whole number"));
        assert!(err("name ~ 'x'", Target::Models).contains("unexpected character `~`"));
    }

    #[test]
    fn order_by_accepts_known_keys_and_directions() {
        let default = OrderBy {
            key: SortKey::Name,
            descending: false,
        };
        assert_eq!(
            parse_order("", Target::Models, default.clone()).expect("blank"),
            default
        );
        assert_eq!(
            parse_order("metrics.auc desc", Target::Versions, default.clone()).expect("metric"),
            OrderBy {
                key: SortKey::Metric("auc".into()),
                descending: true
            }
        );
        let e =
            parse_order("version sideways", Target::Versions, default.clone()).expect_err("dir");
        assert!(e.to_string().contains("neither ASC nor DESC"), "{e}");
        let e = parse_order("version", Target::Models, default).expect_err("key");
        assert!(e.to_string().contains("unknown key `version`"), "{e}");
    }
}
