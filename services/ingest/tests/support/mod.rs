//! Shared helpers of the ingest integration tests. Infrastructure comes from
//! the environment set by `scripts/test.sh` (see `scripts/infra.sh env`); a
//! missing variable fails the test with a clear message instead of skipping.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int32Type, Int64Type};
use mlops_ingest::metrics::IngestMetrics;
use mlops_ingest::{App, IngestConfig};
use mlops_lake::{LakeLocation, bronze};
use mlops_producer::run::ProducerMetrics;
use mlops_producer::{ProducerConfig, Summary};
use mlops_runtime::{EnvReader, Shutdown};
pub use mlops_testkit::*;

/// Sends a deterministic backfill to `topic` and returns what was sent.
pub async fn produce(topic: &str, partitions: i32, extra_args: &[&str]) -> Summary {
    let mut args = vec![
        "producer".to_string(),
        "--brokers".into(),
        brokers(),
        "--topic".into(),
        topic.into(),
        "--topic-partitions".into(),
        partitions.to_string(),
        "--start-date".into(),
        "2026-01-01".into(),
        "--admin-addr".into(),
        "127.0.0.1:0".into(),
    ];
    args.extend(extra_args.iter().map(|s| s.to_string()));
    let config = ProducerConfig::from_args(args).expect("producer args");
    mlops_producer::run(&config, &ProducerMetrics::default(), Shutdown::new())
        .await
        .expect("producer run")
}

/// Ingest settings for a test: its own topic, group and lake.
pub fn ingest_env(
    topic: &str,
    group: &str,
    lake: &TestLake,
    extra: &[(&str, &str)],
) -> HashMap<String, String> {
    let mut env = lake.env.clone();
    env.extend(
        [
            ("KAFKA_BROKERS", brokers()),
            ("EVENTS_TOPIC", topic.to_string()),
            ("INGEST_GROUP_ID", group.to_string()),
            ("ADMIN_ADDR", "127.0.0.1:0".to_string()),
            ("INGEST_BATCH_MAX_WAIT_MS", "500".to_string()),
            ("INGEST_BATCH_MAX_RECORDS", "2000".to_string()),
            // tansu cannot fetch from inside a record batch.
            ("INGEST_RESUME", "scan".to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

pub fn ingest_config(env: &HashMap<String, String>, lake: &TestLake) -> IngestConfig {
    let mut config =
        IngestConfig::from_env(&mut EnvReader::from_map(env.clone())).expect("ingest config");
    config.lake = lake.location.clone();
    config
}

/// A running ingest service (the real lifecycle, admin server on port 0).
pub struct RunningIngest {
    pub metrics: IngestMetrics,
    pub admin: std::net::SocketAddr,
    pub shutdown: Shutdown,
    task: tokio::task::JoinHandle<Result<(), mlops_runtime::LifecycleError>>,
}

impl RunningIngest {
    pub async fn start(config: IngestConfig) -> Self {
        let launched = mlops_runtime::service::launch::<App>(config)
            .await
            .expect("launch ingest");
        let shutdown = Shutdown::new();
        Self {
            metrics: launched.service().metrics(),
            admin: launched.admin_addr(),
            shutdown: shutdown.clone(),
            task: tokio::spawn(launched.run(shutdown)),
        }
    }

    /// Stops it and waits until it has drained; panics if it failed.
    pub async fn stop(self) {
        self.shutdown.trigger();
        self.task.await.expect("join").expect("ingest ran cleanly");
    }
}

/// (partition, offset) of every bronze row, and how many rows there are.
pub async fn bronze_offsets(lake: &LakeLocation) -> Vec<(i32, i64)> {
    let table = match bronze::spec().open(lake).await {
        Ok(table) => table,
        Err(_) => return Vec::new(),
    };
    let batches = mlops_lake::read::read_all(&table)
        .await
        .expect("read bronze");
    let mut out = Vec::new();
    for batch in batches {
        let partitions = batch
            .column_by_name(bronze::KAFKA_PARTITION)
            .expect("partition column")
            .as_primitive::<Int32Type>()
            .clone();
        let offsets = batch
            .column_by_name(bronze::KAFKA_OFFSET)
            .expect("offset column")
            .as_primitive::<Int64Type>()
            .clone();
        for i in 0..batch.num_rows() {
            assert!(!partitions.is_null(i) && !offsets.is_null(i));
            out.push((partitions.value(i), offsets.value(i)));
        }
    }
    out
}

/// Asserts bronze holds each (partition, offset) at most once and returns the
/// count per partition.
pub fn assert_no_duplicates(offsets: &[(i32, i64)]) -> BTreeMap<i32, usize> {
    let mut seen = std::collections::HashSet::new();
    let mut per_partition = BTreeMap::new();
    for key in offsets {
        assert!(
            seen.insert(*key),
            "duplicate bronze row for partition/offset {key:?}"
        );
        *per_partition.entry(key.0).or_insert(0) += 1;
    }
    per_partition
}

/// Reads every record of a topic (from the beginning) until `expected`
/// records arrived or the timeout passed.
pub fn read_topic(
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<rdkafka::message::OwnedMessage> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = mlops_bus::KafkaSettings::new(brokers(), "test-reader")
        .consumer_config(&unique("reader"))
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let started = Instant::now();
    let mut out = Vec::new();
    while out.len() < expected && started.elapsed() < timeout {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            out.push(message.detach());
        }
    }
    out
}
