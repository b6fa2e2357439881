//! The trainer's side of the registry: calls retried while the registry is
//! unreachable (bounded), the champion fetched and scored, and the run, its
//! versions and the alias published idempotently: versions carry the run's
//! `training_key` tag, so a rerun of the same training after a failure
//! reuses them instead of registering duplicates.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use mlops_registry_client::{ClientError, RegistryClient, proto as pb};
use secrecy::SecretString;
use tracing::{info, warn};

use crate::{Error, Result};

/// Tag keys the trainer sets on versions.
pub const TRAINING_KEY_TAG: &str = "training_key";
pub const CANDIDATE_TAG: &str = "candidate";
pub const CHAMPION: &str = "champion";
pub const CHALLENGER: &str = "challenger";

pub struct Registry {
    client: RegistryClient,
    url: String,
    attempts: u32,
    pub model: String,
}

fn retryable(error: &ClientError) -> bool {
    match error {
        ClientError::Connect { .. } => true,
        ClientError::Status(status) => matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown
        ),
        _ => false,
    }
}

/// Runs `call` up to `attempts` times while the registry is unreachable,
/// backing off 1 s, 2 s, 4 s ... (at most 8 s).
async fn retry<T, F, Fut>(url: &str, attempts: u32, what: &str, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let mut delay = Duration::from_secs(1);
    for attempt in 1..=attempts {
        match call().await {
            Ok(value) => return Ok(value),
            Err(source) if retryable(&source) => {
                if attempt == attempts {
                    return Err(Error::RegistryUnreachable {
                        url: url.to_string(),
                        attempts,
                        what: what.to_string(),
                        source,
                    });
                }
                warn!(attempt, attempts, what, error = %source, "registry unreachable; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(8));
            }
            Err(source) => {
                return Err(Error::Registry {
                    what: what.to_string(),
                    source,
                });
            }
        }
    }
    unreachable!("attempts is at least 1")
}

macro_rules! call {
    ($self:ident, $what:expr, $method:ident, $request:expr) => {{
        let request = $request;
        let client = $self.client.clone();
        retry(&$self.url, $self.attempts, $what, || {
            let mut client = client.clone();
            let request = request.clone();
            async move {
                client
                    .raw()
                    .$method(request)
                    .await
                    .map(|r| r.into_inner())
                    .map_err(ClientError::from)
            }
        })
        .await
    }};
}

impl Registry {
    pub async fn connect(
        url: &str,
        token: &SecretString,
        attempts: u32,
        model: &str,
    ) -> Result<Self> {
        let client = retry(url, attempts, "connect", || {
            RegistryClient::connect(url, token)
        })
        .await?;
        Ok(Self {
            client,
            url: url.to_string(),
            attempts,
            model: model.to_string(),
        })
    }

    /// Whether the token may move `@champion`.
    pub async fn is_approver(&mut self) -> Result<bool> {
        let me = call!(self, "WhoAmI", who_am_i, pb::WhoAmIRequest {})?;
        info!(principal = me.principal, role = ?pb::Role::try_from(me.role).unwrap_or_default(), "registry identity");
        Ok(me.role >= pb::Role::Approver as i32)
    }

    pub async fn ensure_model(&mut self, description: &str) -> Result<()> {
        let get = call!(
            self,
            "GetRegisteredModel",
            get_registered_model,
            pb::GetRegisteredModelRequest {
                name: self.model.clone()
            }
        );
        match get {
            Ok(_) => Ok(()),
            Err(Error::Registry {
                source: ClientError::Status(s),
                ..
            }) if s.code() == tonic::Code::NotFound => {
                let created = call!(
                    self,
                    "CreateRegisteredModel",
                    create_registered_model,
                    pb::CreateRegisteredModelRequest {
                        name: self.model.clone(),
                        description: description.to_string(),
                        tags: HashMap::from([("owner".to_string(), "trainer".to_string())]),
                    }
                );
                match created {
                    Ok(_) => Ok(()),
                    // Another trainer created it meanwhile.
                    Err(Error::Registry {
                        source: ClientError::Status(s),
                        ..
                    }) if s.code() == tonic::Code::AlreadyExists => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The version behind `@champion`, if any.
    pub async fn champion(&mut self) -> Result<Option<pb::ModelVersion>> {
        let found = call!(
            self,
            "GetModelVersionByAlias",
            get_model_version_by_alias,
            pb::GetModelVersionByAliasRequest {
                model_name: self.model.clone(),
                alias: CHAMPION.into(),
                at_time: None,
            }
        );
        match found {
            Ok(version) => Ok(Some(version)),
            Err(Error::Registry {
                source: ClientError::Status(s),
                ..
            }) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A version's artifact, verified (size and sha256) by the client.
    pub async fn download(&mut self, version: i64) -> Result<Vec<u8>> {
        let request = pb::DownloadArtifactRequest {
            model_name: self.model.clone(),
            version,
            alias: String::new(),
        };
        let client = self.client.clone();
        retry(&self.url, self.attempts, "DownloadArtifact", || {
            let mut client = client.clone();
            let request = request.clone();
            async move {
                let mut bytes = Vec::new();
                client
                    .download_artifact(request, &mut bytes, |_| {}, |_| {})
                    .await?;
                Ok(bytes)
            }
        })
        .await
    }

    /// Versions registered earlier for the same training (same key).
    pub async fn versions_of(&mut self, training_key: &str) -> Result<Vec<pb::ModelVersion>> {
        let response = call!(
            self,
            "SearchModelVersions",
            search_model_versions,
            pb::SearchModelVersionsRequest {
                filter: format!(
                    "name = '{}' AND tags.{TRAINING_KEY_TAG} = '{training_key}'",
                    self.model
                ),
                order_by: "version ASC".into(),
                page_size: 100,
                page_token: String::new(),
            }
        )?;
        Ok(response.versions)
    }

    pub async fn get_run(&mut self, run_id: &str) -> Result<pb::Run> {
        call!(
            self,
            "GetRun",
            get_run,
            pb::GetRunRequest {
                run_id: run_id.to_string()
            }
        )
    }

    pub async fn create_run(&mut self, request: pb::CreateRunRequest) -> Result<pb::Run> {
        call!(self, "CreateRun", create_run, request)
    }

    pub async fn update_run(&mut self, request: pb::UpdateRunRequest) -> Result<pb::Run> {
        call!(self, "UpdateRun", update_run, request)
    }

    /// Creates the version of one candidate. A create that may have been
    /// committed before the connection failed is looked up by its training
    /// key and candidate before it is sent again, so a retry never
    /// registers a second version.
    pub async fn create_version(
        &mut self,
        training_key: &str,
        candidate: &str,
        request: pb::CreateModelVersionRequest,
    ) -> Result<pb::ModelVersion> {
        let mut delay = Duration::from_secs(1);
        for attempt in 1..=self.attempts {
            let sent = self
                .client
                .raw()
                .create_model_version(request.clone())
                .await;
            let source = match sent {
                Ok(version) => return Ok(version.into_inner()),
                Err(status) => ClientError::from(status),
            };
            if !retryable(&source) {
                return Err(Error::Registry {
                    what: "CreateModelVersion".into(),
                    source,
                });
            }
            if attempt == self.attempts {
                return Err(Error::RegistryUnreachable {
                    url: self.url.clone(),
                    attempts: self.attempts,
                    what: "CreateModelVersion".into(),
                    source,
                });
            }
            warn!(attempt, error = %source, "registry unreachable; retrying CreateModelVersion");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(8));
            let committed = self
                .versions_of(training_key)
                .await?
                .into_iter()
                .find(|v| v.tags.get(CANDIDATE_TAG).map(String::as_str) == Some(candidate));
            if let Some(version) = committed {
                return Ok(version);
            }
        }
        unreachable!("attempts is at least 1")
    }

    /// Streams a model file as the version's artifact.
    pub async fn upload(
        &mut self,
        version: i64,
        path: &std::path::Path,
    ) -> Result<pb::ModelVersion> {
        let client = self.client.clone();
        let model = self.model.clone();
        retry(&self.url, self.attempts, "UploadArtifact", || {
            let mut client = client.clone();
            let model = model.clone();
            async move { client.upload_file(&model, version, path, |_| {}).await }
        })
        .await
    }

    pub async fn set_alias(&mut self, alias: &str, version: i64) -> Result<pb::Alias> {
        call!(
            self,
            "SetAlias",
            set_alias,
            pb::SetAliasRequest {
                model_name: self.model.clone(),
                alias: alias.to_string(),
                version,
            }
        )
    }
}
