//! Producer settings. Every setting is an environment variable, read like
//! every other service's (all problems listed at once); each also has a
//! command-line flag, which overrides the variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::NaiveDate;
use clap::Parser;
use mlops_bus::KafkaSettings;
use mlops_runtime::{ConfigError, EnvReader, ServiceConfig, TelemetryConfig};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Send `--days` of history as fast as the broker takes it, then exit.
    Backfill,
    /// Send events in real time at `--rate` per second until stopped,
    /// continuing the world after the `--days` a backfill would send.
    Live,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "backfill" => Ok(Self::Backfill),
            "live" => Ok(Self::Live),
            other => Err(format!("expected `backfill` or `live`, got `{other}`")),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ProducerConfig {
    /// `KAFKA_BROKERS`, `KAFKA_CREATE_TOPICS`, `KAFKA_REPLICATION_FACTOR`.
    pub kafka: KafkaSettings,
    /// `EVENTS_TOPIC`, default `telecom.events.v1`.
    pub topic: String,
    /// `EVENTS_TOPIC_PARTITIONS`, default 6: partitions if the producer
    /// creates the topic (`-1`: the broker's default).
    pub topic_partitions: i32,
    /// `PRODUCER_MODE`, default `backfill`.
    pub mode: Mode,
    /// `PRODUCER_SEED`, default 42: same seed, same events.
    pub seed: u64,
    /// `PRODUCER_SUBSCRIBERS`, default 1000.
    pub subscribers: u32,
    /// `PRODUCER_DAYS`, default 30: days of history in backfill mode.
    pub days: u32,
    /// `PRODUCER_START_DATE`, default `days` before today (UTC).
    pub start_date: Option<NaiveDate>,
    /// `PRODUCER_RATE`, default 100: events per second in live mode.
    pub rate: f64,
    /// `PRODUCER_MAX_EVENTS`: stop after this many records (faulty ones included).
    pub max_events: Option<u64>,
    /// `PRODUCER_DUPLICATE_RATE`, default 0.
    pub duplicate_rate: f64,
    /// `PRODUCER_LATE_RATE`, default 0.
    pub late_rate: f64,
    /// `PRODUCER_MALFORMED_RATE`, default 0.
    pub malformed_rate: f64,
    /// `PRODUCER_TRUTH_OUT`: write the ground truth as JSON lines here.
    pub truth_out: Option<PathBuf>,
    /// `ADMIN_ADDR`, default `0.0.0.0:9101`.
    pub admin_addr: SocketAddr,
    pub telemetry: TelemetryConfig,
}

impl ProducerConfig {
    pub fn from_env(env: &mut EnvReader) -> Result<Self, ConfigError> {
        let kafka = KafkaSettings::from_env(env, "producer");
        let topic = env.string("EVENTS_TOPIC", "telecom.events.v1");
        let topic_partitions = mlops_bus::partitions_from_env(env, "EVENTS_TOPIC_PARTITIONS", 6);
        let mode = env.parse("PRODUCER_MODE", Mode::Backfill);
        let seed = env.parse("PRODUCER_SEED", 42u64);
        let subscribers = env.parse("PRODUCER_SUBSCRIBERS", 1_000u32);
        let days = env.parse("PRODUCER_DAYS", 30u32);
        let start_date = optional(env, "PRODUCER_START_DATE");
        let rate = env.parse("PRODUCER_RATE", 100.0f64);
        let max_events = optional(env, "PRODUCER_MAX_EVENTS");
        let mut rate_in_unit = |name: &str| {
            let value = env.parse(name, 0.0f64);
            if !(0.0..=1.0).contains(&value) {
                env.problem(format!("{name} must be between 0 and 1, got {value}"));
            }
            value
        };
        let duplicate_rate = rate_in_unit("PRODUCER_DUPLICATE_RATE");
        let late_rate = rate_in_unit("PRODUCER_LATE_RATE");
        let malformed_rate = rate_in_unit("PRODUCER_MALFORMED_RATE");
        let truth_out = env.optional("PRODUCER_TRUTH_OUT").map(PathBuf::from);
        let admin_addr = env.parse("ADMIN_ADDR", SocketAddr::from(([0, 0, 0, 0], 9101)));
        let telemetry = TelemetryConfig::from_env(env, "producer");
        if mode == Mode::Live && !(rate > 0.0 && rate.is_finite()) {
            env.problem(format!(
                "PRODUCER_RATE must be a positive number, got {rate}"
            ));
        }
        if subscribers == 0 {
            env.problem("PRODUCER_SUBSCRIBERS must be at least 1");
        }
        if mode == Mode::Backfill && days == 0 {
            env.problem("PRODUCER_DAYS must be at least 1 in backfill mode");
        }
        if topic.trim().is_empty() {
            env.problem("EVENTS_TOPIC must not be empty");
        }
        env.finish()?;
        Ok(Self {
            kafka,
            topic,
            topic_partitions,
            mode,
            seed,
            subscribers,
            days,
            start_date,
            rate,
            max_events,
            duplicate_rate,
            late_rate,
            malformed_rate,
            truth_out,
            admin_addr,
            telemetry,
        })
    }

