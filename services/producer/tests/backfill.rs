//! The producer against a real broker (tansu): records are keyed by
//! subscriber, carry the schema version, `--max-events` stops the run
//! exactly, and `--truth-out` writes one ground-truth line per subscriber.

use std::time::{Duration, Instant};

use mlops_producer::ProducerConfig;
use mlops_producer::run::ProducerMetrics;
use mlops_proto::events::v1::TelecomEvent;
use mlops_runtime::Shutdown;
use prost::Message as _;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;

fn brokers() -> String {
    std::env::var("TEST_KAFKA_BROKERS")
        .expect("TEST_KAFKA_BROKERS is not set: run the tests through ./scripts/test.sh")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_sends_keyed_versioned_events_and_writes_the_truth() {
    let topic = format!("events-{}", uuid::Uuid::new_v4().simple());
    let dir = tempfile::tempdir().expect("temp dir");
    let truth = dir.path().join("truth.jsonl");
    let config = ProducerConfig::from_args([
        "producer",
        "--brokers",
        &brokers(),
        "--topic",
        &topic,
        "--topic-partitions",
        "2",
        "--subscribers",
        "40",
        "--days",
        "30",
        "--max-events",
        "1500",
        "--start-date",
        "2026-02-01",
        "--admin-addr",
        "127.0.0.1:0",
        "--truth-out",
        truth.to_str().expect("utf-8"),
    ])
    .expect("args");
    let metrics = ProducerMetrics::default();
    let summary = mlops_producer::run(&config, &metrics, Shutdown::new())
        .await
        .expect("run");
    assert_eq!(summary.total, 1500, "--max-events stops the run exactly");
    assert_eq!(summary.by_kind.get("activation"), Some(&40));
    assert_eq!(metrics.delivery_failures.get(), 0);

    let lines = std::fs::read_to_string(&truth).expect("truth file");
    assert_eq!(lines.lines().count(), 40, "one truth line per subscriber");
    let first: serde_json::Value =
        serde_json::from_str(lines.lines().next().expect("line")).expect("json");
    assert!(first.get("churn_date").is_some() && first.get("mean_daily_hazard").is_some());

    let consumer: BaseConsumer = mlops_bus::KafkaSettings::new(brokers(), "test")
        .consumer_config(&format!("check-{topic}"))
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let started = Instant::now();
    let mut seen = 0;
    while seen < 1500 && started.elapsed() < Duration::from_secs(30) {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.expect("message");
        let event =
            TelecomEvent::decode(message.payload().expect("payload")).expect("a valid event");
        assert_eq!(
            message.key(),
            Some(event.subscriber_id.as_bytes()),
            "key = subscriber_id"
        );
        let version = message
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "schema-version"))
            .and_then(|h| h.value)
            .expect("schema-version header");
        assert_eq!(version, b"v1");
        seen += 1;
    }
    assert_eq!(seen, 1500, "every record reached the topic");
}

/// Every record of `topic`, decoded (waits until `expected` arrived).
fn read_events(topic: &str, expected: usize) -> Vec<TelecomEvent> {
    let consumer: BaseConsumer = mlops_bus::KafkaSettings::new(brokers(), "test")
        .consumer_config(&format!("check-{topic}"))
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let started = Instant::now();
    let mut events = Vec::new();
    while events.len() < expected && started.elapsed() < Duration::from_secs(30) {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("message");
            events.push(TelecomEvent::decode(message.payload().expect("payload")).expect("event"));
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_mode_continues_the_backfilled_world_with_new_event_ids() {
    let topic = format!("events-{}", uuid::Uuid::new_v4().simple());
    let args = |mode: &str| {
        ProducerConfig::from_args([
            "producer",
            "--brokers",
            &brokers(),
            "--topic",
            &topic,
            "--mode",
            mode,
            "--subscribers",
            "20",
            "--days",
            "3",
            "--rate",
            "2000",
            "--max-events",
            "150",
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .expect("args")
    };
    let metrics = ProducerMetrics::default();
    let backfill = mlops_producer::run(&args("backfill"), &metrics, Shutdown::new())
        .await
        .expect("backfill");
    let started = chrono::Utc::now();
    let live = mlops_producer::run(&args("live"), &metrics, Shutdown::new())
        .await
        .expect("live");
    assert_eq!(live.total, 150);
    assert_eq!(
        live.by_kind.get("activation"),
        None,
        "the subscribers were activated in the simulated days"
    );

    let events = read_events(&topic, (backfill.total + live.total) as usize);
    assert_eq!(events.len() as u64, backfill.total + live.total);
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(
        ids.len(),
        events.len(),
        "no live event repeats a backfill id"
    );
    let live_times = events
        .iter()
        .filter_map(|e| e.event_time)
        .filter(|t| t.seconds >= started.timestamp() - 1)
        .count();
    assert_eq!(live_times as u64, live.total, "live events happen now");
}
