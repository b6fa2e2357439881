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
    fn defaults_apply_when_unset_or_blank() {
        let mut env = reader(&[("BLANK", "  ")]);
        assert_eq!(env.parse("UNSET", 7u32), 7);
        assert_eq!(env.string("BLANK", "d"), "d");
        assert!(env.finish().is_ok());
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
