//! Kafka conventions shared by the platform's services: client settings,
//! trace context and schema version in record headers, dead-letter publishing
//! and topic provisioning. Clients are rdkafka speaking the real protocol.

pub mod dead_letter;
pub mod headers;

use std::time::Duration;

use mlops_runtime::{EnvReader, Shutdown};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;

pub use dead_letter::{DeadLetter, DeadLetterPublisher, DeadLetterReason, PendingDeadLetter};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kafka client error: {0}")]
    Kafka(#[from] KafkaError),
    #[error("cannot create topic {topic}: {reason}")]
    CreateTopic { topic: String, reason: String },
    #[error("cannot publish to {topic}: {source}")]
    Publish {
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error(
        "the dead letter of partition {partition} offset {offset} was not acknowledged by {topic}: {source}"
    )]
    DeadLetter {
        topic: String,
        partition: i32,
        offset: i64,
        #[source]
        source: KafkaError,
    },
}

/// Where and how to reach the brokers, and how the platform creates the
/// topics it writes to.
#[derive(Clone, Debug)]
pub struct KafkaSettings {
    /// Comma-separated `host:port` list (`KAFKA_BROKERS`).
    pub brokers: String,
    /// Reported to the brokers; shows up in their logs and quotas.
    pub client_id: String,
    pub topics: TopicSettings,
}

/// Topic creation (`KAFKA_CREATE_TOPICS`, `KAFKA_REPLICATION_FACTOR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicSettings {
    /// Whether services create missing topics at start-up. Off where topics
    /// are managed as resources (e.g. Strimzi `KafkaTopic`).
    pub create: bool,
    /// Replicas of each created topic; `-1` takes the broker's
    /// `default.replication.factor`.
    pub replication_factor: i32,
}

impl Default for TopicSettings {
    fn default() -> Self {
        Self {
            create: true,
            replication_factor: BROKER_DEFAULT,
        }
    }
}

/// Partitions or replicas left to the broker's defaults (KIP-464).
pub const BROKER_DEFAULT: i32 = -1;

/// A topic a service writes to and may create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicSpec<'a> {
    pub name: &'a str,
    /// `-1` takes the broker's `num.partitions`.
    pub partitions: i32,
}

impl KafkaSettings {
    pub fn new(brokers: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            client_id: client_id.into(),
            topics: TopicSettings::default(),
        }
    }

    /// `KAFKA_BROKERS` (default `localhost:9092`), `KAFKA_CREATE_TOPICS`
    /// (default `true`) and `KAFKA_REPLICATION_FACTOR` (default `-1`, the
    /// broker's default).
    pub fn from_env(env: &mut EnvReader, client_id: &str) -> Self {
        let brokers = env.string("KAFKA_BROKERS", "localhost:9092");
        let create = env.flag("KAFKA_CREATE_TOPICS", true);
        let replication_factor = env.parse("KAFKA_REPLICATION_FACTOR", BROKER_DEFAULT);
        if replication_factor == 0 || replication_factor < BROKER_DEFAULT {
            env.problem(format!(
                "KAFKA_REPLICATION_FACTOR must be at least 1, or -1 for the broker's default; got {replication_factor}"
            ));
        }
        Self {
            brokers,
            client_id: client_id.to_string(),
            topics: TopicSettings {
                create,
                replication_factor,
            },
        }
    }

    fn base(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id)
            // Fail fast and loudly when the brokers are unreachable.
            .set("socket.connection.setup.timeout.ms", "10000");
        config
    }

    /// The settings every client of these brokers starts from, for a
    /// client the helpers here do not cover.
    pub fn client_config(&self) -> ClientConfig {
        self.base()
    }

    /// An idempotent producer: retries never duplicate or reorder records
    /// within a partition, and a send is acknowledged by all in-sync replicas.
    pub fn idempotent_producer(&self) -> Result<FutureProducer> {
        Ok(self
            .base()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "20")
            .set("batch.size", "262144")
            .set("message.timeout.ms", "60000")
            .create()?)
    }

    /// Consumer settings for a group whose progress is stored elsewhere
    /// (auto-commit off; offsets are committed by the caller after its own
    /// durable write).
    pub fn consumer_config(&self, group_id: &str) -> ClientConfig {
        let mut config = self.base();
        config
            .set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", "10000")
            .set("partition.assignment.strategy", "range,roundrobin");
        config
    }

    /// Creates the topics that do not exist yet, with the configured
    /// replication; existing ones are left alone. Does nothing when topic
    /// creation is turned off.
    pub async fn ensure_topics(&self, topics: &[TopicSpec<'_>]) -> Result<()> {
        if !self.topics.create {
            tracing::debug!(
                ?topics,
                "topic creation is off; expecting the topics to exist"
            );
            return Ok(());
        }
        let admin: AdminClient<DefaultClientContext> = self.base().create()?;
        let new_topics: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|topic| {
                NewTopic::new(
                    topic.name,
                    topic.partitions,
                    TopicReplication::Fixed(self.topics.replication_factor),
                )
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for outcome in admin.create_topics(&new_topics, &options).await? {
            match outcome {
                Ok(topic) => tracing::info!(
                    topic,
                    replication_factor = self.topics.replication_factor,
                    "topic created"
                ),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(Error::CreateTopic {
                        topic,
                        reason: code.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Creates `topic` when topic creation is on, retrying every five
    /// seconds until it succeeds or `shutdown`, for a service whose writes
    /// wait (in an outbox or a client queue) rather than fail meanwhile.
    pub async fn keep_ensuring_topic(&self, topic: &str, partitions: i32, shutdown: &Shutdown) {
        let spec = [TopicSpec {
            name: topic,
            partitions,
        }];
        loop {
            match self.ensure_topics(&spec).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(topic, %error, "cannot create the topic yet; retrying")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = shutdown.wait() => return,
            }
        }
    }
}

/// Partitions of a topic a service creates, read from the variable `name`;
/// `-1` takes the broker's `num.partitions`.
pub fn partitions_from_env(env: &mut EnvReader, name: &str, default: i32) -> i32 {
    let partitions = env.parse(name, default);
    if partitions == 0 || partitions < BROKER_DEFAULT {
        env.problem(format!(
            "{name} must be at least 1, or -1 for the broker's default; got {partitions}"
        ));
    }
    partitions
}
