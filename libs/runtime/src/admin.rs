//! The admin HTTP server every service exposes: `/livez`, `/readyz` and
//! `/metrics` (Prometheus text format).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::Shutdown;

/// Whether the service can take work. Services flip it on when their
/// dependencies are reachable and off as the first step of shutdown; a
/// detail (what is loaded, why not ready) follows the verdict in `/readyz`.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<ReadinessState>);

#[derive(Debug, Default)]
struct ReadinessState {
    ready: AtomicBool,
    detail: Mutex<String>,
}

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.ready.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::SeqCst)
    }

    /// Lines shown under the verdict in `/readyz`.
    pub fn set_detail(&self, detail: impl Into<String>) {
        *self.0.detail.lock().unwrap_or_else(|p| p.into_inner()) = detail.into();
    }

    pub fn detail(&self) -> String {
        self.0
            .detail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[derive(Clone)]
struct AdminState {
    readiness: Readiness,
    registry: Arc<Mutex<Registry>>,
}

/// A bound admin server; `local_addr` reports the port (useful with port 0).
pub struct AdminServer {
    listener: TcpListener,
    router: Router,
}

impl AdminServer {
    /// Binds the listener now so callers learn the port before serving.
    pub async fn bind(
        addr: SocketAddr,
        registry: Registry,
        readiness: Readiness,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let state = AdminState {
            readiness,
            registry: Arc::new(Mutex::new(registry)),
        };
        let router = Router::new()
            .route("/livez", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(state);
        Ok(Self { listener, router })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until shutdown is triggered.
    pub async fn serve(self, shutdown: Shutdown) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move { shutdown.wait().await })
            .await
    }
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    let (status, verdict) = if state.readiness.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    };
    let detail = state.readiness.detail();
    if detail.is_empty() {
        (status, verdict.to_string())
    } else {
        (status, format!("{verdict}\n{detail}\n"))
    }
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    let mut body = String::new();
    let encoded = match state.registry.lock() {
        Ok(registry) => prometheus_client::encoding::text::encode(&mut body, &registry),
        Err(_) => Err(std::fmt::Error),
    };
    match encoded {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed").into_response(),
    }
}
