//! The gateway: the registry's `@champion` (and `@challenger`) of each
//! served model, loaded in ONNX Runtime and hot-swapped as the aliases move,
//! behind the Open Inference Protocol (V2) over REST and gRPC.
//!
//! [`follow`] keeps [`models`] in step with the registry; [`oip`] (REST)
//! and [`grpc`] serve, both through [`serving`]. [`api`] scores subscribers
//! from the [`online`] features with the churn model's champion; [`monitor`]
//! follows what is predicted (score histograms, drift, the prediction log).
//! [`portal`] serves the browser portal at `/`, behind its own logins.

pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod events;
pub mod follow;
pub mod grpc;
pub mod metrics;
pub mod models;
pub mod monitor;
pub mod oip;
pub mod online;
pub mod portal;
pub mod serving;

pub use app::App;
pub use config::GatewayConfig;
