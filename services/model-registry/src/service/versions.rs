//! Model versions: create, read and search (artifacts live in
//! `artifacts`, aliases in `aliases`).

use mlops_proto::registry::v1 as pb;
use tonic::{Request, Response, Status};

use super::RegistryService;
use crate::auth::Role;
use crate::validate;

pub(super) async fn create(
    service: &RegistryService,
    request: Request<pb::CreateModelVersionRequest>,
) -> Result<Response<pb::ModelVersion>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call(
            "CreateModelVersion",
            &metadata,
            Role::Writer,
            |p| async move { service.store.create_version(&p, req).await },
        )
        .await
}

pub(super) async fn get(
    service: &RegistryService,
    request: Request<pb::GetModelVersionRequest>,
) -> Result<Response<pb::ModelVersion>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call("GetModelVersion", &metadata, Role::Reader, |_| async move {
            validate::name("model_name", &req.model_name)?;
            service
                .store
                .get_version(&req.model_name, req.version)
                .await
        })
        .await
}

pub(super) async fn search(
    service: &RegistryService,
    request: Request<pb::SearchModelVersionsRequest>,
) -> Result<Response<pb::SearchModelVersionsResponse>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call(
            "SearchModelVersions",
            &metadata,
            Role::Reader,
            |_| async move { service.store.search_versions(&req).await },
        )
        .await
}

pub(super) async fn update(
    service: &RegistryService,
    request: Request<pb::UpdateModelVersionRequest>,
) -> Result<Response<pb::ModelVersion>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call(
            "UpdateModelVersion",
            &metadata,
            Role::Writer,
            |p| async move { service.store.update_version(&p, req).await },
        )
        .await
}
