//! The gateway against a real registry (in-process, SQLite, local
//! artifacts) and ONNX Runtime: the models it serves are the trainer's own
//! exports, registered and promoted through the registry's API.

#[path = "../../../model-registry/tests/support/mod.rs"]
mod registry_support;

mod support;

mod repository;
mod serving;
mod sklearn;
mod swap;
