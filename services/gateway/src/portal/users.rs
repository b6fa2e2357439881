//! Account management, for admins only: create accounts, change roles and
//! passwords, disable and re-enable; every change is audited. An admin
//! cannot disable or demote their own account, so the portal always keeps
//! one admin who can log in.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::PortalState;
use super::accounts::{self, AccountError, Role};
use super::pages;
use super::session::{CsrfForm, CurrentUser};

/// Audit entries the page lists.
const AUDIT_ROWS: i64 = 100;

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

/// The page, with `error` saying what was wrong with the last change.
async fn render(
    state: &PortalState,
    user: &CurrentUser,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let listed = async {
        let users = state.accounts.users().await?;
        let audit = state.accounts.audit_trail(AUDIT_ROWS).await?;
        Ok::<_, AccountError>((users, audit))
    };
    match listed.await {
        Ok((users, audit)) => (status, pages::users(user, &users, &audit, error)).into_response(),
        Err(error) => {
            tracing::error!(%error, "listing portal accounts failed");
            pages::unavailable()
        }
    }
}

/// A change's outcome as the page: the notice, or a 400 naming the problem.
async fn outcome(
    state: &PortalState,
    user: &CurrentUser,
    result: Result<(), AccountError>,
) -> Response {
    match result {
        // Post/redirect/get: a reload does not resubmit the form.
        Ok(()) => Redirect::to("/admin/users").into_response(),
        Err(AccountError::Invalid(message)) => {
            render(state, user, StatusCode::BAD_REQUEST, Some(&message)).await
        }
        Err(error) => {
            tracing::error!(%error, "a portal account change failed");
            pages::unavailable()
        }
    }
}

fn not_found(name: &str) -> AccountError {
    AccountError::Invalid(format!("there is no account {name:?}"))
}

async fn hashed(password: SecretString) -> Result<String, AccountError> {
    accounts::check_password(password.expose_secret())?;
    tokio::task::spawn_blocking(move || accounts::hash_password(password.expose_secret()))
        .await
        .map_err(|e| AccountError::Hash(e.to_string()))?
}

pub async fn page(user: CurrentUser, State(state): State<PortalState>) -> Response {
    if let Err(denied) = user.require(Role::Admin) {
        return user.refuse(denied);
    }
    render(&state, &user, StatusCode::OK, None).await
}

pub async fn create(
    user: CurrentUser,
    State(state): State<PortalState>,
    Form(form): Form<CreateForm>,
) -> Response {
    if let Err(denied) = user.may_submit(Role::Admin, &form.csrf) {
        return user.refuse(denied);
    }
    let result = async {
        let username = form.username.trim();
        accounts::check_username(username)?;
        let role: Role = form.role.parse()?;
        let hash = hashed(SecretString::from(form.password)).await?;
        state
            .accounts
            .create_user(user.actor(), username, &hash, role)
            .await?;
        Ok(())
    };
    let result = result.await;
    outcome(&state, &user, result).await
}

pub async fn set_role(
    user: CurrentUser,
    State(state): State<PortalState>,
    Path(name): Path<String>,
    Form(form): Form<RoleForm>,
) -> Response {
    if let Err(denied) = user.may_submit(Role::Admin, &form.csrf) {
        return user.refuse(denied);
    }
    let result = async {
        let role: Role = form.role.parse()?;
        if name == user.user.username && role != Role::Admin {
            return Err(AccountError::Invalid(
                "you cannot take the admin role from your own account: another admin must".into(),
            ));
        }
        match state.accounts.set_role(user.actor(), &name, role).await? {
            Some(_) => Ok(()),
            None => Err(not_found(&name)),
        }
    };
    let result = result.await;
    outcome(&state, &user, result).await
}

/// `POST /admin/users/{name}/disable` or `/enable`.
pub async fn set_state(
    user: CurrentUser,
    State(state): State<PortalState>,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let disabled = match action.as_str() {
        "disable" => true,
        "enable" => false,
        _ => return pages::message(StatusCode::NOT_FOUND, "Not found", "There is no such page."),
    };
    if let Err(denied) = user.may_submit(Role::Admin, &form.csrf) {
        return user.refuse(denied);
    }
    let result = async {
        if disabled && name == user.user.username {
            return Err(AccountError::Invalid(
                "you cannot disable your own account: another admin must".into(),
            ));
        }
        if state
            .accounts
            .set_disabled(user.actor(), &name, disabled)
            .await?
        {
            Ok(())
        } else {
            Err(not_found(&name))
        }
    };
    let result = result.await;
    outcome(&state, &user, result).await
}

pub async fn set_password(
    user: CurrentUser,
    State(state): State<PortalState>,
    Path(name): Path<String>,
    Form(form): Form<PasswordForm>,
) -> Response {
    if let Err(denied) = user.may_submit(Role::Admin, &form.csrf) {
        return user.refuse(denied);
    }
    let result = async {
        let hash = hashed(SecretString::from(form.password)).await?;
        if state
            .accounts
            .set_password(user.actor(), &name, &hash)
            .await?
        {
            Ok(())
        } else {
            Err(not_found(&name))
        }
    };
    let result = result.await;
    outcome(&state, &user, result).await
}
