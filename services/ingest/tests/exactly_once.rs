//! Exactly once under crashes: two ingest replicas (one consumer group) are
//! killed with SIGKILL again and again while the producer is sending; in the
//! end bronze holds every record of the topic exactly once.

mod support;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use support::*;

fn spawn_ingest(env: &HashMap<String, String>, log_name: &str) -> Child {
    let log = std::fs::File::create(std::env::temp_dir().join(log_name)).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_ingest"))
        .envs(env)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start ingest")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_kill_9_loses_and_duplicates_nothing() {
    let topic = unique("events");
    let lake = TestLake::new(Store::Local);
    let env = ingest_env(
        &topic,
        &unique("group"),
        &lake,
        &[
            ("INGEST_BATCH_MAX_RECORDS", "700"),
            ("INGEST_BATCH_MAX_WAIT_MS", "300"),
        ],
    );

    // Create the topic first so both replicas can subscribe at once.
    mlops_bus::KafkaSettings::new(brokers(), "test")
        .ensure_topics(&[(topic.as_str(), 3)])
        .await
        .expect("topic");
    let producing = {
        let topic = topic.clone();
        tokio::spawn(
            async move { produce(&topic, 3, &["--subscribers", "400", "--days", "5"]).await },
        )
    };

    let mut replicas = [
        spawn_ingest(&env, "ingest-a.log"),
        spawn_ingest(&env, "ingest-b.log"),
    ];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut kills = 0;
    while kills < 8 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(800..2500))).await;
        let victim = kills % 2;
        replicas[victim].kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix
        replicas[victim].wait().expect("reaped");
        kills += 1;
        replicas[victim] = spawn_ingest(
            &env,
            if victim == 0 {
                "ingest-a.log"
            } else {
                "ingest-b.log"
            },
        );
    }
    let sent = producing.await.expect("join");
    assert!(sent.total > 10_000, "enough load: {}", sent.total);

    eventually(Duration::from_secs(120), "bronze to catch up", || async {
        bronze_offsets(&lake.location).await.len() as u64 >= sent.total
    })
    .await;
    // A little longer, to catch late duplicates.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for replica in &mut replicas {
        let _ = replica.kill();
        let _ = replica.wait();
    }

    let offsets = bronze_offsets(&lake.location).await;
    let per_partition = assert_no_duplicates(&offsets);
    assert_eq!(
        offsets.len() as u64,
        sent.total,
        "every record exactly once"
    );
    // No gaps: each partition holds offsets 0..n.
    for (partition, count) in per_partition {
        let max = offsets
            .iter()
            .filter(|(p, _)| *p == partition)
            .map(|(_, o)| *o)
            .max()
            .expect("rows");
        assert_eq!(max + 1, count as i64, "partition {partition} has a gap");
    }
}
