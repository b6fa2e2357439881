//! Command-line flags, each also settable through an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Send `--days` of history as fast as the broker takes it, then exit.
    Backfill,
    /// Send events in real time at `--rate` per second until stopped,
    /// continuing the world after the `--days` a backfill would send.
    Live,
}

/// Synthetic telecom events with a planted churn signal.
#[derive(Clone, Debug, Parser)]
#[command(name = "producer", version)]
pub struct ProducerConfig {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "localhost:9092")]
    pub brokers: String,
    /// Topic the events are sent to.
    #[arg(long, env = "EVENTS_TOPIC", default_value = "telecom.events.v1")]
    pub topic: String,
    /// Partitions used if the producer has to create the topic.
    #[arg(long, env = "EVENTS_TOPIC_PARTITIONS", default_value_t = 6)]
    pub topic_partitions: i32,
    #[arg(long, env = "PRODUCER_MODE", value_enum, default_value_t = Mode::Backfill)]
    pub mode: Mode,
    /// Seed of the simulation: same seed, same events.
    #[arg(long, env = "PRODUCER_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Number of simulated subscribers.
    #[arg(long, env = "PRODUCER_SUBSCRIBERS", default_value_t = 1_000)]
    pub subscribers: u32,
    /// Days of history in backfill mode.
    #[arg(long, env = "PRODUCER_DAYS", default_value_t = 30)]
    pub days: u32,
    /// First simulated day (UTC). Default: `--days` before today.
    #[arg(long, env = "PRODUCER_START_DATE")]
    pub start_date: Option<NaiveDate>,
    /// Events per second in live mode.
    #[arg(long, env = "PRODUCER_RATE", default_value_t = 100.0)]
    pub rate: f64,
    /// Stop after this many records (faulty ones included).
    #[arg(long, env = "PRODUCER_MAX_EVENTS")]
    pub max_events: Option<u64>,
    /// Fraction of events sent a second time with the same `event_id`.
    #[arg(long, env = "PRODUCER_DUPLICATE_RATE", default_value_t = 0.0)]
    pub duplicate_rate: f64,
    /// Fraction of events whose event time lies hours or days in the past.
    #[arg(long, env = "PRODUCER_LATE_RATE", default_value_t = 0.0)]
    pub late_rate: f64,
    /// Fraction of records that are not valid events.
    #[arg(long, env = "PRODUCER_MALFORMED_RATE", default_value_t = 0.0)]
    pub malformed_rate: f64,
    /// Write the ground truth (churn dates, hazards) as JSON lines here.
    #[arg(long, env = "PRODUCER_TRUTH_OUT")]
    pub truth_out: Option<PathBuf>,
    /// Admin HTTP server (`/livez`, `/readyz`, `/metrics`).
    #[arg(long, env = "ADMIN_ADDR", default_value = "0.0.0.0:9101")]
    pub admin_addr: SocketAddr,
}

impl ProducerConfig {
    /// Checks what clap cannot; lists every problem.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        for (name, value) in [
            ("--duplicate-rate", self.duplicate_rate),
            ("--late-rate", self.late_rate),
            ("--malformed-rate", self.malformed_rate),
        ] {
            if !(0.0..=1.0).contains(&value) {
                problems.push(format!("{name} must be between 0 and 1, got {value}"));
            }
        }
        if self.mode == Mode::Live && !(self.rate > 0.0 && self.rate.is_finite()) {
            problems.push(format!(
                "--rate must be a positive number, got {}",
                self.rate
            ));
        }
        if self.subscribers == 0 {
            problems.push("--subscribers must be at least 1".into());
        }
        if self.mode == Mode::Backfill && self.days == 0 {
            problems.push("--days must be at least 1 in backfill mode".into());
        }
        if self.topic.trim().is_empty() {
            problems.push("--topic must not be empty".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_out_of_range_are_all_reported() {
        let config = ProducerConfig::parse_from([
            "producer",
            "--duplicate-rate",
            "1.5",
            "--malformed-rate=-0.1",
            "--subscribers",
            "0",
        ]);
        let err = config.validate().expect_err("invalid");
        assert!(
            err.contains("--duplicate-rate must be between 0 and 1, got 1.5"),
            "{err}"
        );
        assert!(err.contains("--malformed-rate"), "{err}");
        assert!(err.contains("--subscribers must be at least 1"), "{err}");
    }

    #[test]
    fn defaults_are_valid() {
        let config = ProducerConfig::parse_from(["producer"]);
        assert_eq!(config.topic, "telecom.events.v1");
        assert!(config.validate().is_ok());
    }
}
