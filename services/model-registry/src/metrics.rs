//! Prometheus metrics of the registry.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use mlops_runtime::metrics::{Labels, label};

#[derive(Clone)]
pub struct LatencyBuckets;

impl MetricConstructor<Histogram> for LatencyBuckets {
    fn new_metric(&self) -> Histogram {
        // 0.5 ms .. ~16 s
        Histogram::new(exponential_buckets(0.0005, 2.0, 16))
    }
}

#[derive(Clone)]
pub struct RegistryMetrics {
    /// Calls by method and result code.
    pub requests: Family<Labels, Counter>,
    /// Call latency by method.
    pub latency: Family<Labels, Histogram, LatencyBuckets>,
    pub bytes_uploaded: Counter,
    pub bytes_downloaded: Counter,
    pub outbox_pending: Gauge,
    pub events_published: Counter,
    /// 1 while this replica holds the relay lease and publishes, else 0.
    pub relay_leader: Gauge,
}

impl Default for RegistryMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(LatencyBuckets),
            bytes_uploaded: Counter::default(),
            bytes_downloaded: Counter::default(),
            outbox_pending: Gauge::default(),
            events_published: Counter::default(),
            relay_leader: Gauge::default(),
        }
    }
}

impl RegistryMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "registry_requests",
            "gRPC calls by method and code",
            self.requests.clone(),
        );
        registry.register(
            "registry_request_duration_seconds",
            "gRPC call latency by method",
            self.latency.clone(),
        );
        registry.register(
            "registry_artifact_uploaded_bytes",
            "Artifact bytes received",
            self.bytes_uploaded.clone(),
        );
        registry.register(
            "registry_artifact_downloaded_bytes",
            "Artifact bytes sent",
            self.bytes_downloaded.clone(),
        );
        registry.register(
            "registry_outbox_pending_events",
            "Committed events not yet acknowledged by Kafka",
            self.outbox_pending.clone(),
        );
        registry.register(
            "registry_events_published",
            "Events acknowledged by Kafka",
            self.events_published.clone(),
        );
        registry.register(
            "registry_outbox_relay_leader",
            "1 while this replica holds the outbox relay lease and publishes",
            self.relay_leader.clone(),
        );
    }

    pub fn observe(&self, method: &str, code: &str, seconds: f64) {
        self.requests
            .get_or_create(&vec![
                ("method".to_string(), method.to_string()),
                ("code".to_string(), code.to_string()),
            ])
            .inc();
        self.latency
            .get_or_create(&vec![("method".to_string(), method.to_string())])
            .observe(seconds);
    }
}
