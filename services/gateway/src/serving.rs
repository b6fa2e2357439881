//! What the REST and gRPC bindings of the Open Inference Protocol share:
//! model lookups, inference, and the model repository extension. Each
//! binding only decodes its wire format, calls these, and encodes the answer.

use std::sync::Arc;

use axum::http::StatusCode;
use mlops_onnx::model::{NamedTensor, TensorSpec};

use crate::follow::{Follower, Refreshed};
use crate::metrics::GatewayMetrics;
use crate::models::{IndexEntry, LoadedVersion, Lookup, ModelStore};
use crate::monitor::{Monitor, RequestContext};

/// Extensions this server implements, as server metadata lists them.
pub const EXTENSIONS: [&str; 2] = ["binary_tensor_data", "model_repository"];

/// The platform name model metadata reports (Triton's name for ONNX Runtime).
pub const PLATFORM: &str = "onnxruntime_onnx";

/// An error with the HTTP status the protocol's servers use for it; the
/// gRPC binding maps the status to a code.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<Lookup> for ApiError {
    fn from(lookup: Lookup) -> Self {
        let status = match lookup {
            Lookup::UnknownModel(_) | Lookup::UnknownVersion { .. } => StatusCode::NOT_FOUND,
            Lookup::NotReady { .. } => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self::new(status, lookup.to_string())
    }
}

#[derive(Clone)]
pub struct OipState {
    pub store: Arc<ModelStore>,
    pub follower: Arc<Follower>,
    pub metrics: GatewayMetrics,
    pub monitor: Arc<Monitor>,
    pub max_request_bytes: usize,
    /// `GATEWAY_MODELS`: followed even while nothing is loaded.
    pub configured: Arc<Vec<String>>,
}

/// Model metadata, whatever the binding.
pub struct ModelDescription {
    /// Loaded versions, newest first.
    pub versions: Vec<String>,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
}

impl OipState {
    pub fn describe(
        &self,
        model: &str,
        version: Option<&str>,
    ) -> Result<ModelDescription, ApiError> {
        let loaded = self.store.resolve(model, version)?;
        Ok(ModelDescription {
            versions: self
                .store
                .versions(model)
                .iter()
                .map(i64::to_string)
                .collect(),
            inputs: loaded.model.inputs().to_vec(),
            outputs: loaded.model.outputs().cloned().collect(),
        })
    }

    /// The version that would serve `model` (and `version`), if one is ready.
    pub fn ready_version(&self, model: &str, version: Option<&str>) -> Result<i64, ApiError> {
        Ok(self.store.resolve(model, version)?.version)
    }

    /// Runs `inputs` through the version `model` (and `version`) resolves
    /// to; `requested` names the outputs wanted (all when empty). The
    /// version is returned with the outputs: a swap can happen between two
    /// calls, never during one. The predictions are monitored as `request`'s.
    pub fn infer(
        &self,
        model: &str,
        version: Option<&str>,
        inputs: Vec<NamedTensor>,
        requested: &[String],
        request: &RequestContext<'_>,
    ) -> Result<(Arc<LoadedVersion>, Vec<NamedTensor>), ApiError> {
        let loaded = self.store.resolve(model, version)?;
        let watched = self.monitor.watched_input(&loaded, &inputs);
        let outputs = loaded.model.run(inputs, requested).map_err(|e| match e {
            mlops_onnx::Error::Input(message) => ApiError::bad_request(message),
            other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        })?;
        if let Some((width, values)) = watched
            && let Some(scores) = Monitor::scores_of(&loaded, &outputs)
        {
            self.monitor
                .observe(&loaded, width, &values, &scores, request);
        }
        Ok((loaded, outputs))
    }

    /// The repository index; `only_ready` keeps the models that can serve.
    pub fn index(&self, only_ready: bool) -> Vec<IndexEntry> {
        self.store
            .index()
            .into_iter()
            .filter(|row| !only_ready || row.state == "READY")
            .collect()
    }

    /// The repository extension's `load`: follows `model` again and loads
    /// what its aliases point at now.
    pub async fn load(&self, model: &str) -> Result<(), ApiError> {
        if !crate::config::valid_model_name(model) {
            return Err(ApiError::bad_request(format!(
                "{model:?} is not a model name"
            )));
        }
        self.store.follow(model);
        let outcomes = self.follower.refresh(model, true).await.map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the registry cannot be reached: {e}"),
            )
        })?;
        if self.store.resolve(model, None).is_ok() {
            return Ok(());
        }
        let failed = outcomes
            .iter()
            .any(|(_, o)| matches!(o, Refreshed::Failed { .. }));
        let reason = self
            .store
            .index()
            .into_iter()
            .find(|row| row.name == model)
            .map(|row| row.reason)
            .unwrap_or_default();
        if !failed && !self.configured.iter().any(|m| m == model) {
            // Nothing to serve and not configured: not a model of this server.
            self.store.forget(model);
        }
        if failed {
            Err(ApiError::bad_request(format!(
                "failed to load {model:?}: {reason}"
            )))
        } else {
            Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("model {model:?} has no @champion or @challenger in the registry"),
            ))
        }
    }

    /// The repository extension's `unload`.
    pub fn unload(&self, model: &str) -> Result<(), ApiError> {
        if self.store.unload(model) {
            Ok(())
        } else {
            Err(Lookup::UnknownModel(model.to_string()).into())
        }
    }
}
