//! Typed configuration read from environment variables.
//!
//! Each service lists its settings in one `Config::from_env` built on
//! [`EnvReader`], which collects every problem instead of stopping at the
//! first, so a bad deployment fails at start-up with the whole list.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

/// All configuration problems found at start-up.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .problems.join("\n  - "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl ConfigError {
    /// For a value read with [`EnvReader::value`] that is missing although
    /// [`EnvReader::finish`] succeeded (a bug in the caller, never a user error).
    pub fn invalid(name: &str) -> Self {
        Self {
            problems: vec![format!("{name}: invalid value")],
        }
    }
}

/// Reads variables from a snapshot of the environment and records problems.
pub struct EnvReader {
    vars: HashMap<String, String>,
    problems: Vec<String>,
}

impl EnvReader {
    /// Reads from the process environment.
    pub fn from_process() -> Self {
        Self::from_map(std::env::vars().collect())
    }

    /// Reads from an explicit map (tests, embedding).
    pub fn from_map(vars: HashMap<String, String>) -> Self {
        Self {
            vars,
            problems: Vec::new(),
        }
    }

    /// Reads from name/value pairs (tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self::from_map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// Sets a variable, e.g. from a command-line flag that overrides it.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.vars.insert(name.to_string(), value.into());
    }

    /// The raw value when set and non-empty.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// The value or a default.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.optional(name).unwrap_or_else(|| default.to_string())
    }

    /// A parsed value or a default; an unparsable value is recorded as a problem.
    pub fn parse<T>(&mut self, name: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.optional(name) {
            None => default,
            Some(raw) => match raw.parse() {
                Ok(v) => v,
                Err(e) => {
                    self.problems.push(format!("{name}={raw:?}: {e}"));
                    default
                }
            },
        }
    }

    /// A value parsed from the variable, or from `default` when unset; an
    /// unparsable value is recorded as a problem and gives `None`. For types
    /// without a natural placeholder (a lake location, a URL): after
    /// [`finish`](Self::finish) succeeds, `None` cannot occur.
    pub fn value<T>(&mut self, name: &str, default: &str) -> Option<T>
    where
        T: FromStr,
        T::Err: Display,
    {
        let raw = self.string(name, default);
        match raw.parse() {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.push(format!("{name}={raw:?}: {e}"));
                None
            }
        }
    }

    /// A boolean setting: `true`/`false`, `1`/`0`, `on`/`off`, `yes`/`no`.
    pub fn flag(&mut self, name: &str, default: bool) -> bool {
        match self.optional(name) {
            None => default,
            Some(raw) => match raw.to_ascii_lowercase().as_str() {
                "true" | "1" | "on" | "yes" => true,
                "false" | "0" | "off" | "no" => false,
                _ => {
                    self.problems.push(format!(
                        "{name}={raw:?}: expected true/false (or 1/0, on/off)"
                    ));
                    default
                }
            },
        }
    }

    /// A secret from `NAME` or from the file named by `NAME_FILE` (its first
    /// line, trimmed: how Kubernetes Secrets are mounted). Both set, an
    /// empty or unreadable file are problems; the value is never echoed.
    pub fn secret(&mut self, name: &str) -> Option<secrecy::SecretString> {
        let file_var = format!("{name}_FILE");
        match (self.optional(name), self.optional(&file_var)) {
            (Some(_), Some(_)) => {
                self.problem(format!("set {name} or {file_var}, not both"));
                None
            }
            (Some(value), None) => Some(value.into()),
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(text) => match text.lines().next().map(str::trim).filter(|t| !t.is_empty()) {
                    Some(value) => Some(value.to_string().into()),
                    None => {
                        self.problem(format!("{file_var} {path:?} is empty"));
                        None
                    }
                },
                Err(e) => {
                    self.problem(format!("{file_var} {path:?}: {e}"));
                    None
                }
            },
            (None, None) => None,
        }
    }

    /// Records a problem found by a service-specific check.
    pub fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    /// Ends a round of reading: `Ok` when no problem was recorded, else
    /// every problem recorded so far (which are then cleared).
    pub fn finish(&mut self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: std::mem::take(&mut self.problems),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(pairs: &[(&str, &str)]) -> EnvReader {
        EnvReader::from_map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn secrets_come_from_the_variable_or_its_file() {
        use secrecy::ExposeSecret;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cret-value\nignored\n").expect("write");
        let path = file.display().to_string();
        let mut env = reader(&[("A_TOKEN_FILE", &path), ("B_TOKEN", "direct")]);
        assert_eq!(
            env.secret("A_TOKEN").expect("a").expose_secret(),
            "s3cret-value"
        );
        assert_eq!(env.secret("B_TOKEN").expect("b").expose_secret(), "direct");
        assert!(env.secret("C_TOKEN").is_none());
        env.finish().expect("no problems");

        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").expect("write");
        let empty = empty.display().to_string();
        let mut env = reader(&[
            ("A_TOKEN", "x"),
            ("A_TOKEN_FILE", &path),
            ("B_TOKEN_FILE", &empty),
        ]);
        assert!(env.secret("A_TOKEN").is_none());
        assert!(env.secret("B_TOKEN").is_none());
        let problems = env.finish().expect_err("problems").to_string();
        assert!(
            problems.contains("set A_TOKEN or A_TOKEN_FILE, not both"),
            "{problems}"
        );
        assert!(problems.contains("is empty"), "{problems}");
        assert!(!problems.contains("s3cret"), "never echoed: {problems}");
    }

    #[test]
    fn defaults_apply_when_unset_or_blank() {
        let mut env = reader(&[("BLANK", "  ")]);
        assert_eq!(env.parse("UNSET", 7u32), 7);
        assert_eq!(env.string("BLANK", "d"), "d");
        assert!(env.finish().is_ok());
    }

    #[test]
    fn values_and_flags_report_bad_input() {
        let mut env = reader(&[("PORT", "80x"), ("ON", "off"), ("BAD", "maybe")]);
        assert_eq!(env.value::<u16>("UNSET", "7"), Some(7));
        assert_eq!(env.value::<u16>("PORT", "7"), None);
        assert!(!env.flag("ON", true));
        assert!(env.flag("UNSET", true));
        assert!(env.flag("BAD", true));
        let text = env.finish().expect_err("two problems").to_string();
        assert!(text.contains("PORT=\"80x\""), "{text}");
        assert!(
            text.contains("BAD=\"maybe\": expected true/false"),
            "{text}"
        );
    }

    #[test]
    fn every_problem_is_reported_together() {
        let mut env = reader(&[("A", "x"), ("B", "-1")]);
        let _ = env.parse("A", 1u32);
        let _ = env.parse("B", 1u32);
        env.problem("C is required");
        let err = env.finish().expect_err("three problems");
        assert_eq!(err.problems.len(), 3, "{err}");
        let text = err.to_string();
        assert!(text.contains("A=\"x\""), "{text}");
        assert!(text.contains("B=\"-1\""), "{text}");
        assert!(text.contains("C is required"), "{text}");
    }
}
