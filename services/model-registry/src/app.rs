//! Wiring: store, artifacts, gRPC server (registry, health, reflection),
//! admin server, readiness checks and the outbox relay.

use std::net::SocketAddr;
use std::time::Duration;

use mlops_proto::registry::v1::model_registry_server::ModelRegistryServer;
use mlops_runtime::{Probes, Readiness, Service, Shutdown};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::artifacts::ArtifactStore;
use crate::auth::BootstrapToken;
use crate::config::RegistryConfig;
use crate::error::{Error, Result};
use crate::metrics::RegistryMetrics;
use crate::relay::OutboxRelay;
use crate::service::RegistryService;
use crate::store::{Store, StoreOptions};

/// Largest gRPC message accepted (upload chunks are 1 MiB by convention).
const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

pub struct App {
    config: RegistryConfig,
    store: Store,
    service: RegistryService,
    grpc: TcpListener,
    http: TcpListener,
    readiness: Readiness,
    metrics: RegistryMetrics,
}

/// Connects to the database, migrating it when configured, so a bad URL or
/// a failed migration stops the service before it listens.
pub async fn connect_store(config: &RegistryConfig) -> Result<Store> {
    let url = config.database_url.expose_secret();
    let sqlite_dir = sqlite_file(url)
        .and_then(|path| std::path::Path::new(path).parent())
        .filter(|dir| !dir.as_os_str().is_empty());
    if let Some(dir) = sqlite_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Internal(format!("creating {}: {e}", dir.display())))?;
    }
    let options = StoreOptions {
        max_connections: config.database_max_connections,
        events_topic: config.events_topic.clone(),
        ..StoreOptions::default()
    };
    // Wait for a database that is still starting (a fresh Postgres pod)
    // instead of crash-looping; give up after DATABASE_WAIT_SECONDS.
    let deadline = tokio::time::Instant::now() + config.database_wait;
    loop {
        match Store::connect(url, options.clone()).await {
            Ok(store) => return Ok(store),
            Err(Error::Database(error))
                if tokio::time::Instant::now() < deadline && is_transient(&error) =>
            {
                tracing::warn!(%error, "waiting for the database");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Connection failures worth retrying at start-up (not bad credentials or
/// a malformed URL).
fn is_transient(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_)
    ) || matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("57P03"))
}

/// The file of a `sqlite://path?…` URL, if it names one.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

impl Service for App {
    const NAME: &'static str = "model-registry";
    type Config = RegistryConfig;
    type Error = Error;

    /// Connects to (and migrates) the database, opens the artifact store and
    /// binds the gRPC listener.
    async fn build(config: RegistryConfig, probes: Probes<'_>) -> Result<Self> {
        let store = connect_store(&config).await?;
        if config.migrate_on_start {
            store.migrate().await?;
        }
        let artifacts = ArtifactStore::open(&config.artifacts_url, Default::default())?;
        Self::build_with(config, store, artifacts, probes).await
    }

    /// Serves until shutdown: readiness turns off first, in-flight calls
    /// finish, the relay publishes what is left.
    async fn run(self, shutdown: Shutdown) -> Result<()> {
        self.serve(shutdown).await
    }
}

impl App {
    /// Builds around an existing store and artifact store (tests pass
    /// explicit storage options this way, through
    /// `mlops_runtime::service::launch_with`).
    pub async fn build_with(
        config: RegistryConfig,
        store: Store,
        artifacts: ArtifactStore,
        probes: Probes<'_>,
    ) -> Result<Self> {
        let metrics = RegistryMetrics::default();
        metrics.register(probes.metrics);
        let grpc = TcpListener::bind(config.grpc_addr).await.map_err(|e| {
            Error::Internal(format!(
                "binding the gRPC listener on {}: {e}",
                config.grpc_addr
            ))
        })?;
        let http = TcpListener::bind(config.http_addr).await.map_err(|e| {
            Error::Internal(format!(
                "binding the MLflow REST listener on {}: {e}",
                config.http_addr
            ))
        })?;
        let service = RegistryService::new(
            store.clone(),
            artifacts,
            config.bootstrap_token.as_ref().map(BootstrapToken::new),
            config.protected_aliases.clone(),
            config.max_artifact_bytes,
            metrics.clone(),
        );
        Ok(Self {
            config,
            store,
            service,
            grpc,
            http,
            readiness: probes.readiness,
            metrics,
        })
    }

    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc.local_addr()
    }

    /// Where the MLflow-compatible REST API listens.
    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    async fn serve(self, shutdown: Shutdown) -> Result<()> {
        let (health, health_service) = tonic_health::server::health_reporter();
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(mlops_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| Error::Internal(format!("reflection service: {e}")))?;
        let reflection_alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(mlops_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .map_err(|e| Error::Internal(format!("reflection service: {e}")))?;

        let checks = tokio::spawn(readiness_loop(
            self.store.clone(),
            self.service.clone(),
            self.readiness.clone(),
            health.clone(),
            shutdown.clone(),
        ));
        let relay = if self.config.publish_events {
            let kafka = self.config.kafka.clone();
            let relay = OutboxRelay::new(
                self.store.clone(),
                &kafka,
                self.config.outbox_interval,
                self.metrics.clone(),
            )?;
            let topic = self.config.events_topic.clone();
            let partitions = self.config.events_topic_partitions;
            let shutdown = shutdown.clone();
            Some(tokio::spawn(async move {
                // Events wait in the outbox until the topic exists; Kafka
                // being down must not stop the registry from serving.
                kafka
                    .keep_ensuring_topic(&topic, partitions, &shutdown)
                    .await;
                relay.run(shutdown).await
            }))
        } else {
            tracing::warn!("REGISTRY_EVENTS=off: registry events stay in the outbox");
            None
        };

        // No Nagle delay: multi-segment responses (search pages) would
        // otherwise wait for the client's delayed ACK, ~40 ms each.
        let incoming = TcpIncoming::from(self.grpc)
            .with_nodelay(Some(true))
            .with_keepalive(Some(Duration::from_secs(60)));
        let mlflow = axum::serve(self.http, crate::mlflow::router(self.service.clone()))
            .with_graceful_shutdown({
                let shutdown = shutdown.clone();
                async move { shutdown.wait().await }
            })
            .into_future();
        let mlflow = tokio::spawn(mlflow);
        let registry = ModelRegistryServer::new(self.service)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let readiness = self.readiness.clone();
        let stop = shutdown.clone();
        let served = tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(reflection)
            .add_service(reflection_alpha)
            .add_service(registry)
            .serve_with_incoming_shutdown(incoming, async move {
                stop.wait().await;
                readiness.set(false);
            })
            .await;
        shutdown.trigger();
        let mlflow = mlflow.await;
        let checks = checks.await;
        let relay = match relay {
            Some(relay) => relay.await,
            None => Ok(()),
        };
        self.store.close().await;
        served.map_err(|e| Error::Internal(format!("gRPC server: {e}")))?;
        mlflow
            .map_err(|e| Error::Internal(format!("the MLflow REST server task failed: {e}")))?
            .map_err(|e| Error::Internal(format!("MLflow REST server: {e}")))?;
        checks
            .and(relay)
            .map_err(|e| Error::Internal(format!("a background task failed: {e}")))
    }
}

/// Ready (HTTP `/readyz` and gRPC health) while the database and the
/// artifact store answer.
async fn readiness_loop(
    store: Store,
    service: RegistryService,
    readiness: Readiness,
    health: tonic_health::server::HealthReporter,
    shutdown: Shutdown,
) {
    loop {
        let db = store.ping().await;
        let artifacts = service.ping_artifacts().await;
        let ready = db.is_ok() && artifacts.is_ok() && !shutdown.is_triggered();
        if ready != readiness.is_ready() {
            match (&db, &artifacts) {
                (Err(e), _) => tracing::warn!(error = %e, "database unreachable; not ready"),
                (_, Err(e)) => tracing::warn!(error = %e, "artifact store unreachable; not ready"),
                _ => tracing::info!("database and artifact store reachable; ready"),
            }
        }
        readiness.set(ready);
        if ready {
            health
                .set_serving::<ModelRegistryServer<RegistryService>>()
                .await;
        } else {
            health
                .set_not_serving::<ModelRegistryServer<RegistryService>>()
                .await;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.wait() => {
                readiness.set(false);
                health.set_not_serving::<ModelRegistryServer<RegistryService>>().await;
                return;
            }
        }
    }
}

/// `model-registry migrate`: applies pending migrations and exits (a
/// Kubernetes Job before an upgrade), through the same lifecycle as serving.
pub struct Migration {
    store: Store,
    readiness: Readiness,
}

impl Service for Migration {
    const NAME: &'static str = "model-registry-migrate";
    type Config = RegistryConfig;
    type Error = Error;

    async fn build(config: RegistryConfig, probes: Probes<'_>) -> Result<Self> {
        Ok(Self {
            store: connect_store(&config).await?,
            readiness: probes.readiness,
        })
    }

    async fn run(self, _shutdown: Shutdown) -> Result<()> {
        self.readiness.set(true);
        self.store.migrate().await?;
        tracing::info!("migrations applied");
        self.store.close().await;
        Ok(())
    }
}
