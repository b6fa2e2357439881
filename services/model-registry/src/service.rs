//! The `mlops.registry.v1.ModelRegistry` gRPC service.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use mlops_proto::registry::v1 as pb;
use mlops_proto::registry::v1::model_registry_server::ModelRegistry;
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use crate::artifacts::ArtifactStore;
use crate::auth::{self, BOOTSTRAP_PRINCIPAL, BootstrapToken, Principal, Role};
use crate::error::{Error, Result};
use crate::metrics::RegistryMetrics;
use crate::store::{Store, UploadTarget, micros_of};
use crate::validate;

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

    /// Alias changes on protected aliases need the approver role.
    fn require_alias_role(&self, principal: &Principal, alias: &str, action: &str) -> Result<()> {
        if self.protected_aliases.contains(alias) {
            principal.require(
                Role::Approver,
                &format!("{action} protected alias {alias:?}"),
            )?;
        }
        Ok(())
    }
}

type DownloadStream =
    Pin<Box<dyn Stream<Item = Result<pb::DownloadArtifactResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ModelRegistry for RegistryService {
    async fn create_registered_model(
        &self,
        request: Request<pb::CreateRegisteredModelRequest>,
    ) -> Result<Response<pb::RegisteredModel>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.call(
            "CreateRegisteredModel",
            &metadata,
            Role::Writer,
            |p| async move { self.store.create_model(&p, req).await },
        )
        .await
    }

    async fn get_registered_model(
        &self,
        request: Request<pb::GetRegisteredModelRequest>,
    ) -> Result<Response<pb::RegisteredModel>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.call(
            "GetRegisteredModel",
            &metadata,
            Role::Reader,
            |_| async move {
                validate::name("name", &req.name)?;
                self.store.get_model(&req.name).await
            },
        )
        .await
    }

    async fn update_registered_model(
        &self,
        request: Request<pb::UpdateRegisteredModelRequest>,
    ) -> Result<Response<pb::RegisteredModel>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.call(
            "UpdateRegisteredModel",
            &metadata,
            Role::Writer,
            |p| async move {
                validate::name("name", &req.name)?;
                self.store.update_model(&p, req).await
            },
        )
        .await
    }

    async fn archive_registered_model(
        &self,
        request: Request<pb::ArchiveRegisteredModelRequest>,
    ) -> Result<Response<pb::RegisteredModel>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.call(
            "ArchiveRegisteredModel",
            &metadata,
            Role::Writer,
            |p| async move {
                validate::name("name", &req.name)?;
                self.store.archive_model(&p, &req.name).await
            },
        )
        .await
    }

    async fn search_registered_models(
        &self,
        request: Request<pb::SearchRegisteredModelsRequest>,
    ) -> Result<Response<pb::SearchRegisteredModelsResponse>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.call(
            "SearchRegisteredModels",
            &metadata,
            Role::Reader,
            |_| async move { self.store.search_models(&req).await },
        )
        .await
    }

    async fn create_model_version(
        &self,
        request: Request<pb::CreateModelVersionRequest>,
    ) -> Result<Response<pb::ModelVersion>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.call(
            "CreateModelVersion",
            &metadata,
            Role::Writer,
            |p| async move { self.store.create_version(&p, req).await },
        )
        .await
    }

    async fn get_model_version(
        &self,
        request: Request<pb::GetModelVersionRequest>,
    ) -> Result<Response<pb::ModelVersion>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.call("GetModelVersion", &metadata, Role::Reader, |_| async move {
            validate::name("model_name", &req.model_name)?;
            self.store.get_version(&req.model_name, req.version).await
        })
        .await
    }

    async fn search_model_versions(
        &self,
        request: Request<pb::SearchModelVersionsRequest>,
    ) -> Result<Response<pb::SearchModelVersionsResponse>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.call(
            "SearchModelVersions",
            &metadata,
            Role::Reader,
            |_| async move { self.store.search_versions(&req).await },
        )
        .await
    }

    async fn upload_artifact(
        &self,
        request: Request<Streaming<pb::UploadArtifactRequest>>,
    ) -> Result<Response<pb::ModelVersion>, Status> {
        let (metadata, _, stream) = request.into_parts();
        self.call("UploadArtifact", &metadata, Role::Writer, |p| async move {
            // The upload runs in its own task: if the client goes away and
            // this call is dropped, the task still records the failure and
            // cleans up the partial object.
            let service = self.clone();
            tokio::spawn(async move { service.receive_artifact(p, stream).await }.in_current_span())
                .await
                .map_err(|e| Error::Internal(format!("upload task failed: {e}")))?
        })
        .await
    }

    type DownloadArtifactStream = DownloadStream;

    async fn download_artifact(
        &self,
        request: Request<pb::DownloadArtifactRequest>,
    ) -> Result<Response<Self::DownloadArtifactStream>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.call(
            "DownloadArtifact",
            &metadata,
            Role::Reader,
            |_| async move {
                validate::name("model_name", &req.model_name)?;
                let version = match (req.version, req.alias.as_str()) {
                    (0, "") => return Err(Error::invalid("give a version or an alias")),
                    (v, "") => v,
                    (0, alias) => {
                        self.store
                            .version_by_alias(&req.model_name, alias, None)
                            .await?
                            .version
                    }
                    _ => return Err(Error::invalid("give a version or an alias, not both")),
                };
                let (path, info) = self.store.artifact(&req.model_name, version).await?;
                let source = self.artifacts.read(&path).await?;
                Ok(Box::pin(download_stream(info, source, self.metrics.clone())) as DownloadStream)
            },
        )
        .await
    }

    async fn create_run(
        &self,
        request: Request<pb::CreateRunRequest>,
    ) -> Result<Response<pb::Run>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.call("CreateRun", &metadata, Role::Writer, |p| async move {
            self.store.create_run(&p, req).await
        })
        .await
    }

    async fn get_run(
        &self,
        request: Request<pb::GetRunRequest>,
    ) -> Result<Response<pb::Run>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.call("GetRun", &metadata, Role::Reader, |_| async move {
            self.store.get_run(&req.run_id).await
        })
        .await
    }

    async fn update_run(
        &self,
        request: Request<pb::UpdateRunRequest>,
    ) -> Result<Response<pb::Run>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.call("UpdateRun", &metadata, Role::Writer, |p| async move {
            self.store.update_run(&p, req).await
        })
        .await
    }

    async fn delete_run(
        &self,
        request: Request<pb::DeleteRunRequest>,
    ) -> Result<Response<pb::DeleteRunResponse>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.call("DeleteRun", &metadata, Role::Writer, |p| async move {
            self.store.delete_run(&p, &req.run_id).await?;
            Ok(pb::DeleteRunResponse {})
        })
        .await
    }

    async fn set_alias(
        &self,
        request: Request<pb::SetAliasRequest>,
    ) -> Result<Response<pb::Alias>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.call("SetAlias", &metadata, Role::Writer, |p| async move {
            validate::name("model_name", &req.model_name)?;
            validate::alias(&req.alias)?;
            self.require_alias_role(&p, &req.alias, "setting")?;
            self.store.set_alias(&p, &req).await
        })
        .await
    }

    async fn delete_alias(
        &self,
        request: Request<pb::DeleteAliasRequest>,
    ) -> Result<Response<pb::DeleteAliasResponse>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.call("DeleteAlias", &metadata, Role::Writer, |p| async move {
            validate::name("model_name", &req.model_name)?;
            validate::alias(&req.alias)?;
            self.require_alias_role(&p, &req.alias, "deleting")?;
            self.store
                .delete_alias(&p, &req.model_name, &req.alias)
                .await?;
            Ok(pb::DeleteAliasResponse {})
        })
        .await
    }

    async fn get_model_version_by_alias(
        &self,
        request: Request<pb::GetModelVersionByAliasRequest>,
    ) -> Result<Response<pb::ModelVersion>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.call(
            "GetModelVersionByAlias",
            &metadata,
            Role::Reader,
            |_| async move {
                validate::name("model_name", &req.model_name)?;
                let at = req.at_time.as_ref().map(micros_of);
                self.store
                    .version_by_alias(&req.model_name, &req.alias, at)
                    .await
            },
        )
        .await
    }

    async fn list_alias_history(
        &self,
        request: Request<pb::ListAliasHistoryRequest>,
    ) -> Result<Response<pb::ListAliasHistoryResponse>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.call(
            "ListAliasHistory",
            &metadata,
            Role::Reader,
            |_| async move {
                validate::name("model_name", &req.model_name)?;
                let entries = self
                    .store
                    .alias_history(&req.model_name, &req.alias)
                    .await?;
                Ok(pb::ListAliasHistoryResponse { entries })
            },
        )
        .await
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.call("ListAuditEvents", &metadata, Role::Reader, |_| async move {
            self.store.list_audit_events(req).await
        })
        .await
    }

    async fn create_api_token(
        &self,
        request: Request<pb::CreateApiTokenRequest>,
    ) -> Result<Response<pb::CreateApiTokenResponse>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.call("CreateApiToken", &metadata, Role::Admin, |p| async move {
            let role = Role::from_proto(req.role)?;
            let (token, secret) = self.store.create_token(&p, &req.name, role).await?;
            Ok(pb::CreateApiTokenResponse {
                token: Some(token),
                secret: secret.expose_secret().to_string(),
            })
        })
        .await
    }

    async fn list_api_tokens(
        &self,
        request: Request<pb::ListApiTokensRequest>,
    ) -> Result<Response<pb::ListApiTokensResponse>, Status> {
        let (metadata, _, _) = request.into_parts();
        self.call("ListApiTokens", &metadata, Role::Admin, |_| async move {
            Ok(pb::ListApiTokensResponse {
                tokens: self.store.list_tokens().await?,
            })
        })
        .await
    }

    async fn revoke_api_token(
        &self,
        request: Request<pb::RevokeApiTokenRequest>,
    ) -> Result<Response<pb::ApiToken>, Status> {
        let (metadata, _, req) = request.into_parts();
        self.call("RevokeApiToken", &metadata, Role::Admin, |p| async move {
            self.store.revoke_token(&p, &req.token_id).await
        })
        .await
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let (metadata, _, _) = request.into_parts();
        self.call("WhoAmI", &metadata, Role::Reader, |p| async move {
            Ok(pb::WhoAmIResponse {
                principal: p.name,
                role: p.role.to_proto() as i32,
            })
        })
        .await
    }
}

