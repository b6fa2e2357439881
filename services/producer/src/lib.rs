//! The producer: deterministic synthetic telecom events for the events topic.
//!
//! [`sim`] is the world; [`emit`] turns its events into Kafka records
//! (including the optional data-quality faults); [`run`] sends them with an
//! idempotent producer, paced in live mode, with progress and a summary.

pub mod app;
pub mod config;
pub mod emit;
pub mod run;
pub mod sim;

pub use app::App;
pub use config::{Mode, ProducerConfig, ProducerFlags};
pub use emit::{Emitter, FaultRates, Outgoing, OutgoingKind};
pub use run::{Summary, run};
