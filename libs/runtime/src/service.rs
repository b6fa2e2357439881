//! The one lifecycle every service of the platform shares.
//!
//! A service says what it is by implementing [`Service`]: how its settings
//! are read, how it is built (register metrics, bind its own listeners) and
//! what its work is. This module does the rest, in the same order for all:
//!
//! 1. configuration from the environment, every problem listed at once;
//! 2. telemetry (logs, OTLP spans);
//! 3. the service is built, then the admin server (`/livez`, `/readyz`,
//!    `/metrics`) is bound;
//! 4. the work runs beside the admin server until it finishes, fails, or a
//!    shutdown signal arrives;
//! 5. ordered shutdown: not ready first, the work drains while the admin
//!    server still answers (so probes and a last scrape see the drain), then
//!    the admin server stops, then telemetry is flushed.
//!
//! Errors of the work and of the admin server are both reported.
//!
//! ```ignore
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     mlops_runtime::service::main::<mlops_ingest::App>().await
//! }
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;

use prometheus_client::registry::Registry;

use crate::{AdminServer, ConfigError, EnvReader, Readiness, Shutdown, TelemetryConfig, telemetry};

/// Settings every service has, beside its own.
pub trait ServiceConfig: Sized + Send + 'static {
    /// Reads every setting from the environment, listing all problems.
    fn from_env(env: &mut EnvReader) -> Result<Self, ConfigError>;
    fn telemetry(&self) -> &TelemetryConfig;
    /// Where the admin server listens (`ADMIN_ADDR`).
    fn admin_addr(&self) -> SocketAddr;
}

/// What the lifecycle hands a service while it is built: the metrics
/// registry the admin server will expose, and the readiness it reports.
pub struct Probes<'a> {
    pub metrics: &'a mut Registry,
    /// Set it when the service can take work; the lifecycle clears it as
    /// the first step of shutdown.
    pub readiness: Readiness,
}