impl RegistryService {
    /// Receives an upload: header, chunks, then size and checksum checks.
    /// Any failure leaves the version FAILED with the reason.
    async fn receive_artifact(
        &self,
        principal: Principal,
        mut stream: Streaming<pb::UploadArtifactRequest>,
    ) -> Result<pb::ModelVersion> {
        let header = match stream.message().await {
            Ok(Some(pb::UploadArtifactRequest {
                message: Some(pb::upload_artifact_request::Message::Header(header)),
            })) => header,
            Ok(_) => {
                return Err(Error::invalid(
                    "the first upload message must be the header",
                ));
            }
            Err(status) => {
                return Err(Error::invalid(format!(
                    "upload interrupted: {}",
                    status.message()
                )));
            }
        };
        validate::name("header.model_name", &header.model_name)?;
        validate::name("header.filename", &header.filename)?;
        validate::sha256(&header.sha256)?;
        if header.size_bytes < 0 || header.size_bytes as u64 > self.max_artifact_bytes {
            return Err(Error::invalid(format!(
                "header.size_bytes must be between 0 and {} (REGISTRY_MAX_ARTIFACT_BYTES), got {}",
                self.max_artifact_bytes, header.size_bytes
            )));
        }
        let target = self
            .store
            .upload_target(&header.model_name, header.version)
            .await?;
        let span = tracing::Span::current();
        span.record("model", header.model_name.as_str());
        let upload_id = uuid::Uuid::new_v4().simple().to_string();
        let path = self.artifacts.path_for(
            &header.model_name,
            header.version,
            &upload_id,
            &header.filename,
        );
        let declared = header.size_bytes as u64;

        let received = self.receive_bytes(&path, &mut stream, declared).await;
        let sha256 = match received {
            Ok(sha) => sha,
            Err(error) => return self.fail_upload(&principal, &target, error).await,
        };
        if sha256 != header.sha256 {
            self.artifacts.delete(&path).await?;
            let error = Error::invalid(format!(
                "checksum mismatch: the header declared sha256 {}, the bytes received hash to {sha256}",
                header.sha256
            ));
            return self.fail_upload(&principal, &target, error).await;
        }
        match self
            .store
            .mark_ready(
                &principal,
                &target,
                path.as_ref(),
                &header.filename,
                header.size_bytes,
                &sha256,
            )
            .await
        {
            Ok(version) => {
                tracing::info!(model = %header.model_name, version = header.version, bytes = declared, "artifact stored");
                Ok(version)
            }
            Err(error) => {
                self.artifacts.delete(&path).await?;
                Err(error)
            }
        }
    }

