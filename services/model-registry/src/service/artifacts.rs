//! Artifacts: the upload stream (header, chunks, size and checksum checks)
//! and the download stream, both through the service.

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use mlops_proto::registry::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::{DOWNLOAD_CHUNK, DownloadStream, RegistryService};
use crate::auth::{Principal, Role};
use crate::error::{Error, Result};
use crate::metrics::RegistryMetrics;
use crate::store::UploadTarget;
use crate::validate;

pub(super) async fn upload(
    service: &RegistryService,
    request: Request<Streaming<pb::UploadArtifactRequest>>,
) -> Result<Response<pb::ModelVersion>, Status> {
    let (metadata, _, stream) = request.into_parts();
    service
        .call("UploadArtifact", &metadata, Role::Writer, |p| async move {
            // The upload runs in its own task: if the client goes away and
            // this call is dropped, the task still records the failure and
            // cleans up the partial object.
            let service = service.clone();
            tokio::spawn(async move { service.receive_artifact(p, stream).await }.in_current_span())
                .await
                .map_err(|e| Error::Internal(format!("upload task failed: {e}")))?
        })
        .await
}

pub(super) async fn download(
    service: &RegistryService,
    request: Request<pb::DownloadArtifactRequest>,
) -> Result<Response<DownloadStream>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call(
            "DownloadArtifact",
            &metadata,
            Role::Reader,
            |_| async move {
                validate::name("model_name", &req.model_name)?;
                let version = match (req.version, req.alias.as_str()) {
                    (0, "") => return Err(Error::invalid("give a version or an alias")),
                    (v, "") => v,
                    (0, alias) => {
                        service
                            .store
                            .version_by_alias(&req.model_name, alias, None)
                            .await?
                            .version
                    }
                    _ => return Err(Error::invalid("give a version or an alias, not both")),
                };
                let (path, info) = service.store.artifact(&req.model_name, version).await?;
                let source = service.artifacts.read(&path).await?;
                Ok(
                    Box::pin(download_stream(info, source, service.metrics.clone()))
                        as DownloadStream,
                )
            },
        )
        .await
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
