//! Ingest against a real broker (tansu) and the local filesystem: every valid
//! record lands in bronze once, malformed ones go to the dead-letter topic with
//! their reason and provenance, and a graceful stop commits the open batch.

mod support;

use std::time::Duration;

use mlops_bus::dead_letter;
use rdkafka::message::{Headers, Message};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_records_reach_bronze_once_and_malformed_ones_the_dlq() {
    let topic = unique("events");
    let sent = produce(
        &topic,
        3,
        &[
            "--subscribers",
            "150",
            "--days",
            "3",
            "--malformed-rate",
            "0.03",
            "--duplicate-rate",
            "0.02",
        ],
    )
    .await;
    let malformed = sent.by_kind.get("malformed_bytes").copied().unwrap_or(0)
        + sent.by_kind.get("malformed_event").copied().unwrap_or(0);
    let valid = sent.total - malformed;
    assert!(
        malformed > 10,
        "the run must include malformed records: {sent:?}"
    );

    let lake = TestLake::new(Store::Local);
    let env = ingest_env(&topic, &unique("group"), &lake, &[]);
    let config = ingest_config(&env, &lake);
    let dlq_topic = config.dlq_topic.clone();
    let ingest = RunningIngest::start(config).await;
    let metrics = ingest.metrics.clone();

    eventually(
        Duration::from_secs(90),
        "all valid records in bronze",
        || async { bronze_offsets(&lake.location).await.len() as u64 >= valid },
    )
    .await;
    ingest.stop().await;

    let offsets = bronze_offsets(&lake.location).await;
    assert_eq!(
        offsets.len() as u64,
        valid,
        "bronze rows = valid records sent"
    );
    let per_partition = assert_no_duplicates(&offsets);
    assert_eq!(per_partition.len(), 3, "all partitions ingested");
    assert_eq!(metrics.written.get(), valid);
    assert_eq!(metrics.consumed.get(), sent.total);

    let letters = read_topic(&dlq_topic, malformed as usize, Duration::from_secs(30));
    assert_eq!(
        letters.len() as u64,
        malformed,
        "one dead letter per malformed record"
    );
    let bronze_keys: std::collections::HashSet<_> = offsets.into_iter().collect();
    for letter in &letters {
        let headers = letter.headers().expect("dead letters carry headers");
        let get = |key: &str| {
            headers
                .iter()
                .find(|h| h.key == key)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).to_string())
                .unwrap_or_else(|| panic!("header {key} missing"))
        };
        let reason = get(dead_letter::REASON);
        assert!(
            reason == "undecodable" || reason == "invalid",
            "reason {reason}"
        );
        assert!(!get(dead_letter::DETAIL).is_empty());
        assert_eq!(get(dead_letter::ORIGINAL_TOPIC), topic);
        let partition: i32 = get(dead_letter::ORIGINAL_PARTITION)
            .parse()
            .expect("partition");
        let offset: i64 = get(dead_letter::ORIGINAL_OFFSET).parse().expect("offset");
        assert!(
            !bronze_keys.contains(&(partition, offset)),
            "a dead letter never reaches bronze"
        );
        assert!(
            letter.payload().is_some_and(|p| !p.is_empty()),
            "the original bytes are kept"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_from_the_table_not_the_group_offsets() {
    let topic = unique("events");
    let sent = produce(&topic, 2, &["--subscribers", "50", "--days", "2"]).await;
    let lake = TestLake::new(Store::Local);

    // First run with one group, then a second run under a new group (which
    // has no Kafka offsets at all): the table alone says where to resume.
    for group in [unique("group"), unique("group")] {
        let env = ingest_env(&topic, &group, &lake, &[]);
        let ingest = RunningIngest::start(ingest_config(&env, &lake)).await;
        eventually(Duration::from_secs(60), "bronze complete", || async {
            bronze_offsets(&lake.location).await.len() as u64 >= sent.total
        })
        .await;
        // Give the second run time to (wrongly) re-ingest if it would.
        tokio::time::sleep(Duration::from_secs(3)).await;
        ingest.stop().await;
    }
    let offsets = bronze_offsets(&lake.location).await;
    assert_no_duplicates(&offsets);
    assert_eq!(offsets.len() as u64, sent.total);
}
