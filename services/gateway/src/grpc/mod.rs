//! The Open Inference Protocol's gRPC binding, `inference.GRPCInferenceService`
//! (KServe's and Triton's), beside gRPC health and reflection on
//! `GATEWAY_GRPC_ADDR`. It serves what the REST binding serves, through
//! [`crate::serving`]; every call but ServerLive and ServerReady needs an
//! `authorization: Bearer <token>` entry in its metadata.

pub mod tensors;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use mlops_proto::inference as pb;
use mlops_proto::inference::grpc_inference_service_server::{
    GrpcInferenceService, GrpcInferenceServiceServer,
};
use mlops_runtime::Shutdown;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status};

use crate::auth::Authenticator;
use crate::metrics::Protocol;
use crate::monitor::{self, RequestContext};
use crate::serving::{ApiError, EXTENSIONS, OipState, PLATFORM};

pub struct InferenceService {
    state: OipState,
    auth: Option<Arc<Authenticator>>,
}

impl InferenceService {
    pub fn new(state: OipState, auth: Option<Arc<Authenticator>>) -> Self {
        Self { state, auth }
    }

    async fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let Some(auth) = &self.auth else {
            return Ok(());
        };
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Status::unauthenticated(
                    "an authorization: Bearer <token> metadata entry is required (a registry token)",
                )
            })?;
        auth.principal(token).await.map(drop).map_err(status)
    }
}

/// The gRPC code a protocol error maps to (as Triton maps its HTTP ones).
pub fn code(status: StatusCode) -> Code {
    match status {
        StatusCode::BAD_REQUEST => Code::InvalidArgument,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::NOT_FOUND => Code::NotFound,
        StatusCode::PAYLOAD_TOO_LARGE => Code::ResourceExhausted,
        StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
        _ => Code::Internal,
    }
}

fn status(error: ApiError) -> Status {
    Status::new(code(error.status), error.message)
}

/// An empty version field means "the server's choice", as in REST without
/// `/versions/<v>`.
fn version(v: &str) -> Option<&str> {
    (!v.is_empty()).then_some(v)
}

