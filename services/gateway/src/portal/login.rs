//! Logging in and out. Failed logins are audited and counted per account
//! and per address over a window (in the database, so every replica sees
//! the same count); past the limit a login is refused before its password
//! is even checked.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::SecretString;
use serde::Deserialize;

use super::PortalState;
use super::accounts::{self, Actor, now_ms};
use super::pages;
use super::session::{self, ClientAddress, CsrfForm, CurrentUser, LOGIN_COOKIE, SESSION_COOKIE};

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

/// Where to go after logging in: a path on this site only.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next
    } else {
        "/"
    }
}

/// The login form, with a fresh double-submit token in a cookie and the form.
fn form(
    state: &PortalState,
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    username: &str,
    error: Option<&str>,
) -> Response {
    let token = accounts::random_token();
    let cookie = session::set_cookie(state, headers, LOGIN_COOKIE, &token, 3600);
    let body = pages::login(&token, safe_next(next), username, error);
    (status, [(header::SET_COOKIE, cookie)], body).into_response()
}

pub async fn page(
    State(state): State<PortalState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    form(&state, &headers, StatusCode::OK, &query.next, "", None)
}

pub async fn submit(
    State(state): State<PortalState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    Form(login): Form<LoginForm>,
) -> Response {
    let expected = session::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !session::same_token(&login.csrf, expected) {
        let error = "the login form expired (its token does not match this browser's): try again";
        return form(
            &state,
            &headers,
            StatusCode::FORBIDDEN,
            &login.next,
            &login.username,
            Some(error),
        );
    }
    let username = login.username.trim().to_owned();
    let anonymous = Actor {
        username: "",
        address: &address,
    };
    match attempt(
        &state,
        anonymous,
        &username,
        SecretString::from(login.password),
    )
    .await
    {
        Ok(Outcome::LoggedIn(id)) => {
            let ttl = state.config.session_ttl.as_secs();
            let mut response = Redirect::to(safe_next(&login.next)).into_response();
            let cookies = response.headers_mut();
            cookies.append(
                header::SET_COOKIE,
                session::set_cookie(&state, &headers, SESSION_COOKIE, &id, ttl),
            );
            cookies.append(
                header::SET_COOKIE,
                session::set_cookie(&state, &headers, LOGIN_COOKIE, "", 0),
            );
            response
        }
        Ok(Outcome::Refused) => form(
            &state,
            &headers,
            StatusCode::UNAUTHORIZED,
            &login.next,
            &username,
            Some("wrong username or password, or the account is disabled"),
        ),
        Ok(Outcome::Throttled) => {
            let minutes = state.config.failure_window.as_secs().div_ceil(60);
            let error = format!(
                "too many failed logins for this account or from this address: try again in \
                 {minutes} minutes"
            );
            form(
                &state,
                &headers,
                StatusCode::TOO_MANY_REQUESTS,
                &login.next,
                &username,
                Some(&error),
            )
        }
        Err(error) => {
            tracing::error!(%error, "a portal login failed");
            pages::unavailable()
        }
    }
}

enum Outcome {
    LoggedIn(String),
    Refused,
    Throttled,
}

async fn attempt(
    state: &PortalState,
    anonymous: Actor<'_>,
    username: &str,
    password: SecretString,
) -> Result<Outcome, accounts::AccountError> {
    let config = &state.config;
    let since = now_ms() - config.failure_window.as_millis() as i64;
    let (by_account, by_address) = state
        .accounts
        .recent_failures(username, anonymous.address, since)
        .await?;
    if by_account >= config.max_failures_per_account
        || by_address >= config.max_failures_per_address
    {
        let detail =
            format!("{by_account} failures for the account, {by_address} from the address");
        state
            .accounts
            .audit(anonymous, "login_throttled", username, &detail)
            .await?;
        return Ok(Outcome::Throttled);
    }
    let stored = state.accounts.login_hash(username).await?;
    let hash = stored.as_ref().map(|(hash, _)| hash.clone());
    // Argon2 takes tens of milliseconds of CPU: off the async workers.
    let verified = tokio::task::spawn_blocking(move || {
        use secrecy::ExposeSecret;
        match hash {
            Some(hash) => accounts::verify_password(password.expose_secret(), &hash),
            None => {
                accounts::decoy_verify(password.expose_secret());
                false
            }
        }
    })
    .await
    .unwrap_or(false);
    if !verified {
        let detail = if stored.is_some() {
            "wrong password"
        } else {
            "unknown or disabled account"
        };
        state
            .accounts
            .audit(anonymous, "login_failed", username, detail)
            .await?;
        return Ok(Outcome::Refused);
    }
    let actor = Actor {
        username,
        address: anonymous.address,
    };
    let id = state
        .accounts
        .open_session(actor, config.session_ttl)
        .await?;
    Ok(Outcome::LoggedIn(id))
}

pub async fn logout(
    user: CurrentUser,
    State(state): State<PortalState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(denied) = user.check_csrf(&form.csrf) {
        return user.refuse(denied);
    }
    if let Err(error) = state
        .accounts
        .close_session(user.actor(), &user.session_id)
        .await
    {
        tracing::error!(%error, "closing a portal session failed");
        return pages::unavailable();
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(&state, &headers, SESSION_COOKIE, "", 0),
    );
    response
}
