//! The browser portal at `/`: server-rendered pages behind a login, with
//! accounts, sessions and their audit trail in the gateway's database.
//! Every page and form checks the session and the role it needs on the
//! server; a link the navigation hides is not what keeps a user out.

pub mod accounts;
mod console;
mod dashboard;
pub mod health;
mod history;
pub mod kpi;
mod login;
mod models;
mod models_view;
mod overview;
pub mod pages;
mod predict;
pub mod registry;
mod risk;
pub mod session;
pub mod sql;
mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mlops_runtime::EnvReader;
use secrecy::{ExposeSecret, SecretString};

use crate::api::ApiState;
use accounts::{AccountError, AccountStore, Actor, Role};
use session::CookieSecure;
use sql::{SqlEngine, SqlLimits};

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
    /// `GATEWAY_SQL_MAX_ROWS` (1000), `GATEWAY_SQL_TIMEOUT_SECONDS` (10)
    /// and `GATEWAY_SQL_MEMORY_MB` (256): the SQL console's per-query limits.
    pub sql_limits: SqlLimits,
    /// `GATEWAY_PORTAL_APPROVER_TOKEN(_FILE)`: the registry token (approver
    /// role) data scientists and admins move aliases with; unset, the
    /// portal cannot promote.
    pub approver_token: Option<SecretString>,
    /// With `KAFKA_BROKERS` set, the overview reports ingest lag and dead
    /// letters from `EVENTS_TOPIC` and `DLQ_TOPIC`.
    pub kafka: Option<health::KafkaHealth>,
    /// `GATEWAY_HEALTH_STALE_MINUTES` (60) and `GATEWAY_HEALTH_LAG_RECORDS`
    /// (10000): when gold's age and ingest's lag turn amber (×3 and ×10 red).
    pub thresholds: health::Thresholds,
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
        let kafka = env.optional("KAFKA_BROKERS").map(|_| {
            let events_topic = env.string("EVENTS_TOPIC", "telecom.events.v1");
            health::KafkaHealth {
                kafka: mlops_bus::KafkaSettings::from_env(env, "gateway-portal"),
                dlq_topic: env.string("DLQ_TOPIC", &format!("{events_topic}.dlq")),
                events_topic,
            }
        });
        let thresholds = health::Thresholds {
            stale_after: Duration::from_secs(
                env.parse("GATEWAY_HEALTH_STALE_MINUTES", 60u64).max(1) * 60,
            ),
            lag_records: env.parse("GATEWAY_HEALTH_LAG_RECORDS", 10_000i64).max(1),
        };
        let defaults = SqlLimits::default();
        let sql_limits = SqlLimits {
            max_rows: env.parse("GATEWAY_SQL_MAX_ROWS", defaults.max_rows),
            timeout: Duration::from_secs(env.parse("GATEWAY_SQL_TIMEOUT_SECONDS", 10u64)),
            memory_bytes: env.parse("GATEWAY_SQL_MEMORY_MB", 256usize) << 20,
        };
        if sql_limits.max_rows == 0 || sql_limits.timeout.is_zero() || sql_limits.memory_bytes == 0
        {
            env.problem(
                "GATEWAY_SQL_MAX_ROWS, GATEWAY_SQL_TIMEOUT_SECONDS and GATEWAY_SQL_MEMORY_MB must be at least 1",
            );
        }
        Self {
            database_url: SecretString::from(database_url),
            admin_password,
            session_ttl: Duration::from_secs(session_minutes.max(1) * 60),
            cookie_secure,
            client_ip_header,
            max_failures_per_account,
            max_failures_per_address,
            failure_window: Duration::from_secs(window_minutes * 60),
            sql_limits,
            approver_token: env.secret("GATEWAY_PORTAL_APPROVER_TOKEN"),
            kafka,
            thresholds,
        }
    }
}

#[derive(Clone)]
pub struct PortalState {
    pub accounts: AccountStore,
    pub config: Arc<PortalConfig>,
    pub api: ApiState,
    pub sql: Arc<SqlEngine>,
    pub registry: registry::PortalRegistry,
    pub kpis: Arc<kpi::KpiSource>,
    pub health: Arc<health::PipelineHealth>,
    pub backgrounds: Arc<risk::BackgroundCache>,
}

impl PortalState {
    /// The portal's pieces over the gateway's lake, registry and serving.
    pub fn new(
        accounts: AccountStore,
        config: PortalConfig,
        api: ApiState,
        gateway: &crate::config::GatewayConfig,
    ) -> Result<Self, mlops_registry_client::ClientError> {
        let sql = Arc::new(SqlEngine::new(gateway.lake.clone(), config.sql_limits));
        let health = health::PipelineHealth::new(
            gateway.lake.clone(),
            config.kafka.clone(),
            config.thresholds,
            sql.clone(),
        );
        Ok(Self {
            registry: registry::PortalRegistry::new(
                &gateway.registry_url,
                &gateway.registry_token,
                config.approver_token.as_ref(),
            )?,
            accounts,
            api,
            kpis: Arc::new(kpi::KpiSource::new(gateway.lake.clone())),
            health: Arc::new(health),
            backgrounds: Arc::default(),
            sql,
            config: Arc::new(config),
        })
    }
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
        .route("/", get(overview::page))
        .route("/login", get(login::page).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/admin/users", get(users::page).post(users::create))
        .route("/admin/users/{name}/role", post(users::set_role))
        .route("/admin/users/{name}/{action}", post(users::set_state))
        .route("/admin/users/{name}/password", post(users::set_password))
        .route("/kpis", get(dashboard::page))
        .route("/churn", get(risk::ranking))
        .route("/churn/subscribers/{id}", get(risk::subscriber))
        .route("/predict", get(predict::page).post(predict::what_if))
        .route("/models", get(models::list))
        .route("/models/{name}", get(models::model))
        .route("/models/{name}/versions/{version}", get(models::version))
        .route("/models/{name}/promote", post(models::promote))
        .route("/sql", get(console::page).post(console::run))
        .route("/sql/api", post(console::api))
        .route("/static/portal.css", get(stylesheet))
        .route("/static/portal.js", get(script))
        .route("/static/vendor/uplot.js", get(uplot_script))
        .route("/static/vendor/uplot.css", get(uplot_stylesheet))
        .layer(axum::middleware::from_fn(server_timing))
        .with_state(state)
}

/// `Server-Timing: render;dur=<ms>` on every portal response: how long the
/// gateway took to build it (browsers show it in their network panel).
async fn server_timing(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(value) = header::HeaderValue::from_str(&format!("render;dur={ms:.1}")) {
        response.headers_mut().insert("server-timing", value);
    }
    response
}

async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../static/portal.css"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../static/portal.js"),
    )
}

/// uPlot, the chart library, bundled into the binary (see
/// `static/vendor/uplot/README.md` for its version and checksums).
async fn uplot_script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../static/vendor/uplot/uPlot.iife.min.js"),
    )
}

async fn uplot_stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../static/vendor/uplot/uPlot.min.css"),
    )
}
