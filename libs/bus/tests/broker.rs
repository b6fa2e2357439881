//! The bus conventions against a real Kafka-protocol broker (tansu, from
//! `TEST_KAFKA_BROKERS`): topic creation settings, schema version and W3C
//! trace context through record headers, and dead letters (headers, bytes,
//! order) published pipelined.

use std::time::Duration;

use mlops_bus::dead_letter::{
    self, DETAIL, ORIGINAL_OFFSET, ORIGINAL_PARTITION, ORIGINAL_TOPIC, REASON,
};
use mlops_bus::{
    DeadLetter, DeadLetterPublisher, DeadLetterReason, KafkaSettings, TopicSettings, TopicSpec,
    headers,
};
use mlops_runtime::telemetry::{self, LogFormat};
use mlops_runtime::{EnvReader, TelemetryConfig};
use mlops_testkit::{brokers, unique};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureRecord;

const TIMEOUT: Duration = Duration::from_secs(10);

fn settings(create: bool) -> KafkaSettings {
    KafkaSettings {
        topics: TopicSettings {
            create,
            ..TopicSettings::default()
        },
        ..KafkaSettings::new(brokers(), "bus-test")
    }
}

/// Partitions of a topic as the broker reports them (0: no such topic).
fn partitions(topic: &str) -> usize {
    let consumer: BaseConsumer = settings(true)
        .consumer_config(&unique("meta"))
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .expect("metadata");
    metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
        .sum()
}

/// Every record of a topic, in partition and offset order.
fn read_all(topic: &str, expected: usize) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = settings(true)
        .consumer_config(&unique("reader"))
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut messages = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while messages.len() < expected && std::time::Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            messages.push(message.expect("message").detach());
        }
    }
    assert_eq!(messages.len(), expected, "records on {topic}");
    messages
}

