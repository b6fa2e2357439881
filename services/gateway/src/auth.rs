//! Bearer tokens on every `/v2` call except health: the registry's own
//! tokens, so one identity system serves both. A token is checked with the
//! registry's `WhoAmI` and the answer (valid or not) is cached for
//! `GATEWAY_AUTH_CACHE_SECONDS`, keyed by the token's sha256 so no token is
//! kept in memory as it was sent.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mlops_registry_client::{ClientError, RegistryClient, proto as pb};
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use crate::oip::ApiError;

/// Cached answers at most, so a flood of random tokens cannot grow memory.
const MAX_CACHED: usize = 10_000;

/// A token's sha256 → its principal (`None`: refused) and when that expires.
type Answers = HashMap<[u8; 32], (Option<String>, Instant)>;

pub struct Authenticator {
    registry_url: String,
    ttl: Duration,
    cache: Mutex<Answers>,
}

impl Authenticator {
    pub fn new(registry_url: String, ttl: Duration) -> Self {
        Self {
            registry_url,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The principal a bearer token belongs to.
    pub async fn principal(&self, token: &str) -> Result<String, ApiError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Instant::now();
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .filter(|(_, expires)| *expires > now)
            .map(|(principal, _)| principal.clone());
        let principal = match cached {
            Some(principal) => principal,
            None => {
                let principal = self.ask_registry(token).await?;
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= MAX_CACHED {
                    cache.retain(|_, (_, expires)| *expires > now);
                }
                if cache.len() < MAX_CACHED {
                    cache.insert(key, (principal.clone(), now + self.ttl));
                }
                principal
            }
        };
        principal.ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "the bearer token is not valid (unknown, revoked or expired)",
            )
        })
    }

    /// `Some(principal)` for a valid token, `None` for one the registry refuses.
    async fn ask_registry(&self, token: &str) -> Result<Option<String>, ApiError> {
        let unavailable = |e: &dyn std::fmt::Display| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the token cannot be checked: the registry is unreachable ({e})"),
            )
        };
        let secret = SecretString::from(token.to_string());
        let mut client = match RegistryClient::connect(&self.registry_url, &secret).await {
            Ok(client) => client,
            Err(ClientError::InvalidToken) => return Ok(None),
            Err(e) => return Err(unavailable(&e)),
        };
        match client.raw().who_am_i(pb::WhoAmIRequest {}).await {
            Ok(me) => Ok(Some(me.into_inner().principal)),
            Err(status) if status.code() == tonic::Code::Unauthenticated => Ok(None),
            Err(status) => Err(unavailable(&status.message())),
        }
    }
}

/// `router` with every route behind [`require_token`]; unchanged without
/// `auth` (`GATEWAY_AUTH=off`).
pub fn protect<S: Clone + Send + Sync + 'static>(
    router: axum::Router<S>,
    auth: Option<std::sync::Arc<Authenticator>>,
) -> axum::Router<S> {
    match auth {
        Some(auth) => router.route_layer(axum::middleware::from_fn_with_state(auth, require_token)),
        None => router,
    }
}

/// Middleware: a request without a valid `Authorization: Bearer` gets 401.
pub async fn require_token(
    State(auth): State<std::sync::Arc<Authenticator>>,
    request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let Some(token) = token else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "an Authorization: Bearer <token> header is required (a registry token)",
        )
        .into_response();
    };
    match auth.principal(&token).await {
        Ok(_) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}
