//! `registered-models/…`: models, their tags and aliases, latest versions.
//!
//! MLflow's delete is the registry's archive: the versions stay for
//! lineage, the name is not reused, and the facade reports the model as
//! gone (get answers RESOURCE_DOES_NOT_EXIST, searches leave it out).

use axum::http::StatusCode;
use mlops_proto::registry::v1 as pb;
use mlops_proto::registry::v1::model_registry_server::ModelRegistry;
use serde_json::{Value, json};

use super::{Call, MlflowError, Reply, empty, filter, json as render};

/// The model, unless archived (which MLflow clients know as deleted).
async fn live_model(call: &Call, name: &str) -> Result<pb::RegisteredModel, MlflowError> {
    let model = call
        .service()
        .get_registered_model(call.grpc(pb::GetRegisteredModelRequest { name: name.into() }))
        .await?
        .into_inner();
    if model.archived {
        return Err(MlflowError::new(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            format!(
                "Registered Model with name={name} not found (it was deleted, which archives it in the registry)"
            ),
        ));
    }
    Ok(model)
}

async fn latest(
    call: &Call,
    model: &pb::RegisteredModel,
) -> Result<Option<pb::ModelVersion>, MlflowError> {
    if model.latest_version == 0 {
        return Ok(None);
    }
    let version = call
        .service()
        .get_model_version(call.grpc(pb::GetModelVersionRequest {
            model_name: model.name.clone(),
            version: model.latest_version,
        }))
        .await?
        .into_inner();
    Ok(Some(version))
}

fn model_reply(model: &pb::RegisteredModel, latest: Option<&pb::ModelVersion>) -> Reply {
    Ok(axum::Json(
        json!({"registered_model": render::registered_model(model, latest)}),
    ))
}

pub async fn create(call: Call) -> Reply {
    let request = pb::CreateRegisteredModelRequest {
        name: call.required("name")?,
        description: call.optional("description")?.unwrap_or_default(),
        tags: call.tags()?,
    };
    let model = call
        .service()
        .create_registered_model(call.grpc(request))
        .await?
        .into_inner();
    model_reply(&model, None)
}

pub async fn get(call: Call) -> Reply {
    let model = live_model(&call, &call.required("name")?).await?;
    let latest = latest(&call, &model).await?;
    model_reply(&model, latest.as_ref())
}

pub async fn search(call: Call) -> Reply {
    let mut clauses = vec!["archived = false".to_owned()];
    let translated = filter::translate(&call.optional("filter")?.unwrap_or_default(), false)?;
    if !translated.is_empty() {
        clauses.push(translated);
    }
    let request = pb::SearchRegisteredModelsRequest {
        filter: clauses.join(" AND "),
        order_by: one_order(&call, false)?,
        page_size: call.page_size(100)?,
        page_token: call.optional("page_token")?.unwrap_or_default(),
    };
    let found = call
        .service()
        .search_registered_models(call.grpc(request))
        .await?
        .into_inner();
    let mut reply = serde_json::Map::new();
    if !found.models.is_empty() {
        let models: Vec<Value> = found
            .models
            .iter()
            .map(|m| render::registered_model(m, None))
            .collect();
        reply.insert("registered_models".into(), models.into());
    }
    if !found.next_page_token.is_empty() {
        reply.insert("next_page_token".into(), found.next_page_token.into());
    }
    Ok(axum::Json(Value::Object(reply)))
}

/// The registry sorts by one key; MLflow may send several.
pub(super) fn one_order(call: &Call, versions: bool) -> Result<String, MlflowError> {
    match call.list("order_by").as_slice() {
        [] => Ok(String::new()),
        [only] => filter::order(only, versions),
        more => Err(MlflowError::invalid(format!(
            "order_by {more:?}: the registry sorts by one key"
        ))),
    }
}

async fn update_model(
    call: &Call,
    request: pb::UpdateRegisteredModelRequest,
) -> Result<pb::RegisteredModel, MlflowError> {
    live_model(call, &request.name).await?;
    Ok(call
        .service()
        .update_registered_model(call.grpc(request))
        .await?
        .into_inner())
}

pub async fn update(call: Call) -> Reply {
    let request = pb::UpdateRegisteredModelRequest {
        name: call.required("name")?,
        description: Some(call.optional("description")?.unwrap_or_default()),
        ..Default::default()
    };
    let model = update_model(&call, request).await?;
    model_reply(&model, None)
}

pub async fn set_tag(call: Call) -> Reply {
    let request = pb::UpdateRegisteredModelRequest {
        name: call.required("name")?,
        set_tags: [(
            call.required("key")?,
            call.optional("value")?.unwrap_or_default(),
        )]
        .into(),
        ..Default::default()
    };
    update_model(&call, request).await?;
    empty()
}

pub async fn delete_tag(call: Call) -> Reply {
    let request = pb::UpdateRegisteredModelRequest {
        name: call.required("name")?,
        remove_tags: vec![call.required("key")?],
        ..Default::default()
    };
    update_model(&call, request).await?;
    empty()
}

pub async fn delete(call: Call) -> Reply {
    let name = call.required("name")?;
    live_model(&call, &name).await?;
    call.service()
        .archive_registered_model(call.grpc(pb::ArchiveRegisteredModelRequest { name }))
        .await?;
    empty()
}

pub async fn set_alias(call: Call) -> Reply {
    let request = pb::SetAliasRequest {
        model_name: call.required("name")?,
        alias: call.required("alias")?,
        version: call.version("version")?,
    };
    call.service().set_alias(call.grpc(request)).await?;
    empty()
}

pub async fn delete_alias(call: Call) -> Reply {
    let request = pb::DeleteAliasRequest {
        model_name: call.required("name")?,
        alias: call.required("alias")?,
    };
    call.service().delete_alias(call.grpc(request)).await?;
    empty()
}

pub async fn get_by_alias(call: Call) -> Reply {
    let request = pb::GetModelVersionByAliasRequest {
        model_name: call.required("name")?,
        alias: call.required("alias")?,
        at_time: None,
    };
    let version = call
        .service()
        .get_model_version_by_alias(call.grpc(request))
        .await?
        .into_inner();
    Ok(axum::Json(
        json!({"model_version": render::model_version(&version)}),
    ))
}

/// Every registry version is in MLflow's stage `None` (the registry has
/// aliases instead of stages): the latest version answers for `None`, and
/// no version is in any other stage.
pub async fn latest_versions(call: Call) -> Reply {
    let model = live_model(&call, &call.required("name")?).await?;
    let stages = call.list("stages");
    let wants_none = stages.is_empty() || stages.iter().any(|s| s.eq_ignore_ascii_case("none"));
    let latest = if wants_none {
        latest(&call, &model).await?
    } else {
        None
    };
    Ok(axum::Json(match latest {
        Some(version) => json!({"model_versions": [render::model_version(&version)]}),
        None => json!({}),
    }))
}