/// A service: its settings, how it is built and what its work is.
pub trait Service: Sized + Send + 'static {
    /// Used in logs and as the default `service.name` of spans.
    const NAME: &'static str;
    type Config: ServiceConfig;
    type Error: std::error::Error + Send + Sync + 'static;

    /// Registers metrics and binds the service's own listeners; nothing
    /// external should be contacted yet, so a bad port fails fast.
    fn build(
        config: Self::Config,
        probes: Probes<'_>,
    ) -> impl Future<Output = Result<Self, Self::Error>> + Send;

    /// The work: runs until it is done or `shutdown` fires, and drains
    /// (commits, flushes, closes) before returning.
    fn run(self, shutdown: Shutdown) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Why a service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Telemetry(#[from] telemetry::TelemetryError),
    #[error("building the service failed: {0}")]
    Build(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot bind the admin server on {addr}: {source}")]
    AdminBind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the admin server failed: {0}")]
    Admin(String),
    #[error("{0}")]
    Work(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the service failed: {work}; and the admin server failed: {admin}")]
    Both { work: String, admin: String },
}

/// A built service with its admin server bound, not yet running. Tests use
/// it to start the real service on port 0 and learn its addresses.
pub struct Launched<S> {
    service: S,
    admin: AdminServer,
    admin_addr: SocketAddr,
    readiness: Readiness,
}

/// Builds the service, then binds its admin server.
pub async fn launch<S: Service>(config: S::Config) -> Result<Launched<S>, LifecycleError> {
    let admin_addr = config.admin_addr();
    launch_with(admin_addr, async |probes| S::build(config, probes).await).await
}

/// [`launch`] with a custom build step, for tests that hand the service
/// parts they made themselves (a store, storage options).
pub async fn launch_with<S: Service>(
    admin_addr: SocketAddr,
    build: impl AsyncFnOnce(Probes<'_>) -> Result<S, S::Error>,
) -> Result<Launched<S>, LifecycleError> {
    let mut metrics = Registry::default();
    let readiness = Readiness::default();
    let service = build(Probes {
        metrics: &mut metrics,
        readiness: readiness.clone(),
    })
    .await
    .map_err(|e| LifecycleError::Build(Box::new(e)))?;
    let bind_failed = |source| LifecycleError::AdminBind {
        addr: admin_addr,
        source,
    };
    let admin = AdminServer::bind(admin_addr, metrics, readiness.clone())
        .await
        .map_err(bind_failed)?;
    // The bound address: with port 0, the port the OS picked.
    let admin_addr = admin.local_addr().map_err(bind_failed)?;
    Ok(Launched {
        service,
        admin,
        admin_addr,
        readiness,
    })
}

impl<S: Service> Launched<S> {
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    pub fn service(&self) -> &S {
        &self.service
    }

    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Runs the work beside the admin server until the work returns, then
    /// stops the admin server. `shutdown` starts the drain: readiness is
    /// cleared at once, the admin server keeps answering until the work has
    /// drained. If the admin server fails first, the work is told to stop.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), LifecycleError> {
        let Self {
            service,
            admin,
            readiness,
            ..
        } = self;
        // The admin server stops on its own signal, after the work.
        let admin_stop = Shutdown::new();
        let mut admin_task = tokio::spawn(admin.serve(admin_stop.clone()));

        let not_ready = {
            let (readiness, shutdown) = (readiness.clone(), shutdown.clone());
            tokio::spawn(async move {
                shutdown.wait().await;
                readiness.set(false);
            })
        };

        let work = service.run(shutdown.clone());
        tokio::pin!(work);
        let (work_outcome, admin_outcome) = tokio::select! {
            outcome = &mut work => {
                readiness.set(false);
                admin_stop.trigger();
                (outcome, join_admin(admin_task.await))
            }
            joined = &mut admin_task => {
                let admin_outcome = join_admin(joined);
                tracing::error!(
                    error = admin_outcome.as_ref().err().map(String::as_str).unwrap_or("stopped"),
                    "admin server stopped before the service; shutting down"
                );
                readiness.set(false);
                shutdown.trigger();
                // A stopped admin server without an error is still a failure:
                // the service cannot be probed or scraped any more.
                (work.await, admin_outcome.and(Err("stopped unexpectedly".to_string())))
            }
        };
        not_ready.abort();
        match (work_outcome, admin_outcome) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(work), Ok(())) => Err(LifecycleError::Work(Box::new(work))),
            (Ok(()), Err(admin)) => Err(LifecycleError::Admin(admin)),
            (Err(work), Err(admin)) => Err(LifecycleError::Both {
                work: crate::error_chain(&work),
                admin,
            }),
        }
    }
}

fn join_admin(joined: Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<(), String> {
    match joined {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(error) => Err(format!("admin task panicked or was cancelled: {error}")),
    }
}

/// Reads the config, starts telemetry, builds and runs the service until it
/// finishes or a signal stops it, and flushes telemetry. The whole `main`
/// of a service.
pub async fn main<S: Service>() -> ExitCode {
    main_with::<S>(S::Config::from_env).await
}

/// [`main`] with a custom config reader, for binaries whose flags override
/// environment variables.
pub async fn main_with<S: Service>(
    read_config: impl FnOnce(&mut EnvReader) -> Result<S::Config, ConfigError>,
) -> ExitCode {
    let config = match read_config(&mut EnvReader::from_process()) {
        Ok(config) => config,
        Err(error) => {
            // Telemetry is configured by the same settings, so it is not up.
            eprintln!("{}: {error}", S::NAME);
            return ExitCode::from(2);
        }
    };
    let telemetry = match telemetry::init(config.telemetry()) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("{}: {error}", S::NAME);
            return ExitCode::from(2);
        }
    };
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();
    let outcome = async {
        let launched = launch::<S>(config).await?;
        tracing::info!(
            service = S::NAME,
            admin = %launched.admin_addr(),
            "service starting"
        );
        launched.run(shutdown).await
    }
    .await;
    let code = match &outcome {
        Ok(()) => {
            tracing::info!(service = S::NAME, "service stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(service = S::NAME, error = %crate::error_chain(error), "service stopped with an error");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}
