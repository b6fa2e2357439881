//! Training runs: create, read, update and delete.

use mlops_proto::registry::v1 as pb;
use tonic::{Request, Response, Status};

use super::RegistryService;
use crate::auth::Role;

pub(super) async fn create(
    service: &RegistryService,
    request: Request<pb::CreateRunRequest>,
) -> Result<Response<pb::Run>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call("CreateRun", &metadata, Role::Writer, |p| async move {
            service.store.create_run(&p, req).await
        })
        .await
}

pub(super) async fn get(
    service: &RegistryService,
    request: Request<pb::GetRunRequest>,
) -> Result<Response<pb::Run>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call("GetRun", &metadata, Role::Reader, |_| async move {
            service.store.get_run(&req.run_id).await
        })
        .await
}

pub(super) async fn update(
    service: &RegistryService,
    request: Request<pb::UpdateRunRequest>,
) -> Result<Response<pb::Run>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call("UpdateRun", &metadata, Role::Writer, |p| async move {
            service.store.update_run(&p, req).await
        })
        .await
}

pub(super) async fn delete(
    service: &RegistryService,
    request: Request<pb::DeleteRunRequest>,
) -> Result<Response<pb::DeleteRunResponse>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call("DeleteRun", &metadata, Role::Writer, |p| async move {
            service.store.delete_run(&p, &req.run_id).await?;
            Ok(pb::DeleteRunResponse {})
        })
        .await
}
