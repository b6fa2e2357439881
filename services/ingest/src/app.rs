//! The ingest service as the shared lifecycle runs it.

use mlops_runtime::{Probes, Readiness, Service, Shutdown};

use crate::config::IngestConfig;
use crate::metrics::IngestMetrics;
use crate::pipeline::Pipeline;
use crate::{Error, Result};

/// A built, not yet running, ingest service.
pub struct App {
    config: IngestConfig,
    readiness: Readiness,
    metrics: IngestMetrics,
}

impl App {
    pub fn metrics(&self) -> IngestMetrics {
        self.metrics.clone()
    }
}

impl Service for App {
    const NAME: &'static str = "ingest";
    type Config = IngestConfig;
    type Error = Error;

    /// Registers the metrics; nothing is contacted yet.
    async fn build(config: IngestConfig, probes: Probes<'_>) -> Result<Self> {
        let metrics = IngestMetrics::default();
        metrics.register(probes.metrics);
        Ok(Self {
            config,
            readiness: probes.readiness,
            metrics,
        })
    }

    /// Consumes until shutdown; the open batch is committed before returning.
    async fn run(self, shutdown: Shutdown) -> Result<()> {
        Pipeline::start(self.config, self.metrics, self.readiness)
            .await?
            .run(shutdown)
            .await
    }
}
