//! `model-versions/…`: read, search, describe and tag versions.

use mlops_proto::registry::v1 as pb;
use mlops_proto::registry::v1::model_registry_server::ModelRegistry;
use serde_json::{Value, json};

use super::{Call, MlflowError, Reply, empty, filter, json as render, models::one_order};

pub async fn get(call: Call) -> Reply {
    let request = pb::GetModelVersionRequest {
        model_name: call.required("name")?,
        version: call.version("version")?,
    };
    let version = call
        .service()
        .get_model_version(call.grpc(request))
        .await?
        .into_inner();
    Ok(axum::Json(
        json!({"model_version": render::model_version(&version)}),
    ))
}

pub async fn search(call: Call) -> Reply {
    let request = pb::SearchModelVersionsRequest {
        filter: filter::translate(&call.optional("filter")?.unwrap_or_default(), true)?,
        order_by: one_order(&call, true)?,
        page_size: call.page_size(10_000)?,
        page_token: call.optional("page_token")?.unwrap_or_default(),
    };
    let found = call
        .service()
        .search_model_versions(call.grpc(request))
        .await?
        .into_inner();
    let mut reply = serde_json::Map::new();
    if !found.versions.is_empty() {
        let versions: Vec<Value> = found.versions.iter().map(render::model_version).collect();
        reply.insert("model_versions".into(), versions.into());
    }
    if !found.next_page_token.is_empty() {
        reply.insert("next_page_token".into(), found.next_page_token.into());
    }
    Ok(axum::Json(Value::Object(reply)))
}

async fn update_version(
    call: &Call,
    request: pb::UpdateModelVersionRequest,
) -> Result<pb::ModelVersion, MlflowError> {
    Ok(call
        .service()
        .update_model_version(call.grpc(request))
        .await?
        .into_inner())
}

pub async fn update(call: Call) -> Reply {
    let request = pb::UpdateModelVersionRequest {
        model_name: call.required("name")?,
        version: call.version("version")?,
        description: Some(call.optional("description")?.unwrap_or_default()),
        ..Default::default()
    };
    let version = update_version(&call, request).await?;
    Ok(axum::Json(
        json!({"model_version": render::model_version(&version)}),
    ))
}

pub async fn set_tag(call: Call) -> Reply {
    let request = pb::UpdateModelVersionRequest {
        model_name: call.required("name")?,
        version: call.version("version")?,
        set_tags: [(
            call.required("key")?,
            call.optional("value")?.unwrap_or_default(),
        )]
        .into(),
        ..Default::default()
    };
    update_version(&call, request).await?;
    empty()
}

pub async fn delete_tag(call: Call) -> Reply {
    let request = pb::UpdateModelVersionRequest {
        model_name: call.required("name")?,
        version: call.version("version")?,
        remove_tags: vec![call.required("key")?],
        ..Default::default()
    };
    update_version(&call, request).await?;
    empty()
}

/// Stages are refused: the registry promotes with aliases.
pub async fn transition_stage(_call: Call) -> Reply {
    Err(MlflowError::invalid(
        "model version stages are not supported: the registry promotes with aliases; \
         set one with registered-models/alias (MlflowClient.set_registered_model_alias), \
         e.g. @champion",
    ))
}
