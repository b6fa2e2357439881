//! The Open Inference Protocol (V2) over REST, under `/v2`: health, server
//! and model metadata, model readiness, inference (JSON tensors and the
//! binary tensor extension) and the model repository extension, with and
//! without `/versions/<v>`. Errors are `{"error": "..."}` with 400 (bad
//! request), 401 (no valid bearer token), 404 (unknown model, version or
//! path) or 503 (not loaded).

pub mod codec;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::auth::Authenticator;
use crate::metrics::Protocol;
use crate::monitor::{self, REQUEST_ID, RequestContext};
pub use crate::serving::{ApiError, OipState};
use crate::serving::{EXTENSIONS, PLATFORM};

/// The binary tensor extension's header: the JSON part's length.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({ "error": self.message }))).into_response()
    }
}

/// The protocol's routes; with `auth`, every one but health needs a token.
pub fn router(state: OipState, auth: Option<Arc<Authenticator>>) -> Router {
    let health = Router::new()
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .with_state(state.clone());
    let protected = Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/", get(server_metadata))
        .route("/v2/models/{model}", get(model_metadata))
        .route(
            "/v2/models/{model}/versions/{version}",
            get(model_metadata_at),
        )
        .route("/v2/models/{model}/ready", get(model_ready))
        .route(
            "/v2/models/{model}/versions/{version}/ready",
            get(model_ready_at),
        )
        .route("/v2/models/{model}/infer", post(infer))
        .route(
            "/v2/models/{model}/versions/{version}/infer",
            post(infer_at),
        )
        .route("/v2/repository/index", post(repository_index))
        .route("/v2/repository/models/{model}/load", post(repository_load))
        .route(
            "/v2/repository/models/{model}/unload",
            post(repository_unload),
        )
        .with_state(state);
    let protected = crate::auth::protect(protected, auth);
    health.merge(protected)
}

async fn server_metadata() -> impl IntoResponse {
    axum::Json(json!({
        "name": "mlops-gateway",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": EXTENSIONS,
    }))
}

async fn live() -> impl IntoResponse {
    axum::Json(json!({ "live": true }))
}

async fn ready(State(state): State<OipState>) -> impl IntoResponse {
    let ready = state.store.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(json!({ "ready": ready })))
}

async fn model_metadata(
    State(state): State<OipState>,
    Path(model): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    metadata(&state, &model, None)
}

async fn model_metadata_at(
    State(state): State<OipState>,
    Path((model, version)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    metadata(&state, &model, Some(&version))
}

fn metadata(
    state: &OipState,
    model: &str,
    version: Option<&str>,
) -> Result<axum::Json<Value>, ApiError> {
    let described = state.describe(model, version)?;
    let tensor = |s: &mlops_onnx::model::TensorSpec| json!({ "name": s.name, "datatype": s.datatype.name(), "shape": s.shape });
    Ok(axum::Json(json!({
        "name": model,
        "versions": described.versions,
        "platform": PLATFORM,
        "inputs": described.inputs.iter().map(tensor).collect::<Vec<_>>(),
        "outputs": described.outputs.iter().map(tensor).collect::<Vec<_>>(),
    })))
}

async fn model_ready(
    State(state): State<OipState>,
    Path(model): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    readiness(&state, &model, None)
}

async fn model_ready_at(
    State(state): State<OipState>,
    Path((model, version)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    readiness(&state, &model, Some(&version))
}

fn readiness(
    state: &OipState,
    model: &str,
    version: Option<&str>,
) -> Result<axum::Json<Value>, ApiError> {
    let served = state.ready_version(model, version)?;
    Ok(axum::Json(json!({
        "name": model,
        "version": served.to_string(),
        "ready": true,
    })))
}

async fn infer(
    State(state): State<OipState>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    run_inference(state, model, None, headers, body).await
}

async fn infer_at(
    State(state): State<OipState>,
    Path((model, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    run_inference(state, model, Some(version), headers, body).await
}

async fn run_inference(
    state: OipState,
    model: String,
    version: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let (served_version, response) =
        match infer_response(&state, &model, version.as_deref(), &headers, body).await {
            Ok((served, response)) => (served, response),
            Err(error) => (version.unwrap_or_default(), error.into_response()),
        };
    state.metrics.request(
        &model,
        &served_version,
        Protocol::Rest,
        response.status().as_str(),
        started.elapsed(),
    );
    response
}

async fn infer_response(
    state: &OipState,
    model: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(String, Response), ApiError> {
    let header_length = match headers.get(HEADER_LENGTH) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request("Inference-Header-Content-Length must be a byte count")
                })?,
        ),
    };
    // An unknown model is a 404 before the body is read.
    state.ready_version(model, version)?;
    let body: Bytes = axum::body::to_bytes(body, state.max_request_bytes)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the request body is larger than {} bytes (GATEWAY_MAX_REQUEST_BYTES)",
                    state.max_request_bytes
                ),
            )
        })?;
    let request = codec::decode_request(&body, header_length).map_err(ApiError::bad_request)?;
    let requested: Vec<String> = request.outputs.iter().map(|(n, _)| n.clone()).collect();
    let request_id = monitor::request_id(
        request.id.as_deref(),
        headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()),
    );
    let context = RequestContext {
        request_id: &request_id,
        protocol: Protocol::Rest,
        subscribers: &[],
        features_version: 0,
    };
    let (loaded, outputs) = state.infer(model, version, request.inputs, &requested, &context)?;
    let version = loaded.version.to_string();
    let encoded =
        codec::encode_response(model, &version, request.id.as_deref(), &outputs, |name| {
            request
                .outputs
                .iter()
                .find(|(n, _)| n == name)
                .map_or(request.binary_by_default, |(_, binary)| *binary)
        });
    let mut response = Response::new(Body::from(encoded.body));
    let content_type = match encoded.header_length {
        Some(length) => {
            response
                .headers_mut()
                .insert(HEADER_LENGTH, HeaderValue::from(length));
            "application/octet-stream"
        }
        None => "application/json",
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok((version, response))
}

async fn repository_index(
    State(state): State<OipState>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    // The body is optional: `{"ready": true}` lists only ready models.
    let only_ready = if body.is_empty() {
        false
    } else {
        let request: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the index request is not JSON: {e}")))?;
        request
            .get("ready")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let rows: Vec<Value> = state
        .index(only_ready)
        .into_iter()
        .map(|row| {
            json!({
                "name": row.name,
                "version": row.version,
                "state": row.state,
                "reason": row.reason,
            })
        })
        .collect();
    Ok(axum::Json(Value::Array(rows)))
}

async fn repository_load(
    State(state): State<OipState>,
    Path(model): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    state.load(&model).await?;
    Ok(axum::Json(json!({})))
}

async fn repository_unload(
    State(state): State<OipState>,
    Path(model): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    state.unload(&model)?;
    Ok(axum::Json(json!({})))
}
