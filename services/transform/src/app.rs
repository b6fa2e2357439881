//! The transform service: runs the pipeline once or on a poll interval,
//! with the admin server up meanwhile.

use std::time::Instant;

use mlops_runtime::{Probes, Readiness, Service, Shutdown, error_chain};
use tracing::{Instrument, error, info, info_span};

use crate::config::TransformConfig;
use crate::gold::{self, GoldReport};
use crate::metrics::{TransformMetrics, label};
use crate::silver::{self, SilverParams, SilverReport};
use crate::{Error, Result};

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
    readiness: Readiness,
    metrics: TransformMetrics,
}

impl App {
    pub fn metrics(&self) -> TransformMetrics {
        self.metrics.clone()
    }

    /// One run (`--once`): brings silver and gold up to date with bronze.
    async fn run_once(&self) -> Result<()> {
        self.readiness.set(true);
        let report = run_pipeline(&self.config, &self.metrics).await?;
        info!(
            bronze_rows = report.silver.rows_in,
            silver_rows = report.silver.rows_out,
            quarantined = report.silver.quarantined,
            duplicates = report.silver.duplicates,
            feature_rows = report.gold.feature_rows,
            kpi_rows = report.gold.kpi_rows,
            "transform run complete"
        );
        Ok(())
    }

    /// Runs every poll interval until shutdown. A failed run is logged and
    /// retried at the next interval (the service is not ready meanwhile).
    async fn run_continuously(&self, shutdown: &Shutdown) {
        while !shutdown.is_triggered() {
            // A run is not interrupted by shutdown: each commit is atomic,
            // but finishing saves redoing the work.
            match run_pipeline(&self.config, &self.metrics).await {
                Ok(_) => self.readiness.set(!shutdown.is_triggered()),
                Err(error) => {
                    self.readiness.set(false);
                    error!(error = %error_chain(&error), "transform run failed; retrying at the next interval");
                }
            }
            tokio::select! {
                () = shutdown.wait() => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }
}

impl Service for App {
    const NAME: &'static str = "transform";
    type Config = TransformConfig;
    type Error = Error;

    /// Registers the metrics; the lake is not contacted yet.
    async fn build(config: TransformConfig, probes: Probes<'_>) -> Result<Self> {
        let metrics = TransformMetrics::default();
        metrics.register(probes.metrics);
        Ok(Self {
            config,
            readiness: probes.readiness,
            metrics,
        })
    }

    async fn run(self, shutdown: Shutdown) -> Result<()> {
        if self.config.once {
            self.run_once().await
        } else {
            self.run_continuously(&shutdown).await;
            Ok(())
        }
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
