//! Aliases: set, delete, resolve (now or at a past time) and history.
//! Protected aliases need the approver role to change.

use mlops_proto::registry::v1 as pb;
use tonic::{Request, Response, Status};

use super::RegistryService;
use crate::auth::{Principal, Role};
use crate::error::Result;
use crate::store::micros_of;
use crate::validate;

pub(super) async fn set(
    service: &RegistryService,
    request: Request<pb::SetAliasRequest>,
) -> Result<Response<pb::Alias>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call("SetAlias", &metadata, Role::Writer, |p| async move {
            validate::name("model_name", &req.model_name)?;
            validate::alias(&req.alias)?;
            service.require_alias_role(&p, &req.alias, "setting")?;
            service.store.set_alias(&p, &req).await
        })
        .await
}

pub(super) async fn delete(
    service: &RegistryService,
    request: Request<pb::DeleteAliasRequest>,
) -> Result<Response<pb::DeleteAliasResponse>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call("DeleteAlias", &metadata, Role::Writer, |p| async move {
            validate::name("model_name", &req.model_name)?;
            validate::alias(&req.alias)?;
            service.require_alias_role(&p, &req.alias, "deleting")?;
            service
                .store
                .delete_alias(&p, &req.model_name, &req.alias)
                .await?;
            Ok(pb::DeleteAliasResponse {})
        })
        .await
}

pub(super) async fn resolve(
    service: &RegistryService,
    request: Request<pb::GetModelVersionByAliasRequest>,
) -> Result<Response<pb::ModelVersion>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call(
            "GetModelVersionByAlias",
            &metadata,
            Role::Reader,
            |_| async move {
                validate::name("model_name", &req.model_name)?;
                let at = req.at_time.as_ref().map(micros_of);
                service
                    .store
                    .version_by_alias(&req.model_name, &req.alias, at)
                    .await
            },
        )
        .await
}

pub(super) async fn history(
    service: &RegistryService,
    request: Request<pb::ListAliasHistoryRequest>,
) -> Result<Response<pb::ListAliasHistoryResponse>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call(
            "ListAliasHistory",
            &metadata,
            Role::Reader,
            |_| async move {
                validate::name("model_name", &req.model_name)?;
                let entries = service
                    .store
                    .alias_history(&req.model_name, &req.alias)
                    .await?;
                Ok(pb::ListAliasHistoryResponse { entries })
            },
        )
        .await
}

impl RegistryService {
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
