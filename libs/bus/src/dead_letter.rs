//! Dead-letter publishing: a record that cannot be processed is copied, bytes
//! unchanged, to the dead-letter topic with headers saying why and where it
//! came from. The copy is awaited before the caller moves on, so a record is
//! never acknowledged without being either processed or dead-lettered.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

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
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(source, _)| Error::Publish {
                topic: self.topic.clone(),
                source,
            })
    }
}