    /// Streams chunks into the store; returns the sha256 of what arrived.
    async fn receive_bytes(
        &self,
        path: &object_store::path::Path,
        stream: &mut Streaming<pb::UploadArtifactRequest>,
        declared: u64,
    ) -> Result<String> {
        let mut writer = self.artifacts.writer(path).await?;
        let outcome = async {
            loop {
                let message = match stream.message().await {
                    Ok(Some(message)) => message,
                    Ok(None) => break,
                    Err(status) => {
                        return Err(Error::invalid(format!(
                            "upload interrupted: {}",
                            status.message()
                        )));
                    }
                };
                match message.message {
                    Some(pb::upload_artifact_request::Message::Chunk(chunk)) => {
                        if writer.written() + chunk.len() as u64 > declared {
                            return Err(Error::invalid(format!(
                                "received more bytes than the {declared} the header declared"
                            )));
                        }
                        writer.write(&chunk).await?;
                        self.metrics.bytes_uploaded.inc_by(chunk.len() as u64);
                    }
                    Some(pb::upload_artifact_request::Message::Header(_)) => {
                        return Err(Error::invalid("the header was sent twice"));
                    }
                    None => {
                        return Err(Error::invalid(
                            "an upload message carried neither header nor chunk",
                        ));
                    }
                }
            }
            if writer.written() != declared {
                return Err(Error::invalid(format!(
                    "upload ended after {} bytes; the header declared {declared}",
                    writer.written()
                )));
            }
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => writer.finish().await,
            Err(error) => {
                writer.abort().await;
                Err(error)
            }
        }
    }

