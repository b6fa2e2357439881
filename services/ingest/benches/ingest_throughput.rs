//! Ingest throughput against the raw consume rate, and under bad input, in
//! one run on one broker.
//!
//! Fills fresh topics with the same deterministic backfill: one clean, one
//! with 1% malformed records, one with 50%. Then measures
//! (1) a bare rdkafka consumer reading the clean topic (the ceiling), and
//! (2) the ingest pipeline on each topic: decoding, validating,
//!     dead-lettering and committing into a bronze Delta table on the local
//!     filesystem, until every record's batch has committed.
//! It prints every rate, ingest/raw (target >= 0.5) and each bad-input rate
//! against the clean one (target at 1% malformed: >= 0.8).
//!
//! Run with `./scripts/bench.sh ingest` (starts the broker). Size with
//! `BENCH_SUBSCRIBERS` and `BENCH_DAYS`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mlops_ingest::{App, IngestConfig};
use mlops_lake::LakeLocation;
use mlops_producer::run::ProducerMetrics;
use mlops_producer::{ProducerConfig, Summary};
use mlops_runtime::{EnvReader, Shutdown};
use rdkafka::consumer::{BaseConsumer, Consumer};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[allow(clippy::print_stdout)]
fn report(label: &str, records: u64, elapsed: Duration) -> f64 {
    let rate = records as f64 / elapsed.as_secs_f64();
    println!(
        "{label:<40} {records:>9} records in {:>7.2}s = {rate:>10.0} records/s",
        elapsed.as_secs_f64()
    );
    rate
}

/// Fills a fresh topic; `malformed_rate` is the producer's: extra bad
/// records per event, so `r` gives a share of `r / (1 + r)` of the input.
async fn fill(brokers: &str, malformed_rate: f64) -> anyhow::Result<(String, Summary)> {
    let topic = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let producer = ProducerConfig::from_args([
        "producer",
        "--brokers",
        brokers,
        "--topic",
        &topic,
        "--topic-partitions",
        "3",
        "--subscribers",
        &env_or("BENCH_SUBSCRIBERS", "2000"),
        "--days",
        &env_or("BENCH_DAYS", "8"),
        "--start-date",
        "2026-01-01",
        "--malformed-rate",
        &malformed_rate.to_string(),
    ])?;
    let sent = mlops_producer::run(&producer, &ProducerMetrics::default(), Shutdown::new()).await?;
    Ok((topic, sent))
}

/// Ingests a topic into a fresh lake; the clock runs from the first record
/// consumed to the commit of the batch holding the last one (group join and
/// table creation are not throughput).
async fn ingest(brokers: &str, topic: &str, sent: &Summary) -> anyhow::Result<Duration> {
    let dir = tempfile::tempdir()?;
    let env = HashMap::from([
        ("KAFKA_BROKERS".to_string(), brokers.to_string()),
        ("EVENTS_TOPIC".to_string(), topic.to_string()),
        ("INGEST_GROUP_ID".to_string(), format!("ingest-{topic}")),
        ("ADMIN_ADDR".to_string(), "127.0.0.1:0".to_string()),
        ("INGEST_BATCH_MAX_WAIT_MS".to_string(), "250".to_string()),
    ]);
    let mut config = IngestConfig::from_env(&mut EnvReader::from_map(env))?;
    config.lake = LakeLocation::parse(dir.path().to_str().unwrap_or("."))?;
    let launched = mlops_runtime::service::launch::<App>(config).await?;
    let metrics = launched.service().metrics();
    let shutdown = Shutdown::new();
    let running = tokio::spawn(launched.run(shutdown.clone()));
    while metrics.consumed.get() == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = Instant::now();
    while metrics.committed.get() < sent.total {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    shutdown.trigger();
    running.await??;
    Ok(elapsed)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let brokers = std::env::var("TEST_KAFKA_BROKERS")
        .map_err(|_| anyhow::anyhow!("TEST_KAFKA_BROKERS is not set: run ./scripts/bench.sh"))?;

    let started = Instant::now();
    let (clean_topic, clean) = fill(&brokers, 0.0).await?;
    let (one_topic, one) = fill(&brokers, 1.0 / 99.0).await?;
    let (half_topic, half) = fill(&brokers, 1.0).await?;
    report(
        "fill three topics (producer)",
        clean.total + one.total + half.total,
        started.elapsed(),
    );

    // (1) Raw consume: the clean records, no processing.
    let consumer: BaseConsumer = mlops_bus::KafkaSettings::new(&brokers, "bench-raw")
        .consumer_config(&format!("raw-{clean_topic}"))
        .create()?;
    consumer.subscribe(&[&clean_topic])?;
    let mut seen = 0u64;
    let mut started = None;
    while seen < clean.total {
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            message?;
            started.get_or_insert_with(Instant::now);
            seen += 1;
        }
    }
    let raw = report(
        "raw rdkafka consume (clean)",
        seen,
        started.map(|s| s.elapsed()).unwrap_or_default(),
    );
    drop(consumer);

    // (2) Ingest each topic into bronze on the local filesystem.
    let mut rates = Vec::new();
    for (label, topic, sent) in [
        ("ingest, clean", &clean_topic, &clean),
        ("ingest, 1% malformed", &one_topic, &one),
        ("ingest, 50% malformed", &half_topic, &half),
    ] {
        let malformed = sent.by_kind.get("malformed_bytes").copied().unwrap_or(0)
            + sent.by_kind.get("malformed_event").copied().unwrap_or(0);
        let elapsed = ingest(&brokers, topic, sent).await?;
        let share = 100.0 * malformed as f64 / sent.total as f64;
        rates.push(report(
            &format!("{label} ({share:.1}% dead-lettered)"),
            sent.total,
            elapsed,
        ));
    }

    #[allow(clippy::print_stdout)]
    {
        println!(
            "ratio ingest/raw (clean)       = {:.2} (target >= 0.50)",
            rates[0] / raw
        );
        println!(
            "ratio 1% malformed / clean     = {:.2} (target >= 0.80)",
            rates[1] / rates[0]
        );
        println!(
            "ratio 50% malformed / clean    = {:.2}",
            rates[2] / rates[0]
        );
    }
    Ok(())
}
