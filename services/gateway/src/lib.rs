//! The gateway: the registry's `@champion` (and `@challenger`) of each
//! served model, loaded in ONNX Runtime and hot-swapped as the aliases move,
//! behind the Open Inference Protocol (V2) over REST.
//!
//! [`follow`] keeps [`models`] in step with the registry; [`oip`] serves.

pub mod app;
pub mod auth;
pub mod config;
pub mod events;
pub mod follow;
pub mod metrics;
pub mod models;
pub mod oip;

pub use app::App;
pub use config::GatewayConfig;