#[tonic::async_trait]
impl GrpcInferenceService for InferenceService {
    async fn server_live(
        &self,
        _: Request<pb::ServerLiveRequest>,
    ) -> Result<Response<pb::ServerLiveResponse>, Status> {
        Ok(Response::new(pb::ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<pb::ServerReadyRequest>,
    ) -> Result<Response<pb::ServerReadyResponse>, Status> {
        Ok(Response::new(pb::ServerReadyResponse {
            ready: self.state.store.is_ready(),
        }))
    }

    async fn model_ready(
        &self,
        request: Request<pb::ModelReadyRequest>,
    ) -> Result<Response<pb::ModelReadyResponse>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        // A model that exists but has nothing loaded is "not ready", not an
        // error; an unknown one is NOT_FOUND.
        let ready = match self
            .state
            .ready_version(&request.name, version(&request.version))
        {
            Ok(_) => true,
            Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => false,
            Err(e) => return Err(status(e)),
        };
        Ok(Response::new(pb::ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        request: Request<pb::ServerMetadataRequest>,
    ) -> Result<Response<pb::ServerMetadataResponse>, Status> {
        self.authorize(&request).await?;
        Ok(Response::new(pb::ServerMetadataResponse {
            name: "mlops-gateway".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: EXTENSIONS.map(String::from).to_vec(),
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<pb::ModelMetadataRequest>,
    ) -> Result<Response<pb::ModelMetadataResponse>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let described = self
            .state
            .describe(&request.name, version(&request.version))
            .map_err(status)?;
        let tensor =
            |s: &mlops_onnx::model::TensorSpec| pb::model_metadata_response::TensorMetadata {
                name: s.name.clone(),
                datatype: s.datatype.name().into(),
                shape: s.shape.clone(),
            };
        Ok(Response::new(pb::ModelMetadataResponse {
            name: request.name,
            versions: described.versions,
            platform: PLATFORM.into(),
            inputs: described.inputs.iter().map(tensor).collect(),
            outputs: described.outputs.iter().map(tensor).collect(),
        }))
    }

    async fn model_infer(
        &self,
        request: Request<pb::ModelInferRequest>,
    ) -> Result<Response<pb::ModelInferResponse>, Status> {
        let started = Instant::now();
        self.authorize(&request).await?;
        let request_id = request
            .metadata()
            .get(crate::monitor::REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let request = request.into_inner();
        let model = request.model_name.clone();
        let wanted = version(&request.model_version).map(str::to_string);
        let answer = self.infer(request, request_id.as_deref());
        let (served, code) = match &answer {
            Ok(response) => (response.model_version.clone(), Code::Ok),
            Err(e) => (wanted.unwrap_or_default(), e.code()),
        };
        self.state.metrics.request(
            &model,
            &served,
            Protocol::Grpc,
            code_name(code),
            started.elapsed(),
        );
        answer.map(Response::new)
    }

    async fn repository_index(
        &self,
        request: Request<pb::RepositoryIndexRequest>,
    ) -> Result<Response<pb::RepositoryIndexResponse>, Status> {
        self.authorize(&request).await?;
        let models = self
            .state
            .index(request.into_inner().ready)
            .into_iter()
            .map(|row| pb::repository_index_response::ModelIndex {
                name: row.name,
                version: row.version,
                state: row.state.into(),
                reason: row.reason,
            })
            .collect();
        Ok(Response::new(pb::RepositoryIndexResponse { models }))
    }

    async fn repository_model_load(
        &self,
        request: Request<pb::RepositoryModelLoadRequest>,
    ) -> Result<Response<pb::RepositoryModelLoadResponse>, Status> {
        self.authorize(&request).await?;
        self.state
            .load(&request.into_inner().model_name)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RepositoryModelLoadResponse {}))
    }

    async fn repository_model_unload(
        &self,
        request: Request<pb::RepositoryModelUnloadRequest>,
    ) -> Result<Response<pb::RepositoryModelUnloadResponse>, Status> {
        self.authorize(&request).await?;
        self.state
            .unload(&request.into_inner().model_name)
            .map_err(status)?;
        Ok(Response::new(pb::RepositoryModelUnloadResponse {}))
    }
}

impl InferenceService {
    fn infer(
        &self,
        request: pb::ModelInferRequest,
        request_id_header: Option<&str>,
    ) -> Result<pb::ModelInferResponse, Status> {
        // An unknown model is NOT_FOUND before the inputs are looked at.
        self.state
            .ready_version(&request.model_name, version(&request.model_version))
            .map_err(status)?;
        let model = request.model_name.clone();
        let wanted = request.model_version.clone();
        let id = request.id.clone();
        let requested: Vec<String> = request.outputs.iter().map(|o| o.name.clone()).collect();
        let inputs = tensors::decode_inputs(request).map_err(Status::invalid_argument)?;
        let request_id = monitor::request_id(Some(&id), request_id_header);
        let context = RequestContext {
            request_id: &request_id,
            protocol: Protocol::Grpc,
            subscribers: &[],
            features_version: 0,
        };
        let (loaded, outputs) = self
            .state
            .infer(&model, version(&wanted), inputs, &requested, &context)
            .map_err(status)?;
        let (outputs, raw_output_contents) = tensors::encode_outputs(&outputs);
        Ok(pb::ModelInferResponse {
            model_name: model,
            model_version: loaded.version.to_string(),
            id,
            outputs,
            raw_output_contents,
            ..Default::default()
        })
    }
}

/// The code's name as gRPC spells it (`OK`, `INVALID_ARGUMENT`), for metrics.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::Unauthenticated => "UNAUTHENTICATED",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::NotFound => "NOT_FOUND",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::Unavailable => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

/// Serves the binding, health and reflection on `listener` until shutdown.
/// Health reports `inference.GRPCInferenceService` SERVING while every
/// followed model has a champion loaded, as `/v2/health/ready` does.
pub async fn serve(
    listener: TcpListener,
    service: InferenceService,
    max_message_bytes: usize,
    shutdown: Shutdown,
) -> Result<(), String> {
    let (health, health_service) = tonic_health::server::health_reporter();
    let v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mlops_proto::INFERENCE_FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| format!("reflection service: {e}"))?;
    let v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mlops_proto::INFERENCE_FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| format!("reflection service: {e}"))?;

    let store = service.state.store.clone();
    let watch = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            type Server = GrpcInferenceServiceServer<InferenceService>;
            loop {
                if store.is_ready() && !shutdown.is_triggered() {
                    health.set_serving::<Server>().await;
                } else {
                    health.set_not_serving::<Server>().await;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.wait() => {
                        health.set_not_serving::<Server>().await;
                        return;
                    }
                }
            }
        })
    };
    let inference = GrpcInferenceServiceServer::new(service)
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes);
    // No Nagle delay: a response split in segments would wait for the
    // client's delayed ACK.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let served = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(v1)
        .add_service(v1alpha)
        .add_service(inference)
        .serve_with_incoming_shutdown(incoming, {
            let shutdown = shutdown.clone();
            async move { shutdown.wait().await }
        })
        .await
        .map_err(|e| format!("the gRPC server failed: {e}"));
    shutdown.trigger();
    let _ = watch.await;
    served
}
