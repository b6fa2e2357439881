//! Reading the audit log.

use mlops_proto::registry::v1 as pb;
use tonic::{Request, Response, Status};

use super::RegistryService;
use crate::auth::Role;

pub(super) async fn list(
    service: &RegistryService,
    request: Request<pb::ListAuditEventsRequest>,
) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call("ListAuditEvents", &metadata, Role::Reader, |_| async move {
            service.store.list_audit_events(req).await
        })
        .await
}
