//! The producer as the shared lifecycle runs it.

use mlops_runtime::{Probes, Readiness, Service, Shutdown};

use crate::config::ProducerConfig;
use crate::run::{Error, ProducerMetrics, run};

pub struct App {
    config: ProducerConfig,
    metrics: ProducerMetrics,
    readiness: Readiness,
}

impl Service for App {
    const NAME: &'static str = "producer";
    type Config = ProducerConfig;
    type Error = Error;

    async fn build(config: ProducerConfig, probes: Probes<'_>) -> Result<Self, Error> {
        let metrics = ProducerMetrics::default();
        metrics.register(probes.metrics);
        Ok(Self {
            config,
            metrics,
            readiness: probes.readiness,
        })
    }

    /// Sends until the backfill is done, `max_events` is reached or
    /// shutdown, then prints the per-kind summary on stdout.
    async fn run(self, shutdown: Shutdown) -> Result<(), Error> {
        self.readiness.set(true);
        let summary = run(&self.config, &self.metrics, shutdown).await?;
        // The summary is the command's output, for the person who ran it.
        #[allow(clippy::print_stdout)]
        {
            println!("{}", summary.render());
        }
        Ok(())
    }
}
