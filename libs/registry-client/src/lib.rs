//! Typed client of the model registry (`mlops.registry.v1.ModelRegistry`),
//! used by the trainer, the gateway and the `mlops` CLI (`tools/mlops-cli`).
//!
//! Every call carries the bearer token and the current trace context. Besides
//! the raw generated client ([`RegistryClient::raw`]), it offers the calls that
//! need care: streaming an artifact up with its checksum, and down with the
//! checksum verified.

use std::path::Path;

use bytes::Bytes;
use futures::StreamExt;
use mlops_proto::registry::v1 as pb;
use mlops_proto::registry::v1::model_registry_client::ModelRegistryClient;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tonic::metadata::{AsciiMetadataValue, MetadataKey};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

pub use mlops_proto::registry::v1 as proto;

/// Upload chunk size: well under the server's message limit.
pub const UPLOAD_CHUNK: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid registry URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot connect to the registry at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("the token is not valid in gRPC metadata (ASCII only)")]
    InvalidToken,
    /// Shown as `CODE: message`; the status is not a `source`, so error
    /// chains do not repeat it.
    #[error("{}: {}", code_name(.0.code()), .0.message())]
    Status(tonic::Status),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("download of {model}/{version} is corrupt: {reason}")]
    Corrupt {
        model: String,
        version: i64,
        reason: String,
    },
    #[error("the registry answered out of protocol: {0}")]
    Protocol(String),
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        Self::Status(status)
    }
}

fn code_name(code: tonic::Code) -> String {
    format!("{code:?}")
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let sep = (i > 0 && c.is_uppercase()).then_some('_');
            sep.into_iter()
                .chain(std::iter::once(c.to_ascii_uppercase()))
        })
        .collect()
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Adds `authorization` and W3C trace context to every call.
#[derive(Clone)]
pub struct Auth {
    header: AsciiMetadataValue,
}

impl tonic::service::Interceptor for Auth {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let metadata = request.metadata_mut();
        metadata.insert("authorization", self.header.clone());
        for (key, value) in mlops_runtime::telemetry::current_trace_headers() {
            if let (Ok(key), Ok(value)) = (MetadataKey::from_bytes(key.as_bytes()), value.parse()) {
                metadata.insert(key, value);
            }
        }
        Ok(request)
    }
}

pub type RawClient = ModelRegistryClient<InterceptedService<Channel, Auth>>;

#[derive(Clone)]
pub struct RegistryClient {
    inner: RawClient,
}

