//! MLflow's REST API over the registry, under `/api/2.0/mlflow/` on
//! `REGISTRY_HTTP_ADDR`, for teams who keep `mlflow.MlflowClient` and
//! `models:/name@alias`.
//!
//! Every handler builds the gRPC request and calls the same
//! [`RegistryService`] method, with the caller's bearer token in its
//! metadata: validation, roles, the audit trail and the outbox events are
//! the gRPC API's own, and nothing is stored twice. What goes over the wire
//! follows MLflow: GET parameters in the query string, JSON bodies
//! otherwise (DELETE included), versions as strings, times in epoch
//! milliseconds, `{}` for an empty success and errors as
//! `{"error_code": …, "message": …}`. The README's "MLflow" section maps
//! MLflow's concepts onto the registry's.

mod filter;
mod json;
mod models;
mod versions;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde_json::{Map, Value, json};

use crate::service::RegistryService;

/// Largest JSON body accepted.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The facade's routes, over `service`.
pub fn router(service: RegistryService) -> Router {
    let api = Router::new()
        .route("/registered-models/create", post(models::create))
        .route("/registered-models/get", get(models::get))
        .route("/registered-models/search", get(models::search))
        .route("/registered-models/update", patch(models::update))
        .route(
            "/registered-models/delete",
            axum::routing::delete(models::delete),
        )
        .route("/registered-models/set-tag", post(models::set_tag))
        .route(
            "/registered-models/delete-tag",
            axum::routing::delete(models::delete_tag),
        )
        .route(
            "/registered-models/alias",
            post(models::set_alias)
                .delete(models::delete_alias)
                .get(models::get_by_alias),
        )
        .route(
            "/registered-models/get-latest-versions",
            post(models::latest_versions).get(models::latest_versions),
        )
        .route("/model-versions/get", get(versions::get))
        .route("/model-versions/search", get(versions::search))
        .route("/model-versions/update", patch(versions::update))
        .route("/model-versions/set-tag", post(versions::set_tag))
        .route(
            "/model-versions/delete-tag",
            axum::routing::delete(versions::delete_tag),
        )
        .route(
            "/model-versions/transition-stage",
            post(versions::transition_stage),
        );
    Router::new()
        .nest("/api/2.0/mlflow", api)
        .fallback(|request: Request| async move {
            MlflowError::new(
                StatusCode::NOT_FOUND,
                "ENDPOINT_NOT_FOUND",
                format!(
                    "{} {} is not an endpoint of the registry's MLflow API",
                    request.method(),
                    request.uri().path()
                ),
            )
        })
        .with_state(Arc::new(service))
}

/// An MLflow error: its HTTP status, `error_code` and message.
#[derive(Debug)]
pub struct MlflowError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl MlflowError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", message)
    }
}

impl From<tonic::Status> for MlflowError {
    /// gRPC codes onto MLflow's codes and statuses. MLflow's client retries
    /// 5xx for minutes, so only what may succeed later is a 5xx.
    fn from(status: tonic::Status) -> Self {
        use tonic::Code;
        let (http, code) = match status.code() {
            Code::NotFound => (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST"),
            Code::AlreadyExists => (StatusCode::BAD_REQUEST, "RESOURCE_ALREADY_EXISTS"),
            Code::InvalidArgument | Code::OutOfRange => {
                (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE")
            }
            Code::FailedPrecondition => (StatusCode::BAD_REQUEST, "INVALID_STATE"),
            Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            Code::PermissionDenied => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
            Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "TEMPORARILY_UNAVAILABLE"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR"),
        };
        Self::new(http, code, status.message())
    }
}

impl IntoResponse for MlflowError {
    fn into_response(self) -> Response {
        let body = json!({"error_code": self.code, "message": self.message});
        (self.status, axum::Json(body)).into_response()
    }
}

pub type Reply = Result<axum::Json<Value>, MlflowError>;

/// One MLflow call: the service, the caller's headers and its parameters
/// (the query string and the JSON body, merged; a repeated query
/// parameter becomes a list).
pub struct Call {
    service: Arc<RegistryService>,
    headers: HeaderMap,
    params: Map<String, Value>,
}

impl FromRequest<Arc<RegistryService>> for Call {
    type Rejection = MlflowError;

    async fn from_request(
        request: Request,
        state: &Arc<RegistryService>,
    ) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let mut params = Map::new();
        for (key, value) in url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        {
            let value = Value::String(value.into_owned());
            match params.get_mut(key.as_ref()) {
                Some(Value::Array(list)) => list.push(value),
                Some(first) => *first = Value::Array(vec![first.take(), value]),
                None => {
                    params.insert(key.into_owned(), value);
                }
            }
        }
        let body: Bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|e| MlflowError::invalid(format!("reading the request body: {e}")))?;
        if !body.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(fields)) => params.extend(fields),
                Ok(_) => {
                    return Err(MlflowError::invalid(
                        "the request body must be a JSON object",
                    ));
                }
                Err(e) => {
                    return Err(MlflowError::new(
                        StatusCode::BAD_REQUEST,
                        "MALFORMED_REQUEST",
                        format!("the request body is not valid JSON: {e}"),
                    ));
                }
            }
        }
        Ok(Self {
            service: state.clone(),
            headers: parts.headers,
            params,
        })
    }
}

