//! The model registry: registered models, versions with lineage, artifacts
//! streamed through the service, aliases with history, an audit log, API
//! tokens with roles, and change events through a transactional outbox;
//! over gRPC and, for MLflow's client, MLflow's REST API.

pub mod app;
pub mod artifacts;
pub mod auth;
pub mod config;
pub mod error;
pub mod filter;
pub mod metrics;
pub mod mlflow;
pub mod relay;
pub mod service;
pub mod store;
pub mod validate;

pub use app::App;
pub use config::RegistryConfig;
pub use error::{Error, Result};