    async fn fail_upload(
        &self,
        principal: &Principal,
        target: &UploadTarget,
        error: Error,
    ) -> Result<pb::ModelVersion> {
        tracing::warn!(model = %target.model_name, version = target.version, %error, "artifact upload failed");
        self.store
            .mark_failed(principal, target, &error.to_string())
            .await?;
        Err(error)
    }
}

/// The download response: the info message, then the object re-chunked to
/// [`DOWNLOAD_CHUNK`]. A read failure midway ends the stream with an error.
fn download_stream(
    info: pb::ArtifactInfo,
    mut source: futures::stream::BoxStream<'static, Result<Bytes>>,
    metrics: RegistryMetrics,
) -> impl Stream<Item = Result<pb::DownloadArtifactResponse, Status>> {
    use pb::download_artifact_response::Message;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let send = |m: Message| pb::DownloadArtifactResponse { message: Some(m) };
        if tx.send(Ok(send(Message::Info(info)))).await.is_err() {
            return;
        }
        let mut buffer = BytesMut::new();
        loop {
            match source.next().await {
                Some(Ok(bytes)) => {
                    buffer.extend_from_slice(&bytes);
                    while buffer.len() >= DOWNLOAD_CHUNK {
                        let chunk = buffer.split_to(DOWNLOAD_CHUNK).freeze();
                        metrics.bytes_downloaded.inc_by(chunk.len() as u64);
                        if tx.send(Ok(send(Message::Chunk(chunk)))).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Err(error)) => {
                    let _ = tx.send(Err(Status::from(error))).await;
                    return;
                }
                None => break,
            }
        }
        if !buffer.is_empty() {
            metrics.bytes_downloaded.inc_by(buffer.len() as u64);
            let _ = tx.send(Ok(send(Message::Chunk(buffer.freeze())))).await;
        }
    });
    ReceiverStream::new(rx)
}

impl RegistryService {
    pub async fn ping_artifacts(&self) -> Result<()> {
        self.artifacts.ping().await
    }
}