impl Call {
    /// `message` as a gRPC request carrying the caller's credentials and
    /// trace context.
    fn grpc<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        for name in [header::AUTHORIZATION.as_str(), "traceparent", "tracestate"] {
            if let Some(value) = self
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
            {
                request.metadata_mut().insert(name, value);
            }
        }
        request
    }

    fn service(&self) -> &RegistryService {
        &self.service
    }

    /// A string parameter; numbers are accepted as their text.
    fn optional(&self, key: &str) -> Result<Option<String>, MlflowError> {
        match self.params.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(Value::Array(_)) => Err(MlflowError::invalid(format!(
                "parameter '{key}' was given more than once"
            ))),
            Some(Value::Object(_)) => Err(MlflowError::invalid(format!(
                "parameter '{key}' must be a string, not an object"
            ))),
        }
    }

    fn required(&self, key: &str) -> Result<String, MlflowError> {
        self.optional(key)?
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                MlflowError::invalid(format!("Missing value for required parameter '{key}'"))
            })
    }

    /// A model version number, which MLflow sends as a string.
    fn version(&self, key: &str) -> Result<i64, MlflowError> {
        let raw = self.required(key)?;
        raw.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
            MlflowError::invalid(format!(
                "parameter '{key}' must be a positive whole number, got {raw:?}"
            ))
        })
    }

    /// `max_results`, capped at what one registry page holds: the client
    /// follows `next_page_token` for the rest.
    fn page_size(&self, default: i32) -> Result<i32, MlflowError> {
        let Some(raw) = self.optional("max_results")? else {
            return Ok(default.min(PAGE_CAP));
        };
        let n: i64 = raw.parse().map_err(|_| {
            MlflowError::invalid(format!("max_results must be a whole number, got {raw:?}"))
        })?;
        if n < 1 {
            return Err(MlflowError::invalid(format!(
                "max_results must be at least 1, got {n}"
            )));
        }
        Ok(n.min(i64::from(PAGE_CAP)) as i32)
    }

    /// A list parameter: repeated in the query, or a JSON array.
    fn list(&self, key: &str) -> Vec<String> {
        match self.params.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    }

    /// MLflow's `tags: [{"key": …, "value": …}]`.
    fn tags(&self) -> Result<std::collections::HashMap<String, String>, MlflowError> {
        let mut tags = std::collections::HashMap::new();
        let Some(value) = self.params.get("tags") else {
            return Ok(tags);
        };
        let items = value.as_array().ok_or_else(|| {
            MlflowError::invalid("tags must be a list of {\"key\", \"value\"} objects")
        })?;
        for item in items {
            let key = item.get("key").and_then(Value::as_str);
            let value = item.get("value").and_then(Value::as_str).unwrap_or("");
            let Some(key) = key else {
                return Err(MlflowError::invalid("every tag needs a string \"key\""));
            };
            tags.insert(key.to_owned(), value.to_owned());
        }
        Ok(tags)
    }
}

/// The largest page the registry's searches return.
const PAGE_CAP: i32 = 1000;

/// MLflow's empty success.
fn empty() -> Reply {
    Ok(axum::Json(json!({})))
}
