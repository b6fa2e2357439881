//! The `mlops.registry.v1.ModelRegistry` gRPC service.
//!
//! This module holds the service, the one `ModelRegistry` impl tonic needs,
//! and what every call shares (authentication, the role check, tracing and
//! metrics); each RPC's body lives in the module of its group, which mirror
//! the store's modules.

mod aliases;
mod artifacts;
mod audit;
mod models;
mod runs;
mod tokens;
mod versions;

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use futures::Stream;
use mlops_proto::registry::v1 as pb;
use mlops_proto::registry::v1::model_registry_server::ModelRegistry;
use secrecy::ExposeSecret;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use crate::artifacts::ArtifactStore;
use crate::auth::{self, BOOTSTRAP_PRINCIPAL, BootstrapToken, Principal, Role};
use crate::error::{Error, Result};
use crate::metrics::RegistryMetrics;
use crate::store::Store;

/// Download chunk size; well under gRPC's default 4 MiB message limit.
pub const DOWNLOAD_CHUNK: usize = 1024 * 1024;

#[derive(Clone)]
pub struct RegistryService {
    store: Store,
    artifacts: ArtifactStore,
    bootstrap: Option<BootstrapToken>,
    protected_aliases: HashSet<String>,
    max_artifact_bytes: u64,
    metrics: RegistryMetrics,
}

impl RegistryService {
    pub fn new(
        store: Store,
        artifacts: ArtifactStore,
        bootstrap: Option<BootstrapToken>,
        protected_aliases: HashSet<String>,
        max_artifact_bytes: u64,
        metrics: RegistryMetrics,
    ) -> Self {
        Self {
            store,
            artifacts,
            bootstrap,
            protected_aliases,
            max_artifact_bytes,
            metrics,
        }
    }

    pub async fn ping_artifacts(&self) -> Result<()> {
        self.artifacts.ping().await
    }

    async fn authenticate(&self, metadata: &MetadataMap) -> Result<Principal> {
        let secret = auth::bearer(metadata)?;
        let hash = auth::hash_secret(secret.expose_secret());
        if self.bootstrap.as_ref().is_some_and(|b| b.matches(&hash)) {
            return Ok(Principal {
                name: BOOTSTRAP_PRINCIPAL.to_string(),
                role: Role::Admin,
            });
        }
        self.store
            .principal_for(&hash)
            .await?
            .ok_or_else(|| Error::Unauthenticated("unknown or revoked token".into()))
    }

    /// Runs one call: trace context from the metadata, authentication, the
    /// role check, then `body`; records the call's latency and code.
    async fn call<T, F, Fut>(
        &self,
        method: &'static str,
        metadata: &MetadataMap,
        needed: Role,
        body: F,
    ) -> Result<Response<T>, Status>
    where
        F: FnOnce(Principal) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let started = Instant::now();
        let span = tracing::info_span!(
            "registry.call",
            rpc.method = method,
            principal = tracing::field::Empty,
            model = tracing::field::Empty
        );
        mlops_runtime::telemetry::continue_trace_from(&span, |key| {
            metadata.get(key).and_then(|v| v.to_str().ok())
        });
        let outcome = async {
            let principal = self.authenticate(metadata).await?;
            tracing::Span::current().record("principal", principal.name.as_str());
            principal.require(needed, method)?;
            body(principal).await
        }
        .instrument(span)
        .await;
        let code = match &outcome {
            Ok(_) => "ok",
            Err(e) => e.code().as_str(),
        };
        self.metrics
            .observe(method, code, started.elapsed().as_secs_f64());
        outcome.map(Response::new).map_err(Status::from)
    }
}

type DownloadStream =
    Pin<Box<dyn Stream<Item = Result<pb::DownloadArtifactResponse, Status>> + Send>>;

// Each RPC is a free function in its group's module: as inherent methods
// they would share the trait methods' names and read like recursion here.
#[tonic::async_trait]
impl ModelRegistry for RegistryService {
    async fn create_registered_model(
        &self,
        request: Request<pb::CreateRegisteredModelRequest>,
    ) -> Result<Response<pb::RegisteredModel>, Status> {
        models::create(self, request).await
    }

    async fn get_registered_model(
        &self,
        request: Request<pb::GetRegisteredModelRequest>,
    ) -> Result<Response<pb::RegisteredModel>, Status> {
        models::get(self, request).await
    }

