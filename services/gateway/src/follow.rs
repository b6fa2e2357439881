//! Keeps the served versions in step with the registry's aliases.
//!
//! Every `GATEWAY_POLL_SECONDS` (and whenever [`Follower::wake`] is called
//! for a model) each followed model's `@champion` and `@challenger` are
//! looked up. A version not loaded yet is downloaded (streamed, size and
//! sha256 verified by the registry client), loaded in ONNX Runtime off the
//! async threads, checked against its registered signature, then installed.
//! A version that fails is recorded and not retried until its alias moves or
//! the repository API asks for a load; what was serving keeps serving.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use mlops_onnx::explain::Explainer;
use mlops_onnx::model::{DataType, LoadOptions, Model};
use mlops_registry_client::{ClientError, RegistryClient, proto as pb};
use mlops_runtime::{Readiness, Shutdown};
use secrecy::SecretString;
use tokio::sync::{Mutex, mpsc};
use tracing::{info, warn};

use crate::metrics::GatewayMetrics;
use crate::models::{ALIASES, LoadFailure, LoadedVersion, ModelStore};

/// What asks for a model to be refreshed now.
#[derive(Clone, Debug)]
pub struct Wake(mpsc::UnboundedSender<String>);

impl Wake {
    pub fn model(&self, name: &str) {
        let _ = self.0.send(name.to_string());
    }
}

pub struct Follower {
    store: Arc<ModelStore>,
    metrics: GatewayMetrics,
    registry_url: String,
    token: SecretString,
    load: LoadOptions,
    readiness: Readiness,
    client: Mutex<Option<RegistryClient>>,
}

/// The outcome of one alias check.
#[derive(Debug, PartialEq)]
pub enum Refreshed {
    Unchanged,
    Loaded { version: i64, replaced: Option<i64> },
    Removed { version: i64 },
    Failed { version: i64 },
}

impl Follower {
    pub fn new(
        store: Arc<ModelStore>,
        metrics: GatewayMetrics,
        registry_url: String,
        token: SecretString,
        load: LoadOptions,
        readiness: Readiness,
    ) -> Self {
        Self {
            store,
            metrics,
            registry_url,
            token,
            load,
            readiness,
            client: Mutex::new(None),
        }
    }

    async fn client(&self) -> Result<RegistryClient, ClientError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let client = RegistryClient::connect(&self.registry_url, &self.token).await?;
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Checks every alias of `name` once. `retry_failed` also retries a
    /// version whose last load failed (the repository API's `load`).
    pub async fn refresh(
        &self,
        name: &str,
        retry_failed: bool,
    ) -> Result<Vec<(String, Refreshed)>, ClientError> {
        let mut outcomes = Vec::new();
        for alias in ALIASES {
            let outcome = self.refresh_alias(name, alias, retry_failed).await;
            self.readiness.set(self.store.is_ready());
            self.readiness.set_detail(self.store.report());
            outcomes.push((alias.to_string(), outcome?));
        }
        Ok(outcomes)
    }

    async fn refresh_alias(
        &self,
        name: &str,
        alias: &str,
        retry_failed: bool,
    ) -> Result<Refreshed, ClientError> {
        let mut client = self.client().await?;
        let found = client
            .raw()
            .get_model_version_by_alias(pb::GetModelVersionByAliasRequest {
                model_name: name.to_string(),
                alias: alias.to_string(),
                at_time: None,
            })
            .await;
        let version = match found {
            Ok(response) => response.into_inner(),
            Err(status) if status.code() == tonic::Code::NotFound => {
                return Ok(match self.store.remove(name, alias) {
                    Some(version) => {
                        self.metrics.removed(name, alias);
                        info!(
                            model = name,
                            alias, version, "alias deleted; no longer served"
                        );
                        Refreshed::Removed { version }
                    }
                    None => Refreshed::Unchanged,
                });
            }
            Err(status) => return Err(status.into()),
        };
        if let Some(current) = self.store.loaded(name, alias)
            && current.version == version.version
            && current.sha256 == version.artifact_sha256
        {
            return Ok(Refreshed::Unchanged);
        }
        if !retry_failed
            && let Some(failed) = self.store.failure(name, alias)
            && failed.version == version.version
            && failed.sha256 == version.artifact_sha256
        {
            return Ok(Refreshed::Unchanged);
        }
        // The same version may already be loaded under the other alias.
        let reuse = ALIASES
            .iter()
            .filter_map(|a| self.store.loaded(name, a))
            .find(|l| l.version == version.version && l.sha256 == version.artifact_sha256);
        let loaded = match reuse {
            Some(loaded) => Ok(loaded),
            None => self.load(&mut client, &version).await,
        };
        match loaded {
            Ok(loaded) => {
                let replaced = self.store.install(alias, loaded);
                self.metrics
                    .loaded(name, alias, version.version, replaced.is_some());
                info!(
                    model = name,
                    alias,
                    version = version.version,
                    replaced,
                    "now serving"
                );
                Ok(Refreshed::Loaded {
                    version: version.version,
                    replaced,
                })
            }
            Err(reason) => {
                warn!(model = name, alias, version = version.version, %reason, "load failed; the previous version keeps serving");
                self.metrics.load_failed(name);
                self.store.record_failure(
                    name,
                    LoadFailure {
                        alias: alias.to_string(),
                        version: version.version,
                        sha256: version.artifact_sha256.clone(),
                        reason,
                    },
                );
                Ok(Refreshed::Failed {
                    version: version.version,
                })
            }
        }
    }

