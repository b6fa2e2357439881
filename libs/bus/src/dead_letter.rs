//! Dead-letter publishing: a record that cannot be processed is copied, bytes
//! unchanged, to the dead-letter topic with headers saying why and where it
//! came from.
//!
//! Letters are pipelined: [`DeadLetterPublisher::enqueue`] hands a letter to
//! the idempotent producer and returns at once, so a burst of bad records
//! does not wait a broker round trip each. The caller must await every
//! [`PendingDeadLetter`] before it acknowledges the original records (for
//! ingest: before the batch that skips them commits), so a record is never
//! acknowledged without being either processed or dead-lettered. The
//! idempotent producer keeps the letters' order within each partition.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::{Error, Result};

pub const REASON: &str = "dlq-reason";
pub const DETAIL: &str = "dlq-detail";
pub const ORIGINAL_TOPIC: &str = "dlq-original-topic";
pub const ORIGINAL_PARTITION: &str = "dlq-original-partition";
pub const ORIGINAL_OFFSET: &str = "dlq-original-offset";

/// Why a record was rejected; the stable code is the `dlq-reason` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// The payload is not a valid protobuf message.
    Undecodable,
    /// The `schema-version` header names a version this reader does not know.
    UnsupportedSchema,
    /// The payload decodes but misses or breaks a required field.
    Invalid,
    /// A payload kind this reader does not know.
    UnknownKind,
}

impl DeadLetterReason {
    pub fn code(self) -> &'static str {
        match self {
            Self::Undecodable => "undecodable",
            Self::UnsupportedSchema => "unsupported_schema",
            Self::Invalid => "invalid",
            Self::UnknownKind => "unknown_kind",
        }
    }
}

/// A rejected record and its provenance.
#[derive(Clone, Debug)]
pub struct DeadLetter<'a> {
    pub reason: DeadLetterReason,
    pub detail: String,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
}

#[derive(Clone)]
pub struct DeadLetterPublisher {
    producer: FutureProducer,
    topic: String,
}

impl DeadLetterPublisher {
    pub fn new(producer: FutureProducer, topic: impl Into<String>) -> Self {
        Self {
            producer,
            topic: topic.into(),
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Publishes and waits for the broker's acknowledgement.
    pub async fn publish(&self, letter: &DeadLetter<'_>) -> Result<()> {
        self.enqueue(letter).await?.acknowledged().await
    }

    /// Hands the letter to the producer without waiting for the broker; when
    /// the producer's queue is full, waits until it has room.
    pub async fn enqueue(&self, letter: &DeadLetter<'_>) -> Result<PendingDeadLetter> {
        let partition = letter.partition.to_string();
        let offset = letter.offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: REASON,
                value: Some(letter.reason.code()),
            })
            .insert(Header {
                key: DETAIL,
                value: Some(letter.detail.as_str()),
            })
            .insert(Header {
                key: ORIGINAL_TOPIC,
                value: Some(letter.topic),
            })
            .insert(Header {
                key: ORIGINAL_PARTITION,
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: ORIGINAL_OFFSET,
                value: Some(offset.as_str()),
            });
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.topic).headers(headers);
        if let Some(key) = letter.key {
            record = record.key(key);
        }
        if let Some(payload) = letter.payload {
            record = record.payload(payload);
        }
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    return Ok(PendingDeadLetter {
                        delivery,
                        topic: self.topic.clone(),
                        original_partition: letter.partition,
                        original_offset: letter.offset,
                    });
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    // The producer's own thread drains the queue meanwhile.
                    record = returned;
                    tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                }
                Err((source, _)) => {
                    return Err(Error::Publish {
                        topic: self.topic.clone(),
                        source,
                    });
                }
            }
        }
    }
}

const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(5);

/// A dead letter handed to the producer whose acknowledgement is pending.
#[must_use = "a dead letter counts only once acknowledged"]
pub struct PendingDeadLetter {
    delivery: DeliveryFuture,
    topic: String,
    original_partition: i32,
    original_offset: i64,
}

impl PendingDeadLetter {
    /// Waits for the broker's acknowledgement (the producer retries for up
    /// to its `message.timeout.ms` before giving up).
    pub async fn acknowledged(self) -> Result<()> {
        let failed = |source| Error::DeadLetter {
            topic: self.topic.clone(),
            partition: self.original_partition,
            offset: self.original_offset,
            source,
        };
        match self.delivery.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((source, _))) => Err(failed(source)),
            Err(_canceled) => Err(failed(KafkaError::Canceled)),
        }
    }
}

/// Awaits every pending letter. Deliveries settle in the order they were
/// sent, so awaiting them in turn costs no more than waiting for the last.
/// All are awaited; the first failure is returned.
pub async fn acknowledge_all(pending: Vec<PendingDeadLetter>) -> Result<()> {
    let mut first_failure = None;
    for letter in pending {
        if let Err(error) = letter.acknowledged().await {
            first_failure.get_or_insert(error);
        }
    }
    first_failure.map_or(Ok(()), Err)
}
