//! The prediction log: each prediction as a `mlops.predictions.v1.Prediction`
//! on Kafka (`PREDICTIONS_TOPIC`, `predictions.v1`), keyed by subscriber.
//!
//! Records go into librdkafka's bounded queue and a background thread sends
//! them, so a request never waits on the broker and never fails because of
//! it. A record that cannot be queued (the queue is full) or is not delivered
//! within `GATEWAY_PREDICTION_LOG_TIMEOUT_MS` (the broker is down) is counted
//! in `gateway_prediction_log_dropped_total`; delivered ones in
//! `gateway_prediction_log_sent_total`.

use std::time::{Duration, SystemTime};

use mlops_bus::KafkaSettings;
use mlops_proto::predictions::v1::{Prediction, SCHEMA_VERSION};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use prost::Message;
use rdkafka::ClientContext;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use sha2::{Digest, Sha256};

/// Records waiting for the broker at most; beyond, new ones are dropped.
const QUEUE_RECORDS: &str = "200000";

#[derive(Clone, Default)]
pub struct LogMetrics {
    pub sent: Counter,
    pub dropped: Counter,
}

impl LogMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "gateway_prediction_log_sent",
            "Predictions delivered to the prediction log topic",
            self.sent.clone(),
        );
        registry.register(
            "gateway_prediction_log_dropped",
            "Predictions lost to the prediction log (queue full or broker unreachable)",
            self.dropped.clone(),
        );
    }
}

struct Delivery(LogMetrics);

impl ClientContext for Delivery {}

impl ProducerContext for Delivery {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.0.sent.inc(),
            Err(_) => self.0.dropped.inc(),
        };
    }
}

pub struct PredictionLog {
    producer: ThreadedProducer<Delivery>,
    topic: String,
    metrics: LogMetrics,
}

/// One prediction, before encoding.
pub struct Entry<'a> {
    pub request_id: &'a str,
    pub subscriber_id: &'a str,
    pub model_name: &'a str,
    pub model_version: i64,
    pub score: f32,
    /// The model input of this prediction.
    pub input: &'a [f32],
    pub source: &'a str,
    pub features_version: u64,
}

impl PredictionLog {
    pub fn new(
        kafka: &KafkaSettings,
        topic: String,
        timeout: Duration,
        metrics: LogMetrics,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let producer = kafka
            .client_config()
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "50")
            .set("queue.buffering.max.messages", QUEUE_RECORDS)
            .set("message.timeout.ms", timeout.as_millis().to_string())
            .create_with_context(Delivery(metrics.clone()))?;
        Ok(Self {
            producer,
            topic,
            metrics,
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Queues `entry`; never blocks.
    pub fn record(&self, entry: &Entry<'_>) {
        let prediction = Prediction {
            request_id: entry.request_id.to_string(),
            subscriber_id: entry.subscriber_id.to_string(),
            model_name: entry.model_name.to_string(),
            model_version: entry.model_version,
            score: entry.score,
            feature_hash: feature_hash(entry.input),
            predicted_at: Some(SystemTime::now().into()),
            source: entry.source.to_string(),
            features_version: entry.features_version as i64,
        };
        let payload = prediction.encode_to_vec();
        let mut record = BaseRecord::<str, [u8]>::to(&self.topic)
            .payload(payload.as_slice())
            .headers(mlops_bus::headers::outgoing(SCHEMA_VERSION));
        // A protocol call names no subscriber: its records spread over the
        // partitions instead of all hashing to one.
        if !entry.subscriber_id.is_empty() {
            record = record.key(entry.subscriber_id);
        }
        if self.producer.send(record).is_err() {
            self.metrics.dropped.inc();
        }
    }

    /// Sends what is queued, waiting at most `timeout` (at shutdown).
    pub fn flush(&self, timeout: Duration) {
        if self.producer.flush(timeout).is_err() {
            let lost = self.producer.in_flight_count().max(0) as u64;
            self.metrics.dropped.inc_by(lost);
            tracing::warn!(lost, "predictions still queued at shutdown are lost");
        }
    }
}

/// sha256 (hex) of the input's float32 values, little-endian.
pub fn feature_hash(input: &[f32]) -> String {
    let mut hasher = Sha256::new();
    for v in input {
        hasher.update(v.to_le_bytes());
    }
    let digest = hasher.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
