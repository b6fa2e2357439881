//! The portal's access to the model registry, as the user's role.
//!
//! Portal roles map onto registry tokens: viewers and analysts read with
//! the gateway's own token (`GATEWAY_REGISTRY_TOKEN`, a reader);
//! data scientists and admins act with `GATEWAY_PORTAL_APPROVER_TOKEN`, a
//! token with the registry's approver role, which may move `@champion`.
//! The registry's audit log names that token; the portal's audit trail
//! names the portal user who acted.

use std::time::Duration;

use mlops_registry_client::proto as pb;
use mlops_registry_client::{ClientError, RegistryClient};
use secrecy::SecretString;
use tonic::transport::Endpoint;

use super::accounts::Role;

/// The portal role that acts on the registry with the approver token.
pub const APPROVER_ROLE: Role = Role::DataScientist;

/// The aliases the portal moves.
pub const PROMOTABLE: [&str; 2] = ["champion", "challenger"];

const PAGE: i32 = 200;

#[derive(Clone)]
pub struct PortalRegistry {
    reader: RegistryClient,
    approver: Option<RegistryClient>,
}

/// A model's page: the model, its versions (newest first), alias history
/// (oldest first) and audit trail (newest first).
#[derive(Clone, Debug, Default)]
pub struct ModelDetail {
    pub model: pb::RegisteredModel,
    pub versions: Vec<pb::ModelVersion>,
    pub history: Vec<pb::AliasHistoryEntry>,
    pub audit: Vec<pb::AuditEvent>,
}

impl ModelDetail {
    pub fn version(&self, version: i64) -> Option<&pb::ModelVersion> {
        self.versions.iter().find(|v| v.version == version)
    }

    /// The version `alias` points at now.
    pub fn aliased(&self, alias: &str) -> Option<&pb::ModelVersion> {
        let version = *self.model.aliases.get(alias)?;
        self.version(version)
    }
}

impl PortalRegistry {
    /// A client on one lazily connected channel to `url`.
    pub fn new(
        url: &str,
        reader: &SecretString,
        approver: Option<&SecretString>,
    ) -> Result<Self, ClientError> {
        let channel = Endpoint::from_shared(url.to_owned())
            .map_err(|e| ClientError::InvalidUrl {
                url: url.to_owned(),
                reason: e.to_string(),
            })?
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .connect_lazy();
        Ok(Self {
            reader: RegistryClient::with_channel(channel.clone(), reader)?,
            approver: approver
                .map(|token| RegistryClient::with_channel(channel, token))
                .transpose()?,
        })
    }

    /// Whether users with the approver role can act (the token is set).
    pub fn can_approve(&self) -> bool {
        self.approver.is_some()
    }

    fn reader(&self) -> RegistryClient {
        self.reader.clone()
    }

    pub async fn models(&self) -> Result<Vec<pb::RegisteredModel>, ClientError> {
        let request = pb::SearchRegisteredModelsRequest {
            page_size: PAGE,
            order_by: "name".into(),
            ..Default::default()
        };
        Ok(self
            .reader()
            .raw()
            .search_registered_models(request)
            .await?
            .into_inner()
            .models)
    }

    pub async fn model(&self, name: &str) -> Result<ModelDetail, ClientError> {
        let mut client = self.reader();
        let model = client
            .raw()
            .get_registered_model(pb::GetRegisteredModelRequest { name: name.into() })
            .await?
            .into_inner();
        let versions = client
            .raw()
            .search_model_versions(pb::SearchModelVersionsRequest {
                filter: format!("name = '{}'", name.replace('\'', "''")),
                order_by: "version DESC".into(),
                page_size: PAGE,
                ..Default::default()
            })
            .await?
            .into_inner()
            .versions;
        let history = client
            .raw()
            .list_alias_history(pb::ListAliasHistoryRequest {
                model_name: name.into(),
                alias: String::new(),
            })
            .await?
            .into_inner()
            .entries;
        let audit = client
            .raw()
            .list_audit_events(pb::ListAuditEventsRequest {
                model_name: name.into(),
                page_size: 100,
                page_token: String::new(),
            })
            .await?
            .into_inner()
            .events;
        Ok(ModelDetail {
            model,
            versions,
            history,
            audit,
        })
    }

    /// The run behind the newest version of `name`: the trainer's last
    /// registration. `None` when no version names a run.
    pub async fn last_run(&self, name: &str) -> Result<Option<pb::Run>, ClientError> {
        let newest = self
            .reader()
            .raw()
            .search_model_versions(pb::SearchModelVersionsRequest {
                filter: format!("name = '{}'", name.replace('\'', "''")),
                order_by: "version DESC".into(),
                page_size: 1,
                ..Default::default()
            })
            .await?
            .into_inner()
            .versions;
        match newest.first().filter(|v| !v.run_id.is_empty()) {
            None => Ok(None),
            Some(v) => Ok(self.version(name, v.version).await?.1),
        }
    }

    /// A version and the run that produced it (when it names one).
    pub async fn version(
        &self,
        name: &str,
        version: i64,
    ) -> Result<(pb::ModelVersion, Option<pb::Run>), ClientError> {
        let mut client = self.reader();
        let found = client
            .raw()
            .get_model_version(pb::GetModelVersionRequest {
                model_name: name.into(),
                version,
            })
            .await?
            .into_inner();
        let run = if found.run_id.is_empty() {
            None
        } else {
            match client
                .raw()
                .get_run(pb::GetRunRequest {
                    run_id: found.run_id.clone(),
                })
                .await
            {
                Ok(run) => Some(run.into_inner()),
                Err(status) if status.code() == tonic::Code::NotFound => None,
                Err(status) => return Err(status.into()),
            }
        };
        Ok((found, run))
    }

    /// Points `alias` of `name` at `version` with the approver token.
    /// `None` when the portal has no approver token.
    pub async fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: i64,
    ) -> Option<Result<pb::Alias, ClientError>> {
        let mut client = self.approver.clone()?;
        let request = pb::SetAliasRequest {
            model_name: name.into(),
            alias: alias.into(),
            version,
        };
        Some(
            client
                .raw()
                .set_alias(request)
                .await
                .map(|r| r.into_inner())
                .map_err(ClientError::from),
        )
    }
}

/// A registry timestamp as milliseconds since the epoch.
pub fn millis(t: Option<&prost_types::Timestamp>) -> Option<i64> {
    t.map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
}
