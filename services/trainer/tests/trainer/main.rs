//! The trainer against real components: gold written by the real transform
//! from the producer's events, a real registry (SQLite) with real tokens,
//! ONNX Runtime loaded from the library the setup installs, and Python's
//! `onnxruntime` for an outside check.

#[path = "../../../transform/tests/support/mod.rs"]
mod lake_support;
#[path = "../../../model-registry/tests/support/mod.rs"]
mod registry_support;

mod support;

mod gate;
mod labels;
mod registration;
mod watch;
