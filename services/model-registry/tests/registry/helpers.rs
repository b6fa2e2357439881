//! Calls more than one scenario makes.

use mlops_registry_client::proto as pb;

pub(crate) async fn get_version(
    client: &mut mlops_registry_client::RegistryClient,
    model: &str,
    version: i64,
) -> pb::ModelVersion {
    client
        .raw()
        .get_model_version(pb::GetModelVersionRequest {
            model_name: model.into(),
            version,
        })
        .await
        .expect("get version")
        .into_inner()
}

pub(crate) async fn set_alias(
    client: &mut mlops_registry_client::RegistryClient,
    model: &str,
    alias: &str,
    version: i64,
) -> Result<pb::Alias, tonic::Status> {
    client
        .raw()
        .set_alias(pb::SetAliasRequest {
            model_name: model.into(),
            alias: alias.into(),
            version,
        })
        .await
        .map(|r| r.into_inner())
}