    async fn update_registered_model(
        &self,
        request: Request<pb::UpdateRegisteredModelRequest>,
    ) -> Result<Response<pb::RegisteredModel>, Status> {
        models::update(self, request).await
    }

    async fn archive_registered_model(
        &self,
        request: Request<pb::ArchiveRegisteredModelRequest>,
    ) -> Result<Response<pb::RegisteredModel>, Status> {
        models::archive(self, request).await
    }

    async fn search_registered_models(
        &self,
        request: Request<pb::SearchRegisteredModelsRequest>,
    ) -> Result<Response<pb::SearchRegisteredModelsResponse>, Status> {
        models::search(self, request).await
    }

    async fn create_model_version(
        &self,
        request: Request<pb::CreateModelVersionRequest>,
    ) -> Result<Response<pb::ModelVersion>, Status> {
        versions::create(self, request).await
    }

    async fn get_model_version(
        &self,
        request: Request<pb::GetModelVersionRequest>,
    ) -> Result<Response<pb::ModelVersion>, Status> {
        versions::get(self, request).await
    }

    async fn update_model_version(
        &self,
        request: Request<pb::UpdateModelVersionRequest>,
    ) -> Result<Response<pb::ModelVersion>, Status> {
        versions::update(self, request).await
    }

    async fn search_model_versions(
        &self,
        request: Request<pb::SearchModelVersionsRequest>,
    ) -> Result<Response<pb::SearchModelVersionsResponse>, Status> {
        versions::search(self, request).await
    }

    async fn upload_artifact(
        &self,
        request: Request<Streaming<pb::UploadArtifactRequest>>,
    ) -> Result<Response<pb::ModelVersion>, Status> {
        artifacts::upload(self, request).await
    }

    type DownloadArtifactStream = DownloadStream;

    async fn download_artifact(
        &self,
        request: Request<pb::DownloadArtifactRequest>,
    ) -> Result<Response<Self::DownloadArtifactStream>, Status> {
        artifacts::download(self, request).await
    }

    async fn create_run(
        &self,
        request: Request<pb::CreateRunRequest>,
    ) -> Result<Response<pb::Run>, Status> {
        runs::create(self, request).await
    }

    async fn get_run(
        &self,
        request: Request<pb::GetRunRequest>,
    ) -> Result<Response<pb::Run>, Status> {
        runs::get(self, request).await
    }

    async fn update_run(
        &self,
        request: Request<pb::UpdateRunRequest>,
    ) -> Result<Response<pb::Run>, Status> {
        runs::update(self, request).await
    }

    async fn delete_run(
        &self,
        request: Request<pb::DeleteRunRequest>,
    ) -> Result<Response<pb::DeleteRunResponse>, Status> {
        runs::delete(self, request).await
    }

    async fn set_alias(
        &self,
        request: Request<pb::SetAliasRequest>,
    ) -> Result<Response<pb::Alias>, Status> {
        aliases::set(self, request).await
    }

    async fn delete_alias(
        &self,
        request: Request<pb::DeleteAliasRequest>,
    ) -> Result<Response<pb::DeleteAliasResponse>, Status> {
        aliases::delete(self, request).await
    }

    async fn get_model_version_by_alias(
        &self,
        request: Request<pb::GetModelVersionByAliasRequest>,
    ) -> Result<Response<pb::ModelVersion>, Status> {
        aliases::resolve(self, request).await
    }

    async fn list_alias_history(
        &self,
        request: Request<pb::ListAliasHistoryRequest>,
    ) -> Result<Response<pb::ListAliasHistoryResponse>, Status> {
        aliases::history(self, request).await
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        audit::list(self, request).await
    }

    async fn create_api_token(
        &self,
        request: Request<pb::CreateApiTokenRequest>,
    ) -> Result<Response<pb::CreateApiTokenResponse>, Status> {
        tokens::create(self, request).await
    }

    async fn list_api_tokens(
        &self,
        request: Request<pb::ListApiTokensRequest>,
    ) -> Result<Response<pb::ListApiTokensResponse>, Status> {
        tokens::list(self, request).await
    }

    async fn revoke_api_token(
        &self,
        request: Request<pb::RevokeApiTokenRequest>,
    ) -> Result<Response<pb::ApiToken>, Status> {
        tokens::revoke(self, request).await
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        tokens::who_am_i(self, request).await
    }
}
