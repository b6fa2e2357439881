//! The models being served, by registered name and alias.
//!
//! A request takes an `Arc` of the version it resolves to, so a swap never
//! disturbs it: the new version is installed beside the old one, and the old
//! one is dropped when its last request finishes.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use mlops_onnx::explain::Explainer;
use mlops_onnx::model::Model;

/// The aliases served, in order of preference for an unversioned request.
pub const ALIASES: [&str; 2] = ["champion", "challenger"];

/// One registered version, loaded in ONNX Runtime.
#[derive(Debug)]
pub struct LoadedVersion {
    pub model_name: String,
    pub version: i64,
    pub sha256: String,
    pub model: Model,
    /// How its scores decompose per input column, when its graph is one the
    /// explainer reads (the trainer's exports).
    pub explainer: Option<Explainer>,
    pub loaded_at: SystemTime,
}

/// Why the last attempt to load a version failed.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadFailure {
    pub alias: String,
    pub version: i64,
    pub sha256: String,
    pub reason: String,
}

#[derive(Debug, Default)]
struct Entry {
    /// Alias → the version it points at, loaded.
    aliases: BTreeMap<String, Arc<LoadedVersion>>,
    /// The last failed load per alias; cleared by a successful one.
    failures: BTreeMap<String, LoadFailure>,
    /// Set by the repository extension's `unload`; `load` clears it.
    unloaded: bool,
}

/// Why a request names no servable version.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Lookup {
    #[error("unknown model {0:?}")]
    UnknownModel(String),
    #[error("model {model:?} has no version {version:?}; loaded: {loaded}")]
    UnknownVersion {
        model: String,
        version: String,
        loaded: String,
    },
    #[error("model {model:?} is not ready: {reason}")]
    NotReady { model: String, reason: String },
}

/// One row of the repository index.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexEntry {
    pub name: String,
    /// Empty when nothing is loaded.
    pub version: String,
    pub aliases: Vec<String>,
    /// `READY` or `UNAVAILABLE`.
    pub state: &'static str,
    /// Why the model is unavailable or its last load failed; empty otherwise.
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct ModelStore {
    entries: RwLock<BTreeMap<String, Entry>>,
}

