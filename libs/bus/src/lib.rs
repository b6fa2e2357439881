//! Kafka conventions shared by the platform's services: client settings,
//! trace context and schema version in record headers, dead-letter publishing
//! and topic provisioning. Clients are rdkafka speaking the real protocol.

pub mod dead_letter;
pub mod headers;

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;

pub use dead_letter::{DeadLetter, DeadLetterPublisher, DeadLetterReason};

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
}

/// Where and how to reach the brokers.
#[derive(Clone, Debug)]
pub struct KafkaSettings {
    /// Comma-separated `host:port` list (`KAFKA_BROKERS`).
    pub brokers: String,
    /// Reported to the brokers; shows up in their logs and quotas.
    pub client_id: String,
}

impl KafkaSettings {
    pub fn new(brokers: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            client_id: client_id.into(),
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

    /// Creates the topics that do not exist yet; existing ones are left alone.
    pub async fn ensure_topics(&self, topics: &[(&str, i32)]) -> Result<()> {
        let admin: AdminClient<DefaultClientContext> = self.base().create()?;
        let new_topics: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for outcome in admin.create_topics(&new_topics, &options).await? {
            match outcome {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
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
}
