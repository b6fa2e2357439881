//! Service runtime shared by every binary of the platform: typed configuration
//! from the environment, telemetry (tracing + OTLP), graceful shutdown and the
//! admin HTTP server (`/livez`, `/readyz`, `/metrics`).

pub mod admin;
pub mod config;
pub mod error_code;
pub mod shutdown;
pub mod telemetry;

pub use admin::{AdminServer, Readiness};
pub use config::{ConfigError, EnvReader};
pub use error_code::ErrorCode;
pub use shutdown::Shutdown;
pub use telemetry::{TelemetryConfig, TelemetryGuard};
