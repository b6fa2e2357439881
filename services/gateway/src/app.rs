//! The gateway service: the HTTP and gRPC listeners bound at build, then the
//! follower (registry aliases → loaded models) and both servers run until
//! shutdown.

use std::sync::Arc;

use axum::Router;
use mlops_onnx::model::LoadOptions;
use mlops_runtime::{Probes, Readiness, Service, Shutdown};
use tokio::net::TcpListener;
use tracing::info;

use crate::api::{self, ApiState};
use crate::auth::Authenticator;
use crate::config::GatewayConfig;
use crate::events;
use crate::follow::{self, Follower};
use crate::grpc::{self, InferenceService};
use crate::metrics::GatewayMetrics;
use crate::models::ModelStore;
use crate::monitor::Monitor;
use crate::monitor::log::{LogMetrics, PredictionLog};
use crate::oip::{self, ApiError, OipState};
use crate::online::{FeatureMetrics, OnlineFeatures};
use crate::portal::{
    self, PortalState,
    accounts::{AccountError, AccountStore},
};

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
    #[error("{0}")]
    Grpc(String),
    #[error("cannot create the prediction log's Kafka producer: {0}")]
    PredictionLog(#[source] rdkafka::error::KafkaError),
    #[error("the portal: {0}")]
    Portal(#[from] AccountError),
    #[error("the portal's registry client: {0}")]
    PortalRegistry(#[from] mlops_registry_client::ClientError),
}

/// How long queued predictions may take to reach the brokers at shutdown.
const SHUTDOWN_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

pub struct App {
    config: GatewayConfig,
    listener: TcpListener,
    grpc: TcpListener,
    store: Arc<ModelStore>,
    follower: Arc<Follower>,
    metrics: GatewayMetrics,
    features: Arc<OnlineFeatures>,
    monitor: Arc<Monitor>,
    accounts: Option<AccountStore>,
    readiness: Readiness,
}

impl App {
    /// Where the HTTP server listens (the port the OS chose for port 0).
    pub fn http_addr(&self) -> std::net::SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.http_addr)
    }

    /// Where the gRPC server listens.
    pub fn grpc_addr(&self) -> std::net::SocketAddr {
        self.grpc.local_addr().unwrap_or(self.config.grpc_addr)
    }

    pub fn store(&self) -> &Arc<ModelStore> {
        &self.store
    }
}

async fn bind(what: &'static str, addr: std::net::SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { what, addr, source })
}

impl Service for App {
    const NAME: &'static str = "gateway";
    type Config = GatewayConfig;
    type Error = Error;

    /// Loads ONNX Runtime, opens the portal's database (creating the
    /// bootstrap admin) and binds the HTTP and gRPC listeners; the registry
    /// is not contacted yet.
    async fn build(config: GatewayConfig, probes: Probes<'_>) -> Result<Self, Error> {
        mlops_onnx::init(&config.onnx_runtime)?;
        let accounts = match &config.portal {
            Some(portal) => Some(portal::open(portal).await?),
            None => None,
        };
        let metrics = GatewayMetrics::default();
        metrics.register(probes.metrics);
        let feature_metrics = FeatureMetrics::default();
        feature_metrics.register(probes.metrics);
        let features = Arc::new(OnlineFeatures::new(config.lake.clone(), feature_metrics));
        let listener = bind("the HTTP server", config.http_addr).await?;
        let grpc = bind("the gRPC server", config.grpc_addr).await?;
        let store = Arc::new(ModelStore::new(&config.models));
        let log_metrics = LogMetrics::default();
        log_metrics.register(probes.metrics);
        let log = match &config.prediction_log {
            Some(log) => Some(
                PredictionLog::new(&log.kafka, log.topic.clone(), log.timeout, log_metrics)
                    .map_err(Error::PredictionLog)?,
            ),
            None => None,
        };
        let monitor = Monitor::new(store.clone(), config.drift_window_rows, log, probes.metrics);
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
            grpc,
            store,
            follower,
            metrics,
            features,
            monitor,
            accounts,
            readiness: probes.readiness,
        })
    }

    async fn run(self, shutdown: Shutdown) -> Result<(), Error> {
        let Self {
            config,
            listener,
            grpc: grpc_listener,
            store,
            follower,
            metrics,
            features,
            monitor,
            accounts,
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
        if let Some(log) = &config.prediction_log {
            // Predictions wait in the producer's queue until the topic exists.
            let (kafka, topic, partitions) = (log.kafka.clone(), log.topic.clone(), log.partitions);
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                kafka
                    .keep_ensuring_topic(&topic, partitions, &shutdown)
                    .await
            });
        }
        let refreshing = tokio::spawn(features.clone().run(config.features_poll, shutdown.clone()));
        let state = OipState {
            store,
            follower,
            metrics,
            monitor: monitor.clone(),
            max_request_bytes: config.max_request_bytes,
            configured: Arc::new(config.models.clone()),
        };
        let auth = config
            .auth
            .map(|ttl| Arc::new(Authenticator::new(config.registry_url.clone(), ttl)));
        let grpc_addr = grpc_listener.local_addr().map_err(Error::Serve)?;
        let grpc_served = tokio::spawn(grpc::serve(
            grpc_listener,
            InferenceService::new(state.clone(), auth.clone()),
            config.max_request_bytes,
            shutdown.clone(),
        ));
        info!(addr = %grpc_addr, "serving inference.GRPCInferenceService");
        let api_state = ApiState {
            oip: state.clone(),
            features,
            model: config.churn_model.as_str().into(),
            rankings: Default::default(),
        };
        let portal_router = match (&accounts, &config.portal) {
            (Some(accounts), Some(portal)) => portal::router(PortalState::new(
                accounts.clone(),
                portal.clone(),
                api_state.clone(),
                &config,
            )?),
            _ => Router::new(),
        };
        let router = Router::new()
            .merge(oip::router(state, auth.clone()))
            .merge(api::router(api_state, auth))
            .merge(portal_router)
            .fallback(|uri: axum::http::Uri| async move {
                ApiError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    format!("no such endpoint: {}", uri.path()),
                )
            });
        info!(addr = %listener.local_addr().map_err(Error::Serve)?, "serving the Open Inference Protocol under /v2, the churn API under /api/v1 and the portal at /");
        // The peer address keys the portal's login throttling.
        let router = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(listener, router)
            .with_graceful_shutdown({
                let shutdown = shutdown.clone();
                async move { shutdown.wait().await }
            })
            .await
            .map_err(Error::Serve);
        shutdown.trigger();
        let grpc_served = grpc_served
            .await
            .map_err(|e| Error::Grpc(format!("the gRPC server task failed: {e}")))
            .and_then(|served| served.map_err(Error::Grpc));
        let _ = following.await;
        let _ = refreshing.await;
        if let Some(events) = events {
            let _ = events.await;
        }
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(log) = monitor.log() {
                log.flush(SHUTDOWN_FLUSH);
            }
        })
        .await;
        if let Some(accounts) = accounts {
            accounts.close().await;
        }
        served.and(grpc_served)
    }
}
