//! Registered models: create, read, update, archive and search.

use mlops_proto::registry::v1 as pb;
use tonic::{Request, Response, Status};

use super::RegistryService;
use crate::auth::Role;
use crate::validate;

pub(super) async fn create(
    service: &RegistryService,
    request: Request<pb::CreateRegisteredModelRequest>,
) -> Result<Response<pb::RegisteredModel>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call(
            "CreateRegisteredModel",
            &metadata,
            Role::Writer,
            |p| async move { service.store.create_model(&p, req).await },
        )
        .await
}

pub(super) async fn get(
    service: &RegistryService,
    request: Request<pb::GetRegisteredModelRequest>,
) -> Result<Response<pb::RegisteredModel>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call(
            "GetRegisteredModel",
            &metadata,
            Role::Reader,
            |_| async move {
                validate::name("name", &req.name)?;
                service.store.get_model(&req.name).await
            },
        )
        .await
}

pub(super) async fn update(
    service: &RegistryService,
    request: Request<pb::UpdateRegisteredModelRequest>,
) -> Result<Response<pb::RegisteredModel>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call(
            "UpdateRegisteredModel",
            &metadata,
            Role::Writer,
            |p| async move {
                validate::name("name", &req.name)?;
                service.store.update_model(&p, req).await
            },
        )
        .await
}

pub(super) async fn archive(
    service: &RegistryService,
    request: Request<pb::ArchiveRegisteredModelRequest>,
) -> Result<Response<pb::RegisteredModel>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call(
            "ArchiveRegisteredModel",
            &metadata,
            Role::Writer,
            |p| async move {
                validate::name("name", &req.name)?;
                service.store.archive_model(&p, &req.name).await
            },
        )
        .await
}

pub(super) async fn search(
    service: &RegistryService,
    request: Request<pb::SearchRegisteredModelsRequest>,
) -> Result<Response<pb::SearchRegisteredModelsResponse>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call(
            "SearchRegisteredModels",
            &metadata,
            Role::Reader,
            |_| async move { service.store.search_models(&req).await },
        )
        .await
}
