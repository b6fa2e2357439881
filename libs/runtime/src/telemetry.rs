//! Logging and tracing set-up.
//!
//! Logs go to stderr as text or JSON (`LOG_FORMAT`), filtered by `RUST_LOG`.
//! When `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans are also exported over
//! OTLP/HTTP (protobuf) to `<endpoint>/v1/traces`, and the W3C trace-context
//! propagator is installed so `traceparent` crosses Kafka and gRPC.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::EnvReader;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("expected `text` or `json`, got `{other}`")),
        }
    }
}

/// The log filter without `RUST_LOG`: our info logs, and only warnings from
/// the Delta Lake libraries (they log every commit and snapshot at info).
pub const DEFAULT_LOG_FILTER: &str = "info,deltalake_core=warn,buoyant_kernel=warn";

/// Telemetry settings: `RUST_LOG`, `LOG_FORMAT`, `OTEL_EXPORTER_OTLP_ENDPOINT`,
/// `OTEL_SERVICE_NAME`.
#[derive(Clone, Debug)]
pub struct TelemetryConfig {
    pub service_name: String,
    pub log_filter: String,
    pub log_format: LogFormat,
    pub otlp_endpoint: Option<String>,
}

impl TelemetryConfig {
    pub fn from_env(env: &mut EnvReader, default_service_name: &str) -> Self {
        let otlp_endpoint = env.optional("OTEL_EXPORTER_OTLP_ENDPOINT");
        if let Some(endpoint) = &otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            env.problem(format!(
                "OTEL_EXPORTER_OTLP_ENDPOINT={endpoint:?}: expected an http:// or https:// URL"
            ));
        }
        Self {
            service_name: env.string("OTEL_SERVICE_NAME", default_service_name),
            log_filter: env.string("RUST_LOG", DEFAULT_LOG_FILTER),
            log_format: env.parse("LOG_FORMAT", LogFormat::Text),
            otlp_endpoint,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid RUST_LOG filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("a global tracing subscriber is already installed: {0}")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
}

/// Keeps the exporter alive; [`TelemetryGuard::shutdown`] flushes pending spans.
#[must_use = "dropping the guard without shutdown may lose the last spans"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Flushes and stops the span exporter (no-op without OTLP).
    pub fn shutdown(mut self) {
        self.flush_and_stop();
    }

    fn flush_and_stop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(error) = provider.force_flush() {
                tracing::warn!(%error, "flushing spans failed");
            }
            if let Err(error) = provider.shutdown() {
                tracing::warn!(%error, "stopping the span exporter failed");
            }
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.flush_and_stop();
    }
}

/// Installs the global subscriber. Call once, early in `main`.
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let filter = EnvFilter::builder().parse(&config.log_filter)?;
    let provider = match &config.otlp_endpoint {
        Some(endpoint) => Some(tracer_provider(&config.service_name, endpoint)?),
        None => None,
    };
    let otel_layer = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer(config.service_name.clone()))
    });
    let (text, json) = match config.log_format {
        LogFormat::Text => (
            Some(tracing_subscriber::fmt::layer().with_writer(std::io::stderr)),
            None,
        ),
        LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            ),
        ),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(otel_layer)
        .with(text)
        .with(json)
        .try_init()?;
    if let Some(endpoint) = &config.otlp_endpoint {
        tracing::info!(endpoint, "exporting spans over otlp/http");
    }
    Ok(TelemetryGuard { provider })
}

fn tracer_provider(
    service_name: &str,
    endpoint: &str,
) -> Result<SdkTracerProvider, TelemetryError> {
    let traces_url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces_url)
        .with_timeout(std::time::Duration::from_secs(5))
        .build()?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_string())
                .build(),
        )
        .build())
}

/// The current span's trace context as W3C headers (`traceparent`, and
/// `tracestate` when set), for outgoing gRPC metadata or HTTP headers.
pub fn current_trace_headers() -> Vec<(String, String)> {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    struct Collect(Vec<(String, String)>);
    impl opentelemetry::propagation::Injector for Collect {
        fn set(&mut self, key: &str, value: String) {
            self.0.push((key.to_string(), value));
        }
    }
    let context = tracing::Span::current().context();
    let mut carrier = Collect(Vec::new());
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut carrier));
    carrier.0
}

/// Makes `span` a child of the trace named by incoming headers; `get` looks
/// a header up by its lowercase name (`traceparent`, `tracestate`).
pub fn continue_trace_from<'a>(span: &tracing::Span, get: impl Fn(&str) -> Option<&'a str>) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    struct Carrier(std::collections::HashMap<&'static str, String>);
    impl opentelemetry::propagation::Extractor for Carrier {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).map(String::as_str)
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().copied().collect()
        }
    }
    let carrier = Carrier(
        ["traceparent", "tracestate"]
            .into_iter()
            .filter_map(|key| Some((key, get(key)?.to_string())))
            .collect(),
    );
    if carrier.0.is_empty() {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
    let _ = span.set_parent(parent);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> (TelemetryConfig, Result<(), crate::ConfigError>) {
        let mut env = EnvReader::from_map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let config = TelemetryConfig::from_env(&mut env, "svc");
        (config, env.finish())
    }

    #[test]
    fn defaults_log_text_without_export() {
        let (config, ok) = config(&[]);
        assert!(ok.is_ok());
        assert_eq!(config.service_name, "svc");
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.log_filter, DEFAULT_LOG_FILTER);
        assert_eq!(config.otlp_endpoint, None);
    }

    #[test]
    fn bad_values_are_reported() {
        let (_, err) = config(&[
            ("LOG_FORMAT", "xml"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        ]);
        let text = err.expect_err("invalid").to_string();
        assert!(
            text.contains("expected `text` or `json`, got `xml`"),
            "{text}"
        );
        assert!(
            text.contains("expected an http:// or https:// URL"),
            "{text}"
        );
    }

    #[test]
    fn json_and_endpoint_are_read() {
        let (config, ok) = config(&[
            ("LOG_FORMAT", "JSON"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318"),
            ("OTEL_SERVICE_NAME", "ingest-eu"),
        ]);
        assert!(ok.is_ok());
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.otlp_endpoint.as_deref(), Some("http://otel:4318"));
        assert_eq!(config.service_name, "ingest-eu");
    }
}
