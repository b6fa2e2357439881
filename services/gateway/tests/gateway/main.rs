//! The gateway against a real registry (in-process, SQLite, local
//! artifacts) and ONNX Runtime: the models it serves are the trainer's own
//! exports, registered and promoted through the registry's API, and for the
//! churn API a lake written by the real transform.

#[path = "../../../transform/tests/support/mod.rs"]
mod lake_support;
#[path = "../../../model-registry/tests/support/mod.rs"]
mod registry_support;
#[path = "../../../trainer/tests/trainer/support.rs"]
mod trainer_support;

mod support;

mod browser;
mod churn_api;
mod console;
mod grpc;
mod insight_pages;
mod models_page;
mod monitor;
mod portal;
mod portal_client;
mod repository;
mod serving;
mod sklearn;
mod swap;
