//! Prometheus metrics of the transform.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use mlops_runtime::metrics::{Labels, label};

#[derive(Clone)]
pub struct TransformMetrics {
    /// Rows read from an input table, by table.
    pub rows_in: Family<Labels, Counter>,
    /// Rows written to an output table, by table.
    pub rows_out: Family<Labels, Counter>,
    pub quarantined: Family<Labels, Counter>,
    pub duplicates: Counter,
    /// Bronze versions not yet reflected in silver.
    pub bronze_lag_versions: Gauge,
    pub runs: Family<Labels, Counter>,
    pub run_seconds: Histogram,
    pub last_success_seconds: Gauge,
}

impl Default for TransformMetrics {
    fn default() -> Self {
        Self {
            rows_in: Family::default(),
            rows_out: Family::default(),
            quarantined: Family::default(),
            duplicates: Counter::default(),
            bronze_lag_versions: Gauge::default(),
            runs: Family::default(),
            run_seconds: Histogram::new(exponential_buckets(0.05, 2.0, 14)),
            last_success_seconds: Gauge::default(),
        }
    }
}

impl TransformMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "transform_rows_in",
            "Rows read from an input table (new rows only), by table",
            self.rows_in.clone(),
        );
        registry.register(
            "transform_rows_out",
            "Rows written to an output table, by table",
            self.rows_out.clone(),
        );
        registry.register(
            "transform_rows_quarantined",
            "Bronze rows sent to silver/quarantine, by reason",
            self.quarantined.clone(),
        );
        registry.register(
            "transform_rows_duplicate",
            "Bronze rows whose event_id was already kept (not written to silver)",
            self.duplicates.clone(),
        );
        registry.register(
            "transform_bronze_lag_versions",
            "Bronze table versions not yet reflected in silver",
            self.bronze_lag_versions.clone(),
        );
        registry.register(
            "transform_runs",
            "Transform runs by outcome (ok, error)",
            self.runs.clone(),
        );
        registry.register(
            "transform_run_seconds",
            "Duration of a transform run",
            self.run_seconds.clone(),
        );
        registry.register(
            "transform_last_success_timestamp_seconds",
            "Unix time of the last successful run",
            self.last_success_seconds.clone(),
        );
    }
}
