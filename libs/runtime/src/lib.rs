//! Service runtime shared by every binary of the platform: typed configuration
//! from the environment, telemetry (tracing + OTLP), graceful shutdown, the
//! admin HTTP server (`/livez`, `/readyz`, `/metrics`) and the one service
//! lifecycle ([`service`]) that ties them together.

pub mod admin;
pub mod config;
pub mod error_code;
pub mod metrics;
pub mod service;
pub mod shutdown;
pub mod telemetry;

pub use admin::{AdminServer, Readiness};
pub use config::{ConfigError, EnvReader};
pub use error_code::ErrorCode;
pub use service::{Launched, LifecycleError, Probes, Service, ServiceConfig};
pub use shutdown::Shutdown;
pub use telemetry::{TelemetryConfig, TelemetryGuard};

/// An error and its causes on one line (`a: b: c`), for logs: `Display` of
/// most errors shows only the outermost message.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Transparent wrappers repeat their source's message.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("commit failed")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn error_chain_lists_every_cause_once() {
        let error = Outer(std::io::Error::other("disk full"));
        assert_eq!(super::error_chain(&error), "commit failed: disk full");
    }
}