    /// Downloads and loads one version; the error is the reason shown.
    async fn load(
        &self,
        client: &mut RegistryClient,
        version: &pb::ModelVersion,
    ) -> Result<Arc<LoadedVersion>, String> {
        let started = Instant::now();
        if version.status != pb::ModelVersionStatus::Ready as i32 {
            return Err(format!("version {} is not READY", version.version));
        }
        if version.format != "onnx" {
            return Err(format!(
                "format {:?} cannot be served (onnx only)",
                version.format
            ));
        }
        let mut bytes =
            Vec::with_capacity(usize::try_from(version.artifact_size_bytes).unwrap_or(0));
        client
            .download_artifact(
                pb::DownloadArtifactRequest {
                    model_name: version.model_name.clone(),
                    version: version.version,
                    alias: String::new(),
                },
                &mut bytes,
                |_| {},
                |_| {},
            )
            .await
            .map_err(|e| format!("download failed: {e}"))?;
        let options = self.load;
        let (model, explainer) = tokio::task::spawn_blocking(move || {
            Model::load(&bytes, options).map(|m| (m, Explainer::from_onnx(&bytes)))
        })
        .await
        .map_err(|e| format!("loading panicked: {e}"))?
        .map_err(|e| e.to_string())?;
        check_signature(version.signature.as_ref(), &model)?;
        info!(
            model = version.model_name,
            version = version.version,
            seconds = started.elapsed().as_secs_f64(),
            "loaded"
        );
        Ok(Arc::new(LoadedVersion {
            model_name: version.model_name.clone(),
            version: version.version,
            sha256: version.artifact_sha256.clone(),
            model,
            explainer,
            loaded_at: SystemTime::now(),
        }))
    }

    /// Refreshes every followed model now, then every `poll`, and a model
    /// as soon as it is woken; until shutdown.
    pub async fn run(
        self: Arc<Self>,
        poll: std::time::Duration,
        mut woken: mpsc::UnboundedReceiver<String>,
        shutdown: Shutdown,
    ) {
        let mut ticker = tokio::time::interval(poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let names = tokio::select! {
                _ = shutdown.wait() => return,
                _ = ticker.tick() => self.store.names(),
                Some(name) = woken.recv() => vec![name],
            };
            for name in names {
                if !self.store.is_followed(&name) {
                    continue;
                }
                if let Err(error) = self.refresh(&name, false).await {
                    self.metrics.registry_error();
                    warn!(model = name, %error, "cannot reach the registry; serving what is loaded");
                }
            }
        }
    }
}

/// A channel to wake the follower and its receiving end.
pub fn wake_channel() -> (Wake, mpsc::UnboundedReceiver<String>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (Wake(sender), receiver)
}

/// The registered signature, when it names inputs, must be the model's.
fn check_signature(signature: Option<&pb::Signature>, model: &Model) -> Result<(), String> {
    let Some(signature) = signature else {
        return Ok(());
    };
    if signature.inputs.is_empty() {
        return Ok(());
    }
    let describe = |specs: &mut dyn Iterator<Item = String>| specs.collect::<Vec<_>>().join(", ");
    let registered: Vec<(String, Option<DataType>, usize)> = signature
        .inputs
        .iter()
        .map(|s| (s.name.clone(), datatype_of(&s.dtype), s.shape.len()))
        .collect();
    let actual: Vec<(String, Option<DataType>, usize)> = model
        .inputs()
        .iter()
        .map(|s| (s.name.clone(), Some(s.datatype), s.shape.len()))
        .collect();
    if registered == actual {
        return Ok(());
    }
    Err(format!(
        "signature mismatch: the registry lists inputs [{}], the model has [{}]",
        describe(
            &mut signature
                .inputs
                .iter()
                .map(|s| format!("{} {} {:?}", s.name, s.dtype, s.shape))
        ),
        describe(
            &mut model
                .inputs()
                .iter()
                .map(|s| format!("{} {} {:?}", s.name, s.datatype, s.shape))
        ),
    ))
}

/// A registry dtype (`float32`, `int64`, `string`, …) as a protocol datatype.
fn datatype_of(dtype: &str) -> Option<DataType> {
    Some(match dtype.to_ascii_lowercase().as_str() {
        "bool" => DataType::Bool,
        "uint8" => DataType::Uint8,
        "int8" => DataType::Int8,
        "int16" => DataType::Int16,
        "int32" => DataType::Int32,
        "int64" => DataType::Int64,
        "float" | "float32" | "fp32" => DataType::Fp32,
        "double" | "float64" | "fp64" => DataType::Fp64,
        "string" | "bytes" => DataType::Bytes,
        _ => return None,
    })
}
