//! Artifact storage under `ARTIFACTS_URL`, through `object_store`.
//!
//! Layout: `<root>/<model>/<version>/<upload id>/<filename>`. Each upload
//! writes its own object, so a retried or concurrent upload never clobbers
//! a verified artifact; the database records which object is the artifact.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use mlops_lake::LakeLocation;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Parts of a multipart upload; S3 needs at least 5 MiB for all but the last.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

#[derive(Clone)]
pub struct ArtifactStore {
    store: Arc<dyn ObjectStore>,
    root: Path,
    url: String,
}

impl std::fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactStore")
            .field("url", &self.url)
            .finish()
    }
}

impl ArtifactStore {
    /// Opens the store at `url` (`file://`, a plain path, `s3://`, `az://` or
    /// `memory://`). Credentials come from the standard `AWS_*` and
    /// `AZURE_STORAGE_*` variables, overridden by explicit `options`.
    pub fn open(url: &str, options: HashMap<String, String>) -> Result<Self> {
        let location =
            LakeLocation::parse(url).map_err(|e| Error::invalid(format!("ARTIFACTS_URL: {e}")))?;
        let mut merged: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("AWS_") || k.starts_with("AZURE_"))
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        merged.extend(options);
        let (store, root) = object_store::parse_url_opts(location.root(), merged)?;
        Ok(Self {
            store: Arc::from(store),
            root,
            url: location.root().to_string(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn path_for(&self, model: &str, version: i64, upload_id: &str, filename: &str) -> Path {
        self.root
            .clone()
            .join(model)
            .join(version.to_string())
            .join(upload_id)
            .join(filename)
    }

    /// Starts a multipart write; bytes are hashed as they pass.
    pub async fn writer(&self, path: &Path) -> Result<ArtifactWriter> {
        let upload = self.store.put_multipart(path).await?;
        Ok(ArtifactWriter {
            upload: WriteMultipart::new_with_chunk_size(upload, PART_SIZE),
            hasher: Sha256::new(),
            written: 0,
        })
    }

    pub async fn read(&self, path: &str) -> Result<BoxStream<'static, Result<Bytes>>> {
        let result = self.store.get(&Path::from(path)).await?;
        Ok(result.into_stream().map_err(Error::from).boxed())
    }

    pub async fn delete(&self, path: &Path) -> Result<()> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A cheap request proving the store answers, for readiness.
    pub async fn ping(&self) -> Result<()> {
        let mut listing = self.store.list(Some(&self.root));
        match listing.next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(e.into()),
        }
    }
}

pub struct ArtifactWriter {
    upload: WriteMultipart,
    hasher: Sha256,
    written: u64,
}

impl ArtifactWriter {
    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        // Back-pressure: at most a few parts in flight.
        self.upload.wait_for_capacity(4).await?;
        self.hasher.update(chunk);
        self.upload.write(chunk);
        self.written += chunk.len() as u64;
        Ok(())
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Completes the upload; returns the lowercase hex sha256.
    pub async fn finish(self) -> Result<String> {
        self.upload.finish().await?;
        Ok(hex::encode(self.hasher.finalize()))
    }

    pub async fn abort(self) {
        if let Err(error) = self.upload.abort().await {
            tracing::warn!(%error, "aborting a failed artifact upload");
        }
    }
}