    /// Flags over an otherwise empty environment (tests, benchmarks).
    pub fn from_args<I, T>(args: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let flags = ProducerFlags::try_parse_from(args).map_err(|e| ConfigError {
            problems: vec![e.to_string()],
        })?;
        let mut env = EnvReader::from_pairs(&[]);
        flags.apply(&mut env);
        Self::from_env(&mut env)
    }
}

/// An optional typed value; a bad one is recorded as a problem.
fn optional<T>(env: &mut EnvReader, name: &str) -> Option<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    env.optional(name)?;
    env.value(name, "")
}

impl ServiceConfig for ProducerConfig {
    fn from_env(env: &mut EnvReader) -> Result<Self, ConfigError> {
        Self::from_env(env)
    }
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
    fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }
}

/// Synthetic telecom events with a planted churn signal. Every flag
/// overrides the environment variable named in its help; values are checked
/// together with the environment's.
#[derive(Clone, Debug, Default, Parser)]
#[command(name = "producer", version)]
pub struct ProducerFlags {
    /// Kafka bootstrap servers [KAFKA_BROKERS, default localhost:9092].
    #[arg(long)]
    brokers: Option<String>,
    /// Topic the events are sent to [EVENTS_TOPIC, default telecom.events.v1].
    #[arg(long)]
    topic: Option<String>,
    /// Partitions if the producer creates the topic [EVENTS_TOPIC_PARTITIONS, default 6].
    #[arg(long, allow_hyphen_values = true)]
    topic_partitions: Option<String>,
    /// `backfill` or `live` [PRODUCER_MODE, default backfill].
    #[arg(long)]
    mode: Option<String>,
    /// Seed of the simulation: same seed, same events [PRODUCER_SEED, default 42].
    #[arg(long)]
    seed: Option<String>,
    /// Number of simulated subscribers [PRODUCER_SUBSCRIBERS, default 1000].
    #[arg(long)]
    subscribers: Option<String>,
    /// Days of history in backfill mode [PRODUCER_DAYS, default 30].
    #[arg(long)]
    days: Option<String>,
    /// First simulated day, UTC [PRODUCER_START_DATE, default --days before today].
    #[arg(long)]
    start_date: Option<String>,
    /// Events per second in live mode [PRODUCER_RATE, default 100].
    #[arg(long)]
    rate: Option<String>,
    /// Stop after this many records, faulty ones included [PRODUCER_MAX_EVENTS].
    #[arg(long)]
    max_events: Option<String>,
    /// Fraction re-sent with the same event id [PRODUCER_DUPLICATE_RATE, default 0].
    #[arg(long, allow_hyphen_values = true)]
    duplicate_rate: Option<String>,
    /// Fraction with an event time in the past [PRODUCER_LATE_RATE, default 0].
    #[arg(long, allow_hyphen_values = true)]
    late_rate: Option<String>,
    /// Fraction of extra records that are not valid events [PRODUCER_MALFORMED_RATE, default 0].
    #[arg(long, allow_hyphen_values = true)]
    malformed_rate: Option<String>,
    /// Write the ground truth as JSON lines here [PRODUCER_TRUTH_OUT].
    #[arg(long)]
    truth_out: Option<String>,
    /// Admin HTTP server [ADMIN_ADDR, default 0.0.0.0:9101].
    #[arg(long)]
    admin_addr: Option<String>,
}

