//! Ingest throughput against the raw consume rate, in one run on one broker.
//!
//! Fills a fresh topic with a deterministic backfill, then measures
//! (1) a bare rdkafka consumer reading every record (the ceiling), and
//! (2) the ingest pipeline decoding, validating and committing the same
//! records into a bronze Delta table on the local filesystem,
//! and prints both rates and their ratio (target: ratio >= 0.5).
//!
//! Run with `./scripts/bench.sh` (starts the broker). Size with
//! `BENCH_SUBSCRIBERS` and `BENCH_DAYS`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::Parser;
use mlops_ingest::{App, IngestConfig};
use mlops_lake::LakeLocation;
use mlops_producer::ProducerConfig;
use mlops_producer::run::ProducerMetrics;
use mlops_runtime::{EnvReader, Shutdown};
use rdkafka::consumer::{BaseConsumer, Consumer};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[allow(clippy::print_stdout)]
fn report(label: &str, records: u64, elapsed: Duration) -> f64 {
    let rate = records as f64 / elapsed.as_secs_f64();
    println!(
        "{label:<28} {records:>9} records in {:>7.2}s = {rate:>10.0} records/s",
        elapsed.as_secs_f64()
    );
    rate
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let brokers = std::env::var("TEST_KAFKA_BROKERS")
        .map_err(|_| anyhow::anyhow!("TEST_KAFKA_BROKERS is not set: run ./scripts/bench.sh"))?;
    let topic = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let subscribers = env_or("BENCH_SUBSCRIBERS", "2000");
    let days = env_or("BENCH_DAYS", "8");

    let producer = ProducerConfig::try_parse_from([
        "producer",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--topic-partitions",
        "3",
        "--subscribers",
        &subscribers,
        "--days",
        &days,
        "--start-date",
        "2026-01-01",
        "--admin-addr",
        "127.0.0.1:0",
    ])?;
    let started = Instant::now();
    let sent = mlops_producer::run(&producer, &ProducerMetrics::default(), Shutdown::new()).await?;
    report("fill topic (producer)", sent.total, started.elapsed());

    // (1) Raw consume: the same records, no processing.
    let consumer: BaseConsumer = mlops_bus::KafkaSettings::new(&brokers, "bench-raw")
        .consumer_config(&format!("raw-{topic}"))
        .create()?;
    consumer.subscribe(&[&topic])?;
    let mut seen = 0u64;
    let mut started = None;
    while seen < sent.total {
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            message?;
            started.get_or_insert_with(Instant::now);
            seen += 1;
        }
    }
    let raw = report(
        "raw rdkafka consume",
        seen,
        started.map(|s| s.elapsed()).unwrap_or_default(),
    );
    drop(consumer);

    // (2) Ingest into bronze on the local filesystem.
    let dir = tempfile::tempdir()?;
    let env = HashMap::from([
        ("KAFKA_BROKERS".to_string(), brokers.clone()),
        ("EVENTS_TOPIC".to_string(), topic.clone()),
        ("INGEST_GROUP_ID".to_string(), format!("ingest-{topic}")),
        ("ADMIN_ADDR".to_string(), "127.0.0.1:0".to_string()),
        ("INGEST_BATCH_MAX_WAIT_MS".to_string(), "250".to_string()),
    ]);
    let mut config = IngestConfig::from_env(&mut EnvReader::from_map(env))?;
    config.lake = LakeLocation::parse(dir.path().to_str().unwrap_or("."))?;
    let app = App::build(config).await?;
    let metrics = app.metrics();
    let shutdown = Shutdown::new();
    let running = tokio::spawn(app.run(shutdown.clone()));
    // Like the raw consumer, the clock starts at the first record (group
    // join and table creation are not throughput).
    while metrics.consumed.get() == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = Instant::now();
    while metrics.written.get() < sent.total {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ingest = report(
        "ingest into bronze (local fs)",
        metrics.written.get(),
        started.elapsed(),
    );
    shutdown.trigger();
    running.await??;

    #[allow(clippy::print_stdout)]
    {
        println!("ratio ingest/raw = {:.2} (target >= 0.50)", ingest / raw);
    }
    Ok(())
}
