//! The Models pages: registered models, a model's versions with their
//! metrics side by side, alias history and audit trail, a version's
//! lineage, and promotion or rollback of an alias with a confirmation that
//! shows what changes (data scientists and admins; see [`super::registry`]).

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use mlops_registry_client::ClientError;
use serde::Deserialize;

use super::PortalState;
use super::accounts::Role;
use super::models_view as view;
use super::pages;
use super::registry::{APPROVER_ROLE, PROMOTABLE};
use super::session::CurrentUser;

#[derive(Deserialize)]
pub struct PromoteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    alias: String,
    #[serde(default)]
    version: String,
    /// `yes` once the user has seen the confirmation.
    #[serde(default)]
    confirmed: String,
}

/// A registry failure as a page: unknown names are 404, the rest 503.
fn registry_failure(user: &CurrentUser, what: &str, error: &ClientError) -> Response {
    let status = match error {
        ClientError::Status(s) if s.code() == tonic::Code::NotFound => StatusCode::NOT_FOUND,
        ClientError::Status(s) if s.code() == tonic::Code::PermissionDenied => {
            StatusCode::FORBIDDEN
        }
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    if status == StatusCode::SERVICE_UNAVAILABLE {
        tracing::warn!(%error, "{what} from the registry failed");
    }
    view::failure(user, status, &format!("{what}: {error}"))
}

pub async fn list(user: CurrentUser, State(state): State<PortalState>) -> Response {
    match state.registry.models().await {
        Ok(models) => view::list(&user, &models),
        Err(error) => registry_failure(&user, "listing the registered models", &error),
    }
}

pub async fn model(
    user: CurrentUser,
    State(state): State<PortalState>,
    Path(name): Path<String>,
) -> Response {
    match state.registry.model(&name).await {
        Ok(detail) => view::model(&user, &detail, state.registry.can_approve()),
        Err(error) => registry_failure(&user, &format!("reading model {name:?}"), &error),
    }
}

pub async fn version(
    user: CurrentUser,
    State(state): State<PortalState>,
    Path((name, version)): Path<(String, i64)>,
) -> Response {
    match state.registry.version(&name, version).await {
        Ok((found, run)) => view::version(&user, &found, run.as_ref()),
        Err(error) => registry_failure(&user, &format!("reading {name} version {version}"), &error),
    }
}

/// `POST /models/{name}/promote`: first the confirmation, then the move.
pub async fn promote(
    user: CurrentUser,
    State(state): State<PortalState>,
    Path(name): Path<String>,
    Form(form): Form<PromoteForm>,
) -> Response {
    if let Err(denied) = user.may_submit(APPROVER_ROLE, &form.csrf) {
        return user.refuse(denied);
    }
    let bad = |text: &str| view::failure(&user, StatusCode::BAD_REQUEST, text);
    if !PROMOTABLE.contains(&form.alias.as_str()) {
        return bad(&format!(
            "the portal moves only {}; {:?} is not one of them",
            PROMOTABLE.map(|a| format!("@{a}")).join(" and "),
            form.alias
        ));
    }
    let Ok(version) = form.version.trim().parse::<i64>() else {
        return bad(&format!("version {:?} is not a number", form.version));
    };
    let detail = match state.registry.model(&name).await {
        Ok(detail) => detail,
        Err(error) => return registry_failure(&user, &format!("reading model {name:?}"), &error),
    };
    let Some(candidate) = detail.version(version) else {
        return bad(&format!("{name} has no version {version}"));
    };
    let current = detail.aliased(&form.alias);
    if current.is_some_and(|c| c.version == version) {
        return bad(&format!(
            "@{} already points at version {version}",
            form.alias
        ));
    }
    if form.confirmed != "yes" {
        return view::confirm(&user, &name, &form.alias, current, candidate);
    }
    let from = current.map_or_else(|| "none".to_owned(), |c| c.version.to_string());
    match state.registry.set_alias(&name, &form.alias, version).await {
        None => view::failure(
            &user,
            StatusCode::SERVICE_UNAVAILABLE,
            "promotion is not configured: the gateway needs GATEWAY_PORTAL_APPROVER_TOKEN \
             (a registry token with the approver role)",
        ),
        Some(Err(error)) => {
            registry_failure(&user, &format!("moving {name}@{}", form.alias), &error)
        }
        Some(Ok(_)) => {
            let detail = format!("{name}@{} {from} -> {version}", form.alias);
            if let Err(error) = state
                .accounts
                .audit(user.actor(), "alias_set", &name, &detail)
                .await
            {
                tracing::error!(%error, "auditing an alias move failed");
            }
            tracing::info!(user = %user.user.username, %detail, "alias moved from the portal");
            Redirect::to(&format!("/models/{}", pages::url_encode(&name))).into_response()
        }
    }
}

/// Whether `role` sees the promotion forms.
pub fn may_promote(role: Role) -> bool {
    role >= APPROVER_ROLE
}
