//! The transform service: runs the pipeline once or on a poll interval,
//! with the admin server up meanwhile.

use std::net::SocketAddr;
use std::time::Instant;

use mlops_runtime::{AdminServer, Readiness, Shutdown};
use prometheus_client::registry::Registry;
use tracing::{Instrument, error, info, info_span};

use crate::Result;
use crate::config::TransformConfig;
use crate::gold::{self, GoldReport};
use crate::metrics::{TransformMetrics, label};
use crate::silver::{self, SilverParams, SilverReport};

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunReport {
    pub silver: SilverReport,
    pub gold: GoldReport,
}

impl RunReport {
    pub fn changed(&self) -> bool {
        self.silver.changed || self.gold.changed
    }
}

/// A built, not yet running, transform service.
pub struct App {
    config: TransformConfig,
    admin: AdminServer,
    readiness: Readiness,
    metrics: TransformMetrics,
}

impl App {
    /// Binds the admin server; the lake is not contacted yet.
    pub async fn build(config: TransformConfig) -> Result<Self> {
        let metrics = TransformMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let readiness = Readiness::default();
        let admin = AdminServer::bind(config.admin_addr, registry, readiness.clone()).await?;
        Ok(Self {
            config,
            admin,
            readiness,
            metrics,
        })
    }

    pub fn admin_addr(&self) -> std::io::Result<SocketAddr> {
        self.admin.local_addr()
    }

    pub fn metrics(&self) -> TransformMetrics {
        self.metrics.clone()
    }

    /// One run (`--once`): brings silver and gold up to date with bronze.
    pub async fn run_once(self) -> Result<RunReport> {
        let shutdown = Shutdown::new();
        let admin = tokio::spawn(self.admin.serve(shutdown.clone()));
        self.readiness.set(true);
        let outcome = run_pipeline(&self.config, &self.metrics).await;
        shutdown.trigger();
        let _ = admin.await;
        outcome
    }

    /// Runs every poll interval until shutdown. A failed run is logged and
    /// retried at the next interval (the service is not ready meanwhile).
    pub async fn run(self, shutdown: Shutdown) -> Result<()> {
        let admin = tokio::spawn(self.admin.serve(shutdown.clone()));
        while !shutdown.is_triggered() {
            // A run is not interrupted by shutdown: each commit is atomic,
            // but finishing saves redoing the work.
            match run_pipeline(&self.config, &self.metrics).await {
                Ok(_) => self.readiness.set(true),
                Err(error) => {
                    self.readiness.set(false);
                    error!(%error, "transform run failed; retrying at the next interval");
                }
            }
            tokio::select! {
                () = shutdown.wait() => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
        self.readiness.set(false);
        let _ = admin.await;
        Ok(())
    }
}

/// Silver then gold, with metrics.
pub async fn run_pipeline(
    config: &TransformConfig,
    metrics: &TransformMetrics,
) -> Result<RunReport> {
    let started = Instant::now();
    let params = SilverParams {
        late_horizon_days: config.late_horizon_days,
        dedup_horizon_days: config.dedup_horizon_days,
        max_clock_skew_seconds: config.max_clock_skew_seconds,
    };
    let outcome = async {
        let silver = silver::run(&config.lake, params, metrics).await?;
        let gold = gold::run(&config.lake, metrics).await?;
        Ok(RunReport { silver, gold })
    }
    .instrument(info_span!("transform_run"))
    .await;
    metrics.run_seconds.observe(started.elapsed().as_secs_f64());
    match &outcome {
        Ok(report) => {
            metrics.runs.get_or_create(&label("outcome", "ok")).inc();
            metrics
                .last_success_seconds
                .set(chrono::Utc::now().timestamp());
            if report.changed() {
                info!(
                    seconds = started.elapsed().as_secs_f64(),
                    bronze_version = report.silver.bronze_version,
                    silver_version = report.gold.silver_version,
                    "transform run finished"
                );
            }
        }
        Err(_) => {
            metrics.runs.get_or_create(&label("outcome", "error")).inc();
        }
    }
    outcome
}
