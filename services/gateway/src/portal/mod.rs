//! The browser portal at `/`: server-rendered pages behind a login, with
//! accounts, sessions and their audit trail in the gateway's database.
//! Every page and form checks the session and the role it needs on the
//! server; a link the navigation hides is not what keeps a user out.

pub mod accounts;
mod login;
pub mod pages;
pub mod session;
mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mlops_runtime::EnvReader;
use secrecy::{ExposeSecret, SecretString};

use crate::api::ApiState;
use accounts::{AccountError, AccountStore, Actor, Role};
use session::{CookieSecure, CurrentUser};

/// The bootstrap account, created from `GATEWAY_ADMIN_PASSWORD(_FILE)`.
pub const BOOTSTRAP_ADMIN: &str = "admin";

#[derive(Clone, Debug)]
pub struct PortalConfig {
    /// `DATABASE_URL` (default `sqlite://data/gateway.db?mode=rwc`).
    pub database_url: SecretString,
    /// `GATEWAY_ADMIN_PASSWORD(_FILE)`: the password the `admin` account
    /// is created with when it does not exist.
    pub admin_password: Option<SecretString>,
    /// `GATEWAY_SESSION_MINUTES` (480): a session's lifetime from login.
    pub session_ttl: Duration,
    /// `GATEWAY_COOKIE_SECURE` (`auto`, `true` or `false`).
    pub cookie_secure: CookieSecure,
    /// `GATEWAY_CLIENT_IP_HEADER`: the header a trusted proxy puts the
    /// client's address in; unset, the connection's peer address.
    pub client_ip_header: Option<String>,
    /// `GATEWAY_LOGIN_MAX_FAILURES` (5) per account and
    /// `GATEWAY_LOGIN_MAX_FAILURES_PER_ADDRESS` (20) per address, over
    /// `GATEWAY_LOGIN_WINDOW_MINUTES` (15): more get 429 until the window
    /// has passed.
    pub max_failures_per_account: i64,
    pub max_failures_per_address: i64,
    pub failure_window: Duration,
}

impl PortalConfig {
    pub fn from_env(env: &mut EnvReader) -> Self {
        let database_url = env.string("DATABASE_URL", "sqlite://data/gateway.db?mode=rwc");
        let admin_password = env.secret("GATEWAY_ADMIN_PASSWORD");
        if let Some(password) = &admin_password
            && let Err(error) = accounts::check_password(password.expose_secret())
        {
            env.problem(format!("GATEWAY_ADMIN_PASSWORD: {error}"));
        }
        let session_minutes = env.parse("GATEWAY_SESSION_MINUTES", 480u64);
        if session_minutes == 0 {
            env.problem("GATEWAY_SESSION_MINUTES must be at least 1");
        }
        let cookie_secure = match env.string("GATEWAY_COOKIE_SECURE", "auto").as_str() {
            "auto" => CookieSecure::Auto,
            "true" => CookieSecure::Always,
            "false" => CookieSecure::Never,
            other => {
                env.problem(format!(
                    "GATEWAY_COOKIE_SECURE={other:?}: expected `auto`, `true` or `false`"
                ));
                CookieSecure::Auto
            }
        };
        let client_ip_header = env
            .optional("GATEWAY_CLIENT_IP_HEADER")
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty());
        let max_failures_per_account = env.parse("GATEWAY_LOGIN_MAX_FAILURES", 5i64).max(1);
        let max_failures_per_address = env
            .parse("GATEWAY_LOGIN_MAX_FAILURES_PER_ADDRESS", 20i64)
            .max(1);
        let window_minutes = env.parse("GATEWAY_LOGIN_WINDOW_MINUTES", 15u64).max(1);
        Self {
            database_url: SecretString::from(database_url),
            admin_password,
            session_ttl: Duration::from_secs(session_minutes.max(1) * 60),
            cookie_secure,
            client_ip_header,
            max_failures_per_account,
            max_failures_per_address,
            failure_window: Duration::from_secs(window_minutes * 60),
        }
    }
}

#[derive(Clone)]
pub struct PortalState {
    pub accounts: AccountStore,
    pub config: Arc<PortalConfig>,
    pub api: ApiState,
}

/// Opens (and migrates) the portal's database and makes sure an admin can
/// log in: the bootstrap account is created from the configured password
/// when it does not exist, and with neither, the gateway does not start.
pub async fn open(config: &PortalConfig) -> Result<AccountStore, AccountError> {
    let accounts = AccountStore::open(config.database_url.expose_secret()).await?;
    if accounts.user(BOOTSTRAP_ADMIN).await?.is_none() {
        let Some(password) = &config.admin_password else {
            return Err(AccountError::Invalid(
                "the portal has no admin account yet: set GATEWAY_ADMIN_PASSWORD or \
                 GATEWAY_ADMIN_PASSWORD_FILE to create it"
                    .into(),
            ));
        };
        let password = password.clone();
        let hash =
            tokio::task::spawn_blocking(move || accounts::hash_password(password.expose_secret()))
                .await
                .map_err(|e| AccountError::Hash(e.to_string()))??;
        let actor = Actor {
            username: "",
            address: "bootstrap",
        };
        accounts
            .create_user(actor, BOOTSTRAP_ADMIN, &hash, Role::Admin)
            .await?;
        tracing::info!(
            user = BOOTSTRAP_ADMIN,
            "created the portal's bootstrap account"
        );
    }
    Ok(accounts)
}

pub fn router(state: PortalState) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/login", get(login::page).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/admin/users", get(users::page).post(users::create))
        .route("/admin/users/{name}/role", post(users::set_role))
        .route("/admin/users/{name}/{action}", post(users::set_state))
        .route("/admin/users/{name}/password", post(users::set_password))
        .route("/static/portal.css", get(stylesheet))
        .with_state(state)
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../static/portal.css"),
    )
        .into_response()
}

async fn overview(user: CurrentUser, State(state): State<PortalState>) -> Response {
    let models = state.api.oip.index(false);
    let features = state.api.features.current();
    pages::overview(&user, &models, features.as_deref()).into_response()
}
