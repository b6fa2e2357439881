//! Prometheus metrics of the trainer.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use mlops_runtime::metrics::{Labels, label};

#[derive(Clone)]
pub struct TrainerMetrics {
    /// Runs by outcome (`ok`, `error`).
    pub runs: Family<Labels, Counter>,
    pub run_seconds: Histogram,
    /// Rows of the last run, by set (`snapshot`, `labelled`, `fit`,
    /// `validation`, `test`).
    pub rows: Family<Labels, Gauge>,
    /// Test ROC AUC of the last run, by model type.
    pub last_auc: Family<Labels, Gauge<f64, AtomicU64>>,
    /// Gate decisions by outcome (`promoted`, `challenger`).
    pub decisions: Family<Labels, Counter>,
    pub last_success_seconds: Gauge,
    /// The gold version the last run trained on.
    pub gold_version: Gauge,
}

impl Default for TrainerMetrics {
    fn default() -> Self {
        Self {
            runs: Family::default(),
            run_seconds: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            rows: Family::default(),
            last_auc: Family::default(),
            decisions: Family::default(),
            last_success_seconds: Gauge::default(),
            gold_version: Gauge::default(),
        }
    }
}

impl TrainerMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "trainer_runs",
            "Training runs by outcome",
            self.runs.clone(),
        );
        registry.register(
            "trainer_run_seconds",
            "Duration of a training run, snapshot to gate",
            self.run_seconds.clone(),
        );
        registry.register(
            "trainer_rows",
            "Rows of the last run, by set",
            self.rows.clone(),
        );
        registry.register(
            "trainer_last_auc",
            "Test ROC AUC of the last run, by model type",
            self.last_auc.clone(),
        );
        registry.register(
            "trainer_gate_decisions",
            "Champion gate decisions by outcome",
            self.decisions.clone(),
        );
        registry.register(
            "trainer_last_success_timestamp_seconds",
            "When a run last succeeded (Unix time)",
            self.last_success_seconds.clone(),
        );
        registry.register(
            "trainer_gold_version",
            "Gold table version of the last successful run",
            self.gold_version.clone(),
        );
    }
}