impl RegistryClient {
    /// Connects to `url` (e.g. `http://localhost:50051`) with a bearer token.
    pub async fn connect(url: &str, token: &SecretString) -> Result<Self> {
        let endpoint =
            Endpoint::from_shared(url.to_string()).map_err(|e| ClientError::InvalidUrl {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        let channel = endpoint
            .connect_timeout(std::time::Duration::from_secs(10))
            .connect()
            .await
            .map_err(|source| ClientError::Connect {
                url: url.to_string(),
                source,
            })?;
        Self::with_channel(channel, token)
    }

    pub fn with_channel(channel: Channel, token: &SecretString) -> Result<Self> {
        let header = format!("Bearer {}", token.expose_secret())
            .parse()
            .map_err(|_| ClientError::InvalidToken)?;
        let inner = ModelRegistryClient::with_interceptor(channel, Auth { header })
            .max_decoding_message_size(8 * 1024 * 1024);
        Ok(Self { inner })
    }

    /// The generated client, for every call without a helper here.
    pub fn raw(&mut self) -> &mut RawClient {
        &mut self.inner
    }

    /// Streams `reader` (`size` bytes with the given sha256) as the artifact
    /// of `model/version`; `progress` is told the bytes sent so far.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_artifact<R>(
        &mut self,
        model: &str,
        version: i64,
        filename: &str,
        size: u64,
        sha256: &str,
        mut reader: R,
        progress: impl Fn(u64) + Send + 'static,
    ) -> Result<pb::ModelVersion>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        use pb::upload_artifact_request::Message;
        let header = pb::UploadArtifactHeader {
            model_name: model.to_string(),
            version,
            filename: filename.to_string(),
            size_bytes: size as i64,
            sha256: sha256.to_string(),
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<pb::UploadArtifactRequest>(4);
        let reader_task = tokio::spawn(async move {
            let message = |m| pb::UploadArtifactRequest { message: Some(m) };
            if tx.send(message(Message::Header(header))).await.is_err() {
                return Ok(());
            }
            let mut sent = 0u64;
            loop {
                let mut buffer = vec![0u8; UPLOAD_CHUNK];
                let mut filled = 0;
                while filled < UPLOAD_CHUNK {
                    let n = reader.read(&mut buffer[filled..]).await?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    return Ok(());
                }
                buffer.truncate(filled);
                sent += filled as u64;
                if tx
                    .send(message(Message::Chunk(Bytes::from(buffer))))
                    .await
                    .is_err()
                {
                    return Ok(());
                }
                progress(sent);
            }
        });
        let response = self
            .inner
            .upload_artifact(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await;
        let read: std::io::Result<()> = reader_task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        if let Err(source) = read {
            return Err(ClientError::Io {
                path: filename.to_string(),
                source,
            });
        }
        Ok(response?.into_inner())
    }

    /// Uploads a local file: hashes it first, then streams it.
    pub async fn upload_file(
        &mut self,
        model: &str,
        version: i64,
        path: &Path,
        progress: impl Fn(u64) + Send + 'static,
    ) -> Result<pb::ModelVersion> {
        let io = |source| ClientError::Io {
            path: path.display().to_string(),
            source,
        };
        let (size, sha256) = sha256_file(path).await.map_err(io)?;
        let filename = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| ClientError::Protocol(format!("{} has no file name", path.display())))?
            .to_string();
        let file = tokio::fs::File::open(path).await.map_err(io)?;
        self.upload_artifact(model, version, &filename, size, &sha256, file, progress)
            .await
    }

    /// Downloads an artifact into `writer`, verifying size and sha256.
    /// `started` receives the artifact's info before the first byte.
    pub async fn download_artifact<W>(
        &mut self,
        request: pb::DownloadArtifactRequest,
        writer: &mut W,
        started: impl FnOnce(&pb::ArtifactInfo),
        progress: impl Fn(u64),
    ) -> Result<pb::ArtifactInfo>
    where
        W: AsyncWrite + Unpin,
    {
        use pb::download_artifact_response::Message;
        let mut stream = self.inner.download_artifact(request).await?.into_inner();
        let info = match stream.next().await {
            Some(Ok(pb::DownloadArtifactResponse {
                message: Some(Message::Info(info)),
            })) => info,
            Some(Err(status)) => return Err(status.into()),
            _ => {
                return Err(ClientError::Protocol(
                    "the first download message was not the artifact info".into(),
                ));
            }
        };
        started(&info);
        let corrupt = |reason: String| ClientError::Corrupt {
            model: info.model_name.clone(),
            version: info.version,
            reason,
        };
        let mut hasher = Sha256::new();
        let mut received = 0u64;
        while let Some(message) = stream.next().await {
            match message?.message {
                Some(Message::Chunk(chunk)) => {
                    hasher.update(&chunk);
                    received += chunk.len() as u64;
                    writer
                        .write_all(&chunk)
                        .await
                        .map_err(|source| ClientError::Io {
                            path: info.filename.clone(),
                            source,
                        })?;
                    progress(received);
                }
                _ => {
                    return Err(corrupt(
                        "an unexpected message arrived between chunks".into(),
                    ));
                }
            }
        }
        writer.flush().await.map_err(|source| ClientError::Io {
            path: info.filename.clone(),
            source,
        })?;
        if received != info.size_bytes as u64 {
            return Err(corrupt(format!(
                "received {received} bytes, expected {}",
                info.size_bytes
            )));
        }
        let sha256 = hex::encode(hasher.finalize());
        if sha256 != info.sha256 {
            return Err(corrupt(format!(
                "sha256 is {sha256}, expected {}",
                info.sha256
            )));
        }
        Ok(info)
    }
}

/// Size and lowercase hex sha256 of a file.
pub async fn sha256_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_errors_read_like_grpc_codes() {
        let err = ClientError::from(tonic::Status::permission_denied("needs approver"));
        assert_eq!(err.to_string(), "PERMISSION_DENIED: needs approver");
        let err = ClientError::from(tonic::Status::invalid_argument("bad filter"));
        assert_eq!(err.to_string(), "INVALID_ARGUMENT: bad filter");
    }

    #[tokio::test]
    async fn file_hash_matches_a_known_digest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.bin");
        std::fs::write(&path, b"abc").expect("write");
        let (size, sha) = sha256_file(&path).await.expect("hash");
        assert_eq!(size, 3);
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
