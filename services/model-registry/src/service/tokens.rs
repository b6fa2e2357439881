//! API tokens (admin only) and `WhoAmI`, the caller's own identity.

use mlops_proto::registry::v1 as pb;
use secrecy::ExposeSecret;
use tonic::{Request, Response, Status};

use super::RegistryService;
use crate::auth::Role;

pub(super) async fn create(
    service: &RegistryService,
    request: Request<pb::CreateApiTokenRequest>,
) -> Result<Response<pb::CreateApiTokenResponse>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call("CreateApiToken", &metadata, Role::Admin, |p| async move {
            let role = Role::from_proto(req.role)?;
            let (token, secret) = service.store.create_token(&p, &req.name, role).await?;
            Ok(pb::CreateApiTokenResponse {
                token: Some(token),
                secret: secret.expose_secret().to_string(),
            })
        })
        .await
}

pub(super) async fn list(
    service: &RegistryService,
    request: Request<pb::ListApiTokensRequest>,
) -> Result<Response<pb::ListApiTokensResponse>, Status> {
    let (metadata, _, _) = request.into_parts();
    service
        .call("ListApiTokens", &metadata, Role::Admin, |_| async move {
            Ok(pb::ListApiTokensResponse {
                tokens: service.store.list_tokens().await?,
            })
        })
        .await
}

pub(super) async fn revoke(
    service: &RegistryService,
    request: Request<pb::RevokeApiTokenRequest>,
) -> Result<Response<pb::ApiToken>, Status> {
    let (metadata, _, req) = request.into_parts();
    service
        .call("RevokeApiToken", &metadata, Role::Admin, |p| async move {
            service.store.revoke_token(&p, &req.token_id).await
        })
        .await
}

pub(super) async fn who_am_i(
    service: &RegistryService,
    request: Request<pb::WhoAmIRequest>,
) -> Result<Response<pb::WhoAmIResponse>, Status> {
    let (metadata, _, _) = request.into_parts();
    service
        .call("WhoAmI", &metadata, Role::Reader, |p| async move {
            Ok(pb::WhoAmIResponse {
                principal: p.name,
                role: p.role.to_proto() as i32,
            })
        })
        .await
}