impl ProducerFlags {
    /// Sets the variable of every flag given.
    pub fn apply(self, env: &mut EnvReader) {
        let pairs = [
            ("KAFKA_BROKERS", self.brokers),
            ("EVENTS_TOPIC", self.topic),
            ("EVENTS_TOPIC_PARTITIONS", self.topic_partitions),
            ("PRODUCER_MODE", self.mode),
            ("PRODUCER_SEED", self.seed),
            ("PRODUCER_SUBSCRIBERS", self.subscribers),
            ("PRODUCER_DAYS", self.days),
            ("PRODUCER_START_DATE", self.start_date),
            ("PRODUCER_RATE", self.rate),
            ("PRODUCER_MAX_EVENTS", self.max_events),
            ("PRODUCER_DUPLICATE_RATE", self.duplicate_rate),
            ("PRODUCER_LATE_RATE", self.late_rate),
            ("PRODUCER_MALFORMED_RATE", self.malformed_rate),
            ("PRODUCER_TRUTH_OUT", self.truth_out),
            ("ADMIN_ADDR", self.admin_addr),
        ];
        for (name, value) in pairs {
            if let Some(value) = value {
                env.set(name, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_of_flags_and_env_is_reported_together() {
        let flags = ProducerFlags::try_parse_from([
            "producer",
            "--duplicate-rate",
            "1.5",
            "--malformed-rate=-0.1",
            "--subscribers",
            "0",
        ])
        .expect("flags");
        let mut env = EnvReader::from_pairs(&[
            ("PRODUCER_SEED", "forty-two"),
            ("KAFKA_REPLICATION_FACTOR", "0"),
        ]);
        flags.apply(&mut env);
        let text = ProducerConfig::from_env(&mut env)
            .expect_err("invalid")
            .to_string();
        for needle in [
            "PRODUCER_DUPLICATE_RATE must be between 0 and 1, got 1.5",
            "PRODUCER_MALFORMED_RATE must be between 0 and 1, got -0.1",
            "PRODUCER_SUBSCRIBERS must be at least 1",
            "PRODUCER_SEED=\"forty-two\"",
            "KAFKA_REPLICATION_FACTOR must be at least 1",
        ] {
            assert!(text.contains(needle), "{needle} missing from: {text}");
        }
    }

    #[test]
    fn flags_override_the_environment() {
        let flags =
            ProducerFlags::try_parse_from(["producer", "--topic", "from-flag"]).expect("flags");
        let mut env = EnvReader::from_pairs(&[
            ("EVENTS_TOPIC", "from-env"),
            ("PRODUCER_MODE", "live"),
            ("PRODUCER_START_DATE", "2026-02-01"),
        ]);
        flags.apply(&mut env);
        let config = ProducerConfig::from_env(&mut env).expect("valid");
        assert_eq!(config.topic, "from-flag");
        assert_eq!(config.mode, Mode::Live);
        assert_eq!(config.start_date, NaiveDate::from_ymd_opt(2026, 2, 1));
    }

    #[test]
    fn defaults_are_valid() {
        let config = ProducerConfig::from_args(["producer"]).expect("valid");
        assert_eq!(config.topic, "telecom.events.v1");
        assert_eq!(config.topic_partitions, 6);
        assert_eq!(config.mode, Mode::Backfill);
        assert_eq!(config.max_events, None);
        assert_eq!(config.kafka.topics.replication_factor, -1);
    }
}
