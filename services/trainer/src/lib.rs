//! The trainer: gold at a pinned version → labelled, time-split training
//! set → logistic regression and gradient-boosted trees trained in Rust →
//! test metrics → ONNX exports checked against ONNX Runtime → registered
//! with their lineage → the champion gate.
//!
//! [`dataset`] defines the labels and the split; [`app`] runs the phases.

pub mod app;
pub mod config;
pub mod dataset;
pub mod evaluation;
pub mod export;
pub mod gate;
pub mod gbdt;
pub mod linear;
pub mod matrices;
pub mod matrix;
pub mod metrics;
pub mod onnx;
pub mod parallel;
mod publish;
pub mod reference;
pub mod registry;
pub mod train;

pub use app::{App, RunSummary, train_once};
pub use config::{CandidateKind, Mode, TrainerConfig};

/// The trainer's source revision (`git rev-parse`), recorded on every run.
pub const TRAINER_VERSION: &str = env!("MLOPS_TRAINER_REVISION");

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Boxed: the lake's error is large and most results never carry it.
    #[error(transparent)]
    Lake(Box<mlops_lake::Error>),
    #[error("reading gold rows: {0}")]
    Features(#[from] mlops_features::Error),
    #[error("{0}")]
    Data(String),
    #[error("ONNX Runtime: {0}")]
    Onnx(#[from] mlops_onnx::Error),
    #[error("export check failed: {0}")]
    Parity(String),
    #[error("registry at {url} unreachable after {attempts} attempts ({what}): {source}")]
    RegistryUnreachable {
        url: String,
        attempts: u32,
        what: String,
        #[source]
        source: mlops_registry_client::ClientError,
    },
    #[error("registry refused {what}: {source}")]
    Registry {
        what: String,
        #[source]
        source: mlops_registry_client::ClientError,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("a training task stopped unexpectedly: {0}")]
    Task(String),
}

impl From<mlops_lake::Error> for Error {
    fn from(error: mlops_lake::Error) -> Self {
        Self::Lake(Box::new(error))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
