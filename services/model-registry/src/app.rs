//! Wiring: store, artifacts, gRPC server (registry, health, reflection),
//! admin server, readiness checks and the outbox relay.

use std::net::SocketAddr;
use std::time::Duration;

use mlops_bus::KafkaSettings;
use mlops_proto::registry::v1::model_registry_server::ModelRegistryServer;
use mlops_runtime::{AdminServer, Readiness, Shutdown};
use prometheus_client::registry::Registry;
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
    admin: AdminServer,
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

impl App {
    pub async fn build(config: RegistryConfig) -> Result<Self> {
        let store = connect_store(&config).await?;
        if config.migrate_on_start {
            store.migrate().await?;
        }
        let artifacts = ArtifactStore::open(&config.artifacts_url, Default::default())?;
        Self::build_with(config, store, artifacts).await
    }

    /// Builds around an existing store and artifact store (tests pass
    /// explicit storage options this way).
    pub async fn build_with(
        config: RegistryConfig,
        store: Store,
        artifacts: ArtifactStore,
    ) -> Result<Self> {
        let metrics = RegistryMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let readiness = Readiness::default();
        let io = |what: &str, e: std::io::Error| {
            Error::Internal(format!("binding the {what} listener: {e}"))
        };
        let admin = AdminServer::bind(config.admin_addr, registry, readiness.clone())
            .await
            .map_err(|e| io("admin", e))?;
        let grpc = TcpListener::bind(config.grpc_addr)
            .await
            .map_err(|e| io("gRPC", e))?;
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
            admin,
            readiness,
            metrics,
        })
    }

    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc.local_addr()
    }

    pub fn admin_addr(&self) -> std::io::Result<SocketAddr> {
        self.admin.local_addr()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until shutdown: readiness turns off first, in-flight calls
    /// finish, the relay publishes what is left.
    pub async fn run(self, shutdown: Shutdown) -> Result<()> {
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

        let admin = tokio::spawn(self.admin.serve(shutdown.clone()));
        let checks = tokio::spawn(readiness_loop(
            self.store.clone(),
            self.service.clone(),
            self.readiness.clone(),
            health.clone(),
            shutdown.clone(),
        ));
        let relay = if self.config.publish_events {
            let kafka = KafkaSettings::new(&self.config.kafka_brokers, "model-registry");
            let relay = OutboxRelay::new(
                self.store.clone(),
                &kafka,
                self.config.outbox_interval,
                self.metrics.clone(),
            )?;
            Some(tokio::spawn(relay.run(shutdown.clone())))
        } else {
            tracing::warn!("REGISTRY_EVENTS=off: registry events stay in the outbox");
            None
        };

        // No Nagle delay: multi-segment responses (search pages) would
        // otherwise wait for the client's delayed ACK, ~40 ms each.
        let incoming = TcpIncoming::from(self.grpc)
            .with_nodelay(Some(true))
            .with_keepalive(Some(Duration::from_secs(60)));
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
        let _ = checks.await;
        if let Some(relay) = relay {
            let _ = relay.await;
        }
        let _ = admin.await;
        self.store.close().await;
        served.map_err(|e| Error::Internal(format!("gRPC server: {e}")))
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
