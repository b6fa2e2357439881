//! Prometheus metrics of the gateway.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use mlops_runtime::metrics::{Labels, label};

/// The binding a request came in on.
#[derive(Clone, Copy, Debug)]
pub enum Protocol {
    /// The Open Inference Protocol over REST.
    Rest,
    /// The Open Inference Protocol over gRPC.
    Grpc,
    /// The churn scoring API, `/api/v1`.
    Api,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::Grpc => "grpc",
            Self::Api => "api",
        }
    }
}

#[derive(Clone)]
pub struct GatewayMetrics {
    /// Inference requests by model, version, protocol and status.
    pub requests: Family<Labels, Counter>,
    /// Inference latency by model, from the request to the response body.
    pub latency: Family<Labels, Histogram, fn() -> Histogram>,
    /// Versions loaded, by model and outcome (`loaded`, `failed`).
    pub loads: Family<Labels, Counter>,
    /// Alias moves served (a loaded version replaced another), by model.
    pub swaps: Family<Labels, Counter>,
    /// The version served under each alias, by model and alias.
    pub serving: Family<Labels, Gauge>,
    /// Registry lookups that failed (unreachable, refused).
    pub registry_errors: Counter,
    /// Registry events read from Kafka.
    pub events: Counter,
}

fn latency_histogram() -> Histogram {
    // 50 µs to ~1.6 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            loads: Family::default(),
            swaps: Family::default(),
            serving: Family::default(),
            registry_errors: Counter::default(),
            events: Counter::default(),
        }
    }
}

impl GatewayMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "gateway_inference_requests",
            "Inference requests by model, version, protocol (rest, grpc, api) and status (HTTP status or gRPC code)",
            self.requests.clone(),
        );
        registry.register(
            "gateway_inference_seconds",
            "Inference latency by model",
            self.latency.clone(),
        );
        registry.register(
            "gateway_model_loads",
            "Model versions loaded, by model and outcome",
            self.loads.clone(),
        );
        registry.register(
            "gateway_model_swaps",
            "Served versions replaced by another, by model and alias",
            self.swaps.clone(),
        );
        registry.register(
            "gateway_model_serving_version",
            "The version served under each alias",
            self.serving.clone(),
        );
        registry.register(
            "gateway_registry_errors",
            "Registry lookups that failed",
            self.registry_errors.clone(),
        );
        registry.register(
            "gateway_registry_events",
            "Registry events read from Kafka",
            self.events.clone(),
        );
    }

    pub fn event(&self) {
        self.events.inc();
    }

    /// One inference request; `status` is the HTTP status (REST) or the
    /// gRPC code's name (gRPC).
    pub fn request(
        &self,
        model: &str,
        version: &str,
        protocol: Protocol,
        status: &str,
        elapsed: Duration,
    ) {
        self.requests
            .get_or_create(&vec![
                ("model".into(), model.into()),
                ("version".into(), version.into()),
                ("protocol".into(), protocol.as_str().into()),
                ("status".into(), status.into()),
            ])
            .inc();
        self.latency
            .get_or_create(&label("model", model))
            .observe(elapsed.as_secs_f64());
    }

    pub fn loaded(&self, model: &str, alias: &str, version: i64, swapped: bool) {
        self.loads
            .get_or_create(&vec![
                ("model".into(), model.into()),
                ("outcome".into(), "loaded".into()),
            ])
            .inc();
        let labels = vec![
            ("model".into(), model.to_string()),
            ("alias".into(), alias.to_string()),
        ];
        if swapped {
            self.swaps.get_or_create(&labels).inc();
        }
        self.serving.get_or_create(&labels).set(version);
    }

    /// The alias no longer exists: nothing serves it.
    pub fn removed(&self, model: &str, alias: &str) {
        self.serving
            .get_or_create(&vec![
                ("model".into(), model.to_string()),
                ("alias".into(), alias.to_string()),
            ])
            .set(0);
    }

    pub fn load_failed(&self, model: &str) {
        self.loads
            .get_or_create(&vec![
                ("model".into(), model.into()),
                ("outcome".into(), "failed".into()),
            ])
            .inc();
    }

    pub fn registry_error(&self) {
        self.registry_errors.inc();
    }
}