fn header<'a>(message: &'a OwnedMessage, key: &str) -> Option<&'a str> {
    use rdkafka::message::Headers;
    let headers = message.headers()?;
    (0..headers.count())
        .map(|i| headers.get(i))
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_with_the_given_partitions_and_the_broker_default_replication() {
    let explicit = unique("explicit");
    let broker_default = unique("default");
    let kafka = settings(true);
    assert_eq!(kafka.topics.replication_factor, -1);
    kafka
        .ensure_topics(&[
            TopicSpec {
                name: &explicit,
                partitions: 4,
            },
            TopicSpec {
                name: &broker_default,
                partitions: -1,
            },
        ])
        .await
        .expect("create");
    assert_eq!(partitions(&explicit), 4);
    assert!(
        partitions(&broker_default) >= 1,
        "broker default partitions"
    );
    // Existing topics are left alone, whatever the spec says now.
    kafka
        .ensure_topics(&[TopicSpec {
            name: &explicit,
            partitions: 8,
        }])
        .await
        .expect("idempotent");
    assert_eq!(partitions(&explicit), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_creation_off_no_topic_is_created() {
    let topic = unique("managed");
    settings(false)
        .ensure_topics(&[TopicSpec {
            name: &topic,
            partitions: 3,
        }])
        .await
        .expect("nothing to do");
    assert_eq!(
        partitions(&topic),
        0,
        "a topic was created although creation is off"
    );
}

#[test]
fn topic_settings_come_from_the_environment() {
    let mut env = EnvReader::from_pairs(&[
        ("KAFKA_BROKERS", "a:9092,b:9092"),
        ("KAFKA_CREATE_TOPICS", "false"),
        ("KAFKA_REPLICATION_FACTOR", "3"),
    ]);
    let kafka = KafkaSettings::from_env(&mut env, "svc");
    assert!(env.finish().is_ok());
    assert_eq!(kafka.brokers, "a:9092,b:9092");
    assert_eq!(
        kafka.topics,
        TopicSettings {
            create: false,
            replication_factor: 3
        }
    );
    let mut env = EnvReader::from_pairs(&[("KAFKA_REPLICATION_FACTOR", "0"), ("P", "0")]);
    let _ = KafkaSettings::from_env(&mut env, "svc");
    let _ = mlops_bus::partitions_from_env(&mut env, "P", -1);
    let text = env.finish().expect_err("invalid").to_string();
    assert!(
        text.contains("KAFKA_REPLICATION_FACTOR must be at least 1, or -1"),
        "{text}"
    );
    assert!(text.contains("P must be at least 1, or -1"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_version_and_trace_context_cross_kafka_in_headers() {
    // Spans need a tracer and the W3C propagator; the exporter's endpoint
    // does not have to answer for that.
    let _telemetry = telemetry::init(&TelemetryConfig {
        service_name: "bus-test".into(),
        log_filter: "info".into(),
        log_format: LogFormat::Text,
        otlp_endpoint: Some("http://127.0.0.1:9".into()),
    })
    .expect("telemetry");
    let topic = unique("traced");
    let kafka = settings(true);
    kafka
        .ensure_topics(&[TopicSpec {
            name: &topic,
            partitions: 1,
        }])
        .await
        .expect("topic");
    let producer = kafka.idempotent_producer().expect("producer");
    let sent_traceparent = {
        let span = tracing::info_span!("produce");
        let _entered = span.enter();
        let outgoing = headers::outgoing("v1");
        producer
            .send(
                FutureRecord::to(&topic)
                    .key("sub-1")
                    .payload("x")
                    .headers(outgoing),
                TIMEOUT,
            )
            .await
            .map_err(|(e, _)| e)
            .expect("send");
        telemetry::current_trace_headers()
            .into_iter()
            .find(|(k, _)| k == "traceparent")
            .map(|(_, v)| v)
            .expect("the span has a trace context")
    };

    let message = read_all(&topic, 1).remove(0);
    assert_eq!(header(&message, headers::SCHEMA_VERSION), Some("v1"));
    let received = header(&message, headers::TRACEPARENT).expect("traceparent header");
    assert_eq!(received, sent_traceparent);

    // A consumer's span continues the producer's trace.
    let trace_id = |traceparent: &str| traceparent.split('-').nth(1).map(str::to_string);
    let consumer_span = tracing::info_span!("consume");
    mlops_runtime::telemetry::continue_trace_from(&consumer_span, |key| header(&message, key));
    let continued = consumer_span.in_scope(|| {
        telemetry::current_trace_headers()
            .into_iter()
            .find(|(k, _)| k == "traceparent")
            .map(|(_, v)| v)
            .expect("continued trace")
    });
    assert_eq!(trace_id(&continued), trace_id(&sent_traceparent));
    assert_ne!(
        continued, sent_traceparent,
        "the consumer's span is a new span"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_dead_letters_keep_bytes_headers_and_order() {
    let dlq = unique("dlq");
    let kafka = settings(true);
    kafka
        .ensure_topics(&[TopicSpec {
            name: &dlq,
            partitions: 1,
        }])
        .await
        .expect("topic");
    let publisher = DeadLetterPublisher::new(kafka.idempotent_producer().expect("producer"), &dlq);
    let payloads: Vec<Vec<u8>> = (0..500u32)
        .map(|i| format!("bad-{i}\u{0}\u{ff}").into_bytes())
        .collect();
    let mut pending = Vec::new();
    for (offset, payload) in payloads.iter().enumerate() {
        let letter = DeadLetter {
            reason: DeadLetterReason::Undecodable,
            detail: format!("record {offset} is not a TelecomEvent"),
            topic: "telecom.events.v1",
            partition: 2,
            offset: offset as i64,
            key: Some(b"sub-7"),
            payload: Some(payload),
        };
        pending.push(publisher.enqueue(&letter).await.expect("enqueue"));
    }
    dead_letter::acknowledge_all(pending)
        .await
        .expect("all acknowledged");

    let messages = read_all(&dlq, payloads.len());
    for (i, message) in messages.iter().enumerate() {
        assert_eq!(
            message.payload(),
            Some(payloads[i].as_slice()),
            "bytes of {i}"
        );
        assert_eq!(message.key(), Some(b"sub-7".as_slice()));
        assert_eq!(header(message, REASON), Some("undecodable"));
        assert_eq!(
            header(message, DETAIL).map(str::to_string),
            Some(format!("record {i} is not a TelecomEvent"))
        );
        assert_eq!(header(message, ORIGINAL_TOPIC), Some("telecom.events.v1"));
        assert_eq!(header(message, ORIGINAL_PARTITION), Some("2"));
        assert_eq!(
            header(message, ORIGINAL_OFFSET).map(str::to_string),
            Some(i.to_string()),
            "dead letters out of order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_that_cannot_be_delivered_fails_with_its_coordinates() {
    // Nothing listens on port 9: the producer gives up after its timeout.
    let kafka = KafkaSettings::new("127.0.0.1:9", "bus-test");
    let producer: rdkafka::producer::FutureProducer = {
        let mut config = rdkafka::ClientConfig::new();
        config
            .set("bootstrap.servers", &kafka.brokers)
            .set("message.timeout.ms", "1500");
        config.create().expect("producer")
    };
    let publisher = DeadLetterPublisher::new(producer, "dlq");
    let letter = DeadLetter {
        reason: DeadLetterReason::Invalid,
        detail: "missing subscriber_id".into(),
        topic: "events",
        partition: 1,
        offset: 41,
        key: None,
        payload: Some(b"x"),
    };
    let pending = publisher.enqueue(&letter).await.expect("queued locally");
    let error = pending.acknowledged().await.expect_err("undeliverable");
    let text = error.to_string();
    assert!(
        text.contains("the dead letter of partition 1 offset 41 was not acknowledged by dlq"),
        "{text}"
    );
}
