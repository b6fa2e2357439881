//! Who is asking: the session cookie, the client's address, the role a
//! page needs and the CSRF token every state-changing form carries.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::PortalState;
use super::accounts::{Actor, Role, SessionUser};
use super::pages;

pub const SESSION_COOKIE: &str = "mlops_session";
/// Double-submit token of the login form, before any session exists.
pub const LOGIN_COOKIE: &str = "mlops_login";

/// `GATEWAY_COOKIE_SECURE`: whether cookies get the `Secure` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookieSecure {
    Always,
    Never,
    /// When the request came over TLS, as a proxy in front reports with
    /// `X-Forwarded-Proto: https`.
    Auto,
}

impl CookieSecure {
    fn applies(self, headers: &HeaderMap) -> bool {
        match self {
            CookieSecure::Always => true,
            CookieSecure::Never => false,
            CookieSecure::Auto => headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("https")),
        }
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for `name`: HttpOnly, SameSite=Lax, the whole site;
/// `max_age` 0 deletes it.
pub fn set_cookie(
    state: &PortalState,
    headers: &HeaderMap,
    name: &str,
    value: &str,
    max_age: u64,
) -> HeaderValue {
    let secure = if state.config.cookie_secure.applies(headers) {
        "; Secure"
    } else {
        ""
    };
    let cookie =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Constant-time equality, for tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The client's address: the configured header (`GATEWAY_CLIENT_IP_HEADER`,
/// set by the proxy in front) or the connection's peer.
pub fn client_address(state: &PortalState, parts: &Parts) -> String {
    if let Some(name) = &state.config.client_ip_header
        && let Some(value) = parts.headers.get(name).and_then(|v| v.to_str().ok())
    {
        // X-Forwarded-For lists hops; the last one is what our proxy saw.
        if let Some(last) = value.rsplit(',').next() {
            return last.trim().to_owned();
        }
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
}

/// A logged-in user, for pages and forms. Without a live session, a page
/// request is sent to the login page.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub user: SessionUser,
    pub address: String,
    pub session_id: String,
}

impl CurrentUser {
    pub fn actor(&self) -> Actor<'_> {
        Actor {
            username: &self.user.username,
            address: &self.address,
        }
    }

    /// Unless the user holds `role` or a higher one, `Denied::Role`.
    pub fn require(&self, role: Role) -> Result<(), Denied> {
        if self.user.role >= role {
            Ok(())
        } else {
            Err(Denied::Role(role))
        }
    }

    /// Unless `given` is this session's CSRF token, `Denied::Csrf`.
    pub fn check_csrf(&self, given: &str) -> Result<(), Denied> {
        if same_token(given, &self.user.csrf_token) {
            Ok(())
        } else {
            Err(Denied::Csrf)
        }
    }

    /// A form submission: the role, then the form's CSRF token.
    pub fn may_submit(&self, role: Role, csrf: &str) -> Result<(), Denied> {
        self.require(role).and_then(|()| self.check_csrf(csrf))
    }

    /// The 403 page for `denied`.
    pub fn refuse(&self, denied: Denied) -> Response {
        match denied {
            Denied::Role(needs) => pages::forbidden(self, needs),
            Denied::Csrf => pages::message(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form is no longer valid (its CSRF token does not match your session). \
                 Reload the page and try again.",
            ),
        }
    }
}

/// A form whose only field is the session's CSRF token (logout, enable,
/// disable).
#[derive(serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// Why a logged-in user may not do what they asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// The page or form needs this role.
    Role(Role),
    /// The form's CSRF token is not the session's.
    Csrf,
}

impl FromRequestParts<PortalState> for CurrentUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &PortalState) -> Result<Self, Response> {
        let address = client_address(state, parts);
        if let Some(id) = cookie(&parts.headers, SESSION_COOKIE) {
            match state.accounts.session(id).await {
                Ok(Some(user)) => {
                    return Ok(CurrentUser {
                        user,
                        address,
                        session_id: id.to_owned(),
                    });
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(%error, "looking up a portal session failed");
                    return Err(pages::unavailable());
                }
            }
        }
        let next = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        Err(Redirect::to(&format!("/login?next={}", pages::url_encode(&next))).into_response())
    }
}

/// The client's address (see [`client_address`]), for handlers without a
/// session yet.
pub struct ClientAddress(pub String);

impl FromRequestParts<PortalState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PortalState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(client_address(state, parts)))
    }
}
