//! Prometheus metrics of ingest.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use mlops_runtime::metrics::{Labels, label};

#[derive(Clone)]
pub struct IngestMetrics {
    pub consumed: Counter,
    pub written: Counter,
    /// Records whose batch committed, written or dead-lettered.
    pub committed: Counter,
    pub dead_lettered: Family<Labels, Counter>,
    pub commits: Family<Labels, Counter>,
    pub batch_records: Histogram,
    pub commit_seconds: Histogram,
    pub consumer_lag: Family<Labels, Gauge>,
    pub table_version: Gauge,
    /// Partitions this replica owns now.
    pub assigned_partitions: Gauge,
    /// Unix time of the last record this replica consumed (0: none yet).
    pub last_record_timestamp: Gauge,
    /// Seconds since the last record this replica consumed (or since it
    /// started, before the first), refreshed every few seconds.
    pub seconds_since_last_record: Gauge,
    /// Times this replica left and rejoined the group because it had no
    /// partitions while the topic had lag nobody consumed.
    pub rejoins: Counter,
}

impl Default for IngestMetrics {
    fn default() -> Self {
        Self {
            consumed: Counter::default(),
            written: Counter::default(),
            committed: Counter::default(),
            dead_lettered: Family::default(),
            commits: Family::default(),
            batch_records: Histogram::new(exponential_buckets(10.0, 4.0, 8)),
            commit_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 12)),
            consumer_lag: Family::default(),
            table_version: Gauge::default(),
            assigned_partitions: Gauge::default(),
            last_record_timestamp: Gauge::default(),
            seconds_since_last_record: Gauge::default(),
            rejoins: Counter::default(),
        }
    }
}

impl IngestMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "ingest_records_consumed",
            "Records read from Kafka",
            self.consumed.clone(),
        );
        registry.register(
            "ingest_records_written",
            "Rows committed to bronze",
            self.written.clone(),
        );
        registry.register(
            "ingest_records_committed",
            "Records whose micro-batch committed: written to bronze or dead-lettered",
            self.committed.clone(),
        );
        registry.register(
            "ingest_records_dead_lettered",
            "Records sent to the dead-letter topic, by reason",
            self.dead_lettered.clone(),
        );
        registry.register(
            "ingest_commits",
            "Delta commit attempts by outcome (committed, fenced, conflict)",
            self.commits.clone(),
        );
        registry.register(
            "ingest_batch_records",
            "Records per committed micro-batch",
            self.batch_records.clone(),
        );
        registry.register(
            "ingest_commit_seconds",
            "Time to write and commit a micro-batch",
            self.commit_seconds.clone(),
        );
        registry.register(
            "ingest_consumer_lag",
            "Records behind the partition's high watermark",
            self.consumer_lag.clone(),
        );
        registry.register(
            "ingest_bronze_table_version",
            "Latest bronze table version written",
            self.table_version.clone(),
        );
        registry.register(
            "ingest_assigned_partitions",
            "Partitions of the events topic this replica owns",
            self.assigned_partitions.clone(),
        );
        registry.register(
            "ingest_last_record_timestamp_seconds",
            "Unix time of the last record this replica consumed (0: none yet)",
            self.last_record_timestamp.clone(),
        );
        registry.register(
            "ingest_seconds_since_last_record",
            "Seconds since this replica consumed a record (or started)",
            self.seconds_since_last_record.clone(),
        );
        registry.register(
            "ingest_group_rejoins",
            "Rejoins after holding no partitions while the topic had unconsumed lag",
            self.rejoins.clone(),
        );
    }
}
