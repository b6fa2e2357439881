//! Ingest settings, all from the environment (see README, "ingest").

use std::net::SocketAddr;
use std::time::Duration;

use mlops_bus::KafkaSettings;
use mlops_lake::LakeLocation;
use mlops_runtime::{ConfigError, EnvReader, ServiceConfig, TelemetryConfig};

/// How a partition is positioned at the table's progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumeMode {
    /// Fetch from the next offset directly (Kafka semantics: a fetch inside
    /// a record batch returns that batch).
    Exact,
    /// Fetch from the partition's start and skip what the table holds, for
    /// brokers that cannot fetch from inside a record batch (tansu 0.6
    /// returns only batches starting at or after the fetch offset).
    Scan,
}

impl std::str::FromStr for ResumeMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "exact" => Ok(Self::Exact),
            "scan" => Ok(Self::Scan),
            other => Err(format!("expected `exact` or `scan`, got `{other}`")),
        }
    }
}

#[derive(Clone, Debug)]
pub struct IngestConfig {
    /// `KAFKA_BROKERS`, `KAFKA_CREATE_TOPICS`, `KAFKA_REPLICATION_FACTOR`.
    pub kafka: KafkaSettings,
    /// `EVENTS_TOPIC`, default `telecom.events.v1`.
    pub topic: String,
    /// `DLQ_TOPIC`, default `<EVENTS_TOPIC>.dlq`.
    pub dlq_topic: String,
    /// `DLQ_TOPIC_PARTITIONS`, default `-1` (the broker's default), used
    /// when ingest creates the dead-letter topic.
    pub dlq_partitions: i32,
    /// `INGEST_GROUP_ID`, default `ingest-bronze`.
    pub group_id: String,
    /// `LAKE_URL`, default `data/lake` (a local directory).
    pub lake: LakeLocation,
    /// `INGEST_BATCH_MAX_RECORDS`, default 50000: a batch is committed when it
    /// holds this many records...
    pub batch_max_records: usize,
    /// `INGEST_BATCH_MAX_WAIT_MS`, default 5000: ...or when its first record
    /// has waited this long.
    pub batch_max_wait: Duration,
    /// `INGEST_INSTANCE_ID`, default unset: a stable member name (e.g. the
    /// pod name of a StatefulSet) for static group membership, so a
    /// restarted replica takes its partitions back without a rebalance.
    pub instance_id: Option<String>,
    /// `INGEST_REJOIN_AFTER_SECONDS`, default 120: a replica that has held
    /// no partition this long while the topic has lag nobody consumes
    /// leaves and rejoins the group.
    pub rejoin_after: Duration,
    /// `INGEST_RESUME`, default `exact`.
    pub resume: ResumeMode,
    /// `ADMIN_ADDR`, default `0.0.0.0:9102`.
    pub admin_addr: SocketAddr,
    pub telemetry: TelemetryConfig,
}

