//! ONNX Runtime for the platform's models, through the `ort` crate with the
//! runtime library loaded at run time (`ORT_DYLIB_PATH`; `scripts/infra.sh`
//! installs it from the `onnxruntime` wheel and the images ship it).
//!
//! The trainer checks its exports with [`Scorer`] and the gateway serves
//! with it, so what the trainer verified is what is served.
//!
//! A model's input is one float32 tensor `[-1, F]`; its columns are named by
//! the model itself, as a JSON array under the metadata key
//! [`FEATURES_METADATA_KEY`]. The output read is the class probabilities
//! `[-1, 2]` (no `ZipMap`); the positive class is column 1.

pub mod explain;
pub mod model;
pub mod proto;
pub mod reference;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::Session;
use ort::value::Tensor;

/// ONNX `metadata_props` key of the input's column list (a JSON array).
pub const FEATURES_METADATA_KEY: &str = "features";
/// The runtime library the setup installs, for messages and defaults.
pub const RUNTIME_VERSION: &str = "1.31.1";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "ONNX Runtime library not found at {path}: set ORT_DYLIB_PATH to libonnxruntime.so \
         (./scripts/infra.sh install puts it under the project's Python venv)"
    )]
    LibraryMissing { path: PathBuf },
    #[error("cannot load ONNX Runtime from {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("ONNX Runtime was loaded from {loaded}; cannot load {requested} as well")]
    AlreadyLoaded { loaded: PathBuf, requested: PathBuf },
    #[error("the model cannot be loaded: {0}")]
    Model(String),
    #[error("the model's metadata is not valid: {0}")]
    Metadata(String),
    /// The caller's input does not fit the model (a client error).
    #[error("{0}")]
    Input(String),
    #[error("input has {got} values, not a multiple of the model's {columns} columns")]
    Shape { got: usize, columns: usize },
    #[error("scoring failed: {0}")]
    Run(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The library loaded and the process's one ONNX Runtime environment.
static RUNTIME: OnceLock<(PathBuf, ort::environment::Environment)> = OnceLock::new();

/// Loads the runtime library once per process. Later calls with the same
/// path are no-ops; another path is an error (one runtime per process).
pub fn init(library: &Path) -> Result<()> {
    if let Some((loaded, _)) = RUNTIME.get() {
        return if loaded == library {
            Ok(())
        } else {
            Err(Error::AlreadyLoaded {
                loaded: loaded.clone(),
                requested: library.to_path_buf(),
            })
        };
    }
    if !library.is_file() {
        return Err(Error::LibraryMissing {
            path: library.to_path_buf(),
        });
    }
    let load = |reason: String| Error::Load {
        path: library.to_path_buf(),
        reason,
    };
    let builder = ort::init_from(library).map_err(|e| load(e.to_string()))?;
    let environment = builder
        .with_name("mlops")
        .build()
        .map_err(|e| load(e.to_string()))?;
    let _ = RUNTIME.set((library.to_path_buf(), environment));
    Ok(())
}

/// The library path from `ORT_DYLIB_PATH`, if set.
pub fn library_from_env() -> Option<PathBuf> {
    std::env::var_os("ORT_DYLIB_PATH")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// A session over `model`; [`init`] must have succeeded first. `threads`
/// bounds ONNX Runtime's intra-op pool.
fn new_session(model: &[u8], threads: usize) -> Result<Session> {
    let Some((_, environment)) = RUNTIME.get() else {
        return Err(Error::Model(
            "ONNX Runtime is not loaded (set ORT_DYLIB_PATH)".into(),
        ));
    };
    let model_error = |e: ort::Error| Error::Model(e.to_string());
    Session::builder(environment)
        .map_err(model_error)?
        .with_intra_threads(threads.max(1))
        .map_err(|e| Error::Model(e.to_string()))?
        .commit_from_memory(model)
        .map_err(model_error)
}

/// Every `metadata_props` entry, sorted by key.
fn read_metadata(session: &Session) -> Result<Vec<(String, String)>> {
    let meta = session
        .metadata()
        .map_err(|e| Error::Metadata(e.to_string()))?;
    let mut metadata = Vec::new();
    for key in meta
        .custom_keys()
        .map_err(|e| Error::Metadata(e.to_string()))?
    {
        if let Some(value) = meta.custom(&key) {
            metadata.push((key, value));
        }
    }
    metadata.sort();
    Ok(metadata)
}

/// One loaded model.
pub struct Scorer {
    session: Session,
    input: String,
    probabilities: String,
    features: Vec<String>,
    metadata: Vec<(String, String)>,
}

impl std::fmt::Debug for Scorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scorer")
            .field("input", &self.input)
            .field("probabilities", &self.probabilities)
            .field("features", &self.features.len())
            .finish()
    }
}

impl Scorer {
    /// Loads a model from its bytes; [`init`] must have succeeded first.
    /// `threads` bounds ONNX Runtime's intra-op pool.
    pub fn from_bytes(model: &[u8], threads: usize) -> Result<Self> {
        let session = new_session(model, threads)?;
        let inputs = session.inputs();
        let [input] = inputs else {
            return Err(Error::Model(format!(
                "expected one input tensor, the model has {}",
                inputs.len()
            )));
        };
        let input = input.name().to_string();
        let probabilities = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .find(|name| name == "probabilities")
            .or_else(|| session.outputs().get(1).map(|o| o.name().to_string()))
            .ok_or_else(|| {
                Error::Model("the model has no probabilities output (second output)".into())
            })?;
        let metadata = read_metadata(&session)?;
        let features = match metadata.iter().find(|(k, _)| k == FEATURES_METADATA_KEY) {
            Some((_, raw)) => serde_json::from_str::<Vec<String>>(raw).map_err(|e| {
                Error::Metadata(format!(
                    "{FEATURES_METADATA_KEY} is not a JSON array of strings: {e}"
                ))
            })?,
            None => Vec::new(),
        };
        Ok(Self {
            session,
            input,
            probabilities,
            features,
            metadata,
        })
    }

    /// The input's column names from the model's metadata (empty when the
    /// model does not name them).
    pub fn features(&self) -> &[String] {
        &self.features
    }

    /// Every `metadata_props` entry, sorted by key.
    pub fn metadata(&self) -> &[(String, String)] {
        &self.metadata
    }

    pub fn input_name(&self) -> &str {
        &self.input
    }

    /// Positive-class probabilities of `rows` (row-major, `columns` wide).
    pub fn score(&mut self, rows: &[f32], columns: usize) -> Result<Vec<f32>> {
        if columns == 0 || !rows.len().is_multiple_of(columns) {
            return Err(Error::Shape {
                got: rows.len(),
                columns,
            });
        }
        let n = rows.len() / columns;
        let run = |e: ort::Error| Error::Run(e.to_string());
        let tensor = Tensor::from_array(([n, columns], rows.to_vec())).map_err(run)?;
        let outputs = self
            .session
            .run(ort::inputs![self.input.as_str() => tensor])
            .map_err(run)?;
        let (shape, values) = outputs[self.probabilities.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(run)?;
        let width = match shape.len() {
            2 => usize::try_from(shape[1]).unwrap_or(0),
            _ => 0,
        };
        if width < 2 || values.len() != n * width {
            return Err(Error::Run(format!(
                "probabilities have shape {shape:?}; expected [{n}, 2]"
            )));
        }
        Ok(values.chunks(width).map(|p| p[1]).collect())
    }
}
