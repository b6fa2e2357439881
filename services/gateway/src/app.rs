//! The gateway service: the HTTP listener bound at build, then the follower
//! (registry aliases → loaded models) and the server run until shutdown.

use std::sync::Arc;

use axum::Router;
use mlops_onnx::model::LoadOptions;
use mlops_runtime::{Probes, Readiness, Service, Shutdown};
use tokio::net::TcpListener;
use tracing::info;

use crate::auth::Authenticator;
use crate::config::GatewayConfig;
use crate::events;
use crate::follow::{self, Follower};
use crate::metrics::GatewayMetrics;
use crate::models::ModelStore;
use crate::oip::{self, ApiError, OipState};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Onnx(#[from] mlops_onnx::Error),
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

pub struct App {
    config: GatewayConfig,
    listener: TcpListener,
    store: Arc<ModelStore>,
    follower: Arc<Follower>,
    metrics: GatewayMetrics,
    readiness: Readiness,
}

impl App {
    /// Where the HTTP server listens (the port the OS chose for port 0).
    pub fn http_addr(&self) -> std::net::SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.http_addr)
    }

    pub fn store(&self) -> &Arc<ModelStore> {
        &self.store
    }
}

impl Service for App {
    const NAME: &'static str = "gateway";
    type Config = GatewayConfig;
    type Error = Error;

    /// Loads ONNX Runtime and binds the HTTP listener; the registry is not
    /// contacted yet.
    async fn build(config: GatewayConfig, probes: Probes<'_>) -> Result<Self, Error> {
        mlops_onnx::init(&config.onnx_runtime)?;
        let metrics = GatewayMetrics::default();
        metrics.register(probes.metrics);
        let listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|source| Error::Bind {
                what: "the HTTP server",
                addr: config.http_addr,
                source,
            })?;
        let store = Arc::new(ModelStore::new(&config.models));
        let follower = Arc::new(Follower::new(
            store.clone(),
            metrics.clone(),
            config.registry_url.clone(),
            config.registry_token.clone(),
            LoadOptions {
                sessions: config.sessions_per_model,
                intra_threads: 1,
            },
            probes.readiness.clone(),
        ));
        Ok(Self {
            config,
            listener,
            store,
            follower,
            metrics,
            readiness: probes.readiness,
        })
    }

    async fn run(self, shutdown: Shutdown) -> Result<(), Error> {
        let Self {
            config,
            listener,
            store,
            follower,
            metrics,
            readiness,
        } = self;
        readiness.set_detail(store.report());
        let (wake, woken) = follow::wake_channel();
        let following = tokio::spawn(follower.clone().run(config.poll, woken, shutdown.clone()));
        let events = config.events.clone().map(|(kafka, topic)| {
            tokio::spawn(events::follow(
                kafka,
                topic,
                wake.clone(),
                metrics.clone(),
                shutdown.clone(),
            ))
        });
        let state = OipState {
            store,
            follower,
            metrics,
            max_request_bytes: config.max_request_bytes,
            configured: Arc::new(config.models.clone()),
        };
        let auth = config
            .auth
            .map(|ttl| Arc::new(Authenticator::new(config.registry_url.clone(), ttl)));
        let router = Router::new().merge(oip::router(state, auth)).fallback(
            |uri: axum::http::Uri| async move {
                ApiError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    format!("no such endpoint: {}", uri.path()),
                )
            },
        );
        info!(addr = %listener.local_addr().map_err(Error::Serve)?, "serving the Open Inference Protocol under /v2");
        let served = axum::serve(listener, router)
            .with_graceful_shutdown({
                let shutdown = shutdown.clone();
                async move { shutdown.wait().await }
            })
            .await
            .map_err(Error::Serve);
        shutdown.trigger();
        let _ = following.await;
        if let Some(events) = events {
            let _ = events.await;
        }
        served
    }
}