impl IngestConfig {
    pub fn from_env(env: &mut EnvReader) -> Result<Self, ConfigError> {
        let topic = env.string("EVENTS_TOPIC", "telecom.events.v1");
        let dlq_topic = env.string("DLQ_TOPIC", &format!("{topic}.dlq"));
        let lake = env.value::<LakeLocation>("LAKE_URL", "data/lake");
        let dlq_partitions = mlops_bus::partitions_from_env(env, "DLQ_TOPIC_PARTITIONS", -1);
        let rejoin_after = env.parse("INGEST_REJOIN_AFTER_SECONDS", 120u64);
        if rejoin_after == 0 {
            env.problem("INGEST_REJOIN_AFTER_SECONDS must be at least 1");
        }
        let batch_max_records = env.parse("INGEST_BATCH_MAX_RECORDS", 50_000usize);
        if batch_max_records == 0 {
            env.problem("INGEST_BATCH_MAX_RECORDS must be at least 1");
        }
        let wait_ms = env.parse("INGEST_BATCH_MAX_WAIT_MS", 5_000u64);
        if wait_ms == 0 {
            env.problem("INGEST_BATCH_MAX_WAIT_MS must be at least 1");
        }
        if dlq_topic == topic {
            env.problem("DLQ_TOPIC must differ from EVENTS_TOPIC");
        }
        let kafka = KafkaSettings::from_env(env, "ingest");
        let group_id = env.string("INGEST_GROUP_ID", "ingest-bronze");
        let admin_addr = env.parse("ADMIN_ADDR", SocketAddr::from(([0, 0, 0, 0], 9102)));
        let resume = env.parse("INGEST_RESUME", ResumeMode::Exact);
        let instance_id = env.optional("INGEST_INSTANCE_ID");
        let telemetry = TelemetryConfig::from_env(env, "ingest");
        env.finish()?;
        Ok(Self {
            kafka,
            dlq_partitions,
            rejoin_after: Duration::from_secs(rejoin_after),
            group_id,
            admin_addr,
            resume,
            instance_id,
            telemetry,
            batch_max_records,
            batch_max_wait: std::time::Duration::from_millis(wait_ms),
            topic,
            dlq_topic,
            lake: lake.ok_or_else(|| ConfigError::invalid("LAKE_URL"))?,
        })
    }

    /// The Delta `txn` application id that tracks one partition. It names
    /// the topic, not the consumer group: the table's progress on a topic
    /// survives a renamed or reset group.
    pub fn app_id(&self, partition: i32) -> String {
        app_id(&self.topic, partition)
    }
}

impl ServiceConfig for IngestConfig {
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

/// See [`IngestConfig::app_id`]; the format is part of the lineage contract
/// in `mlops_lake::lineage`.
pub use mlops_lake::lineage::ingest_app_id as app_id;

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvReader {
        EnvReader::from_pairs(pairs)
    }

    #[test]
    fn defaults() {
        let config = IngestConfig::from_env(&mut env(&[])).expect("valid");
        assert_eq!(config.topic, "telecom.events.v1");
        assert_eq!(config.dlq_topic, "telecom.events.v1.dlq");
        assert_eq!(config.batch_max_records, 50_000);
        assert_eq!(config.resume, ResumeMode::Exact);
        assert_eq!(config.dlq_partitions, -1);
        assert_eq!(config.kafka.topics.replication_factor, -1);
        assert!(config.kafka.topics.create);
        assert_eq!(config.rejoin_after, Duration::from_secs(120));
        assert_eq!(config.app_id(3), "ingest/telecom.events.v1/3");
        assert!(config.lake.root().as_str().ends_with("/data/lake/"));
    }

    #[test]
    fn every_problem_is_listed() {
        let err = IngestConfig::from_env(&mut env(&[
            ("LAKE_URL", "ftp://x/y"),
            ("INGEST_BATCH_MAX_RECORDS", "0"),
            ("INGEST_BATCH_MAX_WAIT_MS", "soon"),
            ("EVENTS_TOPIC", "t"),
            ("DLQ_TOPIC", "t"),
            ("INGEST_RESUME", "sometimes"),
            ("KAFKA_REPLICATION_FACTOR", "0"),
            ("DLQ_TOPIC_PARTITIONS", "-3"),
            ("INGEST_REJOIN_AFTER_SECONDS", "0"),
        ]))
        .expect_err("invalid");
        let text = err.to_string();
        for needle in [
            "LAKE_URL",
            "INGEST_BATCH_MAX_RECORDS",
            "INGEST_BATCH_MAX_WAIT_MS",
            "DLQ_TOPIC",
            "KAFKA_REPLICATION_FACTOR must be at least 1, or -1",
            "DLQ_TOPIC_PARTITIONS must be at least 1, or -1",
            "INGEST_REJOIN_AFTER_SECONDS",
        ] {
            assert!(text.contains(needle), "{needle} missing from: {text}");
        }
    }
}