impl ModelStore {
    /// A store that serves `names` (nothing loaded yet).
    pub fn new(names: &[String]) -> Self {
        let entries = names
            .iter()
            .map(|n| (n.clone(), Entry::default()))
            .collect();
        Self {
            entries: RwLock::new(entries),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Entry>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Entry>> {
        self.entries.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Names of the models served (loaded or not), sorted.
    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// Whether `name` is to be followed (served and not unloaded).
    pub fn is_followed(&self, name: &str) -> bool {
        self.read().get(name).is_some_and(|e| !e.unloaded)
    }

    /// The version a request for `name` (and `version`, a number or an
    /// alias) is served by: without a version, `@champion`, else
    /// `@challenger`.
    pub fn resolve(&self, name: &str, version: Option<&str>) -> Result<Arc<LoadedVersion>, Lookup> {
        let entries = self.read();
        let entry = entries
            .get(name)
            .ok_or_else(|| Lookup::UnknownModel(name.to_string()))?;
        if entry.unloaded {
            return Err(Lookup::NotReady {
                model: name.to_string(),
                reason: "unloaded through the repository API".into(),
            });
        }
        match version {
            None => ALIASES
                .iter()
                .find_map(|alias| entry.aliases.get(*alias).cloned())
                .ok_or_else(|| Lookup::NotReady {
                    model: name.to_string(),
                    reason: not_loaded_reason(entry),
                }),
            Some(wanted) => entry
                .aliases
                .iter()
                .find(|(alias, loaded)| {
                    alias.as_str() == wanted || loaded.version.to_string() == wanted
                })
                .map(|(_, loaded)| loaded.clone())
                .ok_or_else(|| Lookup::UnknownVersion {
                    model: name.to_string(),
                    version: wanted.to_string(),
                    loaded: describe_loaded(entry),
                }),
        }
    }

    /// The versions loaded for `name`, newest first, without duplicates.
    pub fn versions(&self, name: &str) -> Vec<i64> {
        let entries = self.read();
        let mut versions: Vec<i64> = entries
            .get(name)
            .map(|e| e.aliases.values().map(|l| l.version).collect())
            .unwrap_or_default();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        versions.dedup();
        versions
    }

    /// The version loaded under `alias`, if any.
    pub fn loaded(&self, name: &str, alias: &str) -> Option<Arc<LoadedVersion>> {
        self.read().get(name)?.aliases.get(alias).cloned()
    }

    /// The last failure of `alias`, if its last load failed.
    pub fn failure(&self, name: &str, alias: &str) -> Option<LoadFailure> {
        self.read().get(name)?.failures.get(alias).cloned()
    }

    /// Puts `loaded` behind `alias`; returns the version it replaced.
    pub fn install(&self, alias: &str, loaded: Arc<LoadedVersion>) -> Option<i64> {
        let mut entries = self.write();
        let entry = entries.entry(loaded.model_name.clone()).or_default();
        entry.failures.remove(alias);
        entry
            .aliases
            .insert(alias.to_string(), loaded)
            .map(|old| old.version)
    }

    /// Stops serving `alias` (deleted in the registry).
    pub fn remove(&self, name: &str, alias: &str) -> Option<i64> {
        let mut entries = self.write();
        let entry = entries.get_mut(name)?;
        entry.failures.remove(alias);
        entry.aliases.remove(alias).map(|old| old.version)
    }

    /// Records a failed load; what was serving keeps serving.
    pub fn record_failure(&self, name: &str, failure: LoadFailure) {
        let mut entries = self.write();
        let entry = entries.entry(name.to_string()).or_default();
        entry.failures.insert(failure.alias.clone(), failure);
    }

    /// Serves `name` again (or for the first time) after an `unload`.
    pub fn follow(&self, name: &str) {
        self.write().entry(name.to_string()).or_default().unloaded = false;
    }

    /// Drops `name` altogether (a `load` of a model the registry lacks).
    pub fn forget(&self, name: &str) {
        self.write().remove(name);
    }

    /// Stops serving `name` and drops what was loaded.
    pub fn unload(&self, name: &str) -> bool {
        let mut entries = self.write();
        match entries.get_mut(name) {
            Some(entry) => {
                entry.unloaded = true;
                entry.aliases.clear();
                entry.failures.clear();
                true
            }
            None => false,
        }
    }

    /// Every followed model has a champion loaded.
    pub fn is_ready(&self) -> bool {
        self.read()
            .values()
            .all(|e| e.unloaded || e.aliases.contains_key(ALIASES[0]))
    }

    pub fn index(&self) -> Vec<IndexEntry> {
        self.read()
            .iter()
            .map(|(name, entry)| {
                let serving = ALIASES.iter().find_map(|a| entry.aliases.get(*a));
                let state = if serving.is_some() && !entry.unloaded {
                    "READY"
                } else {
                    "UNAVAILABLE"
                };
                let reason = if entry.unloaded {
                    "unloaded through the repository API".to_string()
                } else if entry.failures.is_empty() && serving.is_some() {
                    String::new()
                } else {
                    not_loaded_reason(entry)
                };
                IndexEntry {
                    name: name.clone(),
                    version: serving.map(|l| l.version.to_string()).unwrap_or_default(),
                    aliases: entry.aliases.keys().cloned().collect(),
                    state,
                    reason,
                }
            })
            .collect()
    }

    /// One line per model for `/readyz`: what serves it, or why nothing does.
    pub fn report(&self) -> String {
        let mut lines = Vec::new();
        for row in self.index() {
            let serving = if row.version.is_empty() {
                "nothing loaded".to_string()
            } else {
                format!(
                    "serving version {} ({})",
                    row.version,
                    row.aliases.join(", ")
                )
            };
            let reason = if row.reason.is_empty() {
                String::new()
            } else {
                format!("; {}", row.reason)
            };
            lines.push(format!("{}: {serving}{reason}", row.name));
        }
        lines.join("\n")
    }
}

fn describe_loaded(entry: &Entry) -> String {
    if entry.aliases.is_empty() {
        return "none".into();
    }
    let parts: Vec<String> = entry
        .aliases
        .iter()
        .map(|(alias, l)| format!("{} (@{alias})", l.version))
        .collect();
    parts.join(", ")
}

fn not_loaded_reason(entry: &Entry) -> String {
    if entry.failures.is_empty() {
        return "no @champion has been loaded yet".into();
    }
    let parts: Vec<String> = entry
        .failures
        .values()
        .map(|f| {
            format!(
                "loading version {} (@{}) failed: {}",
                f.version, f.alias, f.reason
            )
        })
        .collect();
    parts.join("; ")
}
