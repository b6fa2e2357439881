//! Exactly once under crashes and rebalances: an ingest process is killed
//! with SIGKILL again and again while the producer is sending, and replicas
//! join and leave a consumer group mid-stream; in the end bronze holds every
//! record of the topic exactly once, without gaps.

mod support;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use support::*;

/// An ingest process, killed with SIGKILL when dropped (also when the test
/// fails), logging to a file that collects every incarnation.
struct Replica(Child);

impl Replica {
    fn spawn(
        env: &HashMap<String, String>,
        instance: Option<String>,
        log: &std::path::Path,
    ) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_ingest"));
        if let Some(instance) = instance {
            command.env("INGEST_INSTANCE_ID", instance);
        }
        let child = command
            .envs(env)
            .env("RUST_LOG", "info,librdkafka=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ingest");
        Self(child)
    }

    /// SIGTERM, then wait for the graceful exit.
    fn terminate(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }

    fn kill_9(&mut self) {
        // Child::kill sends SIGKILL on Unix.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// Everything a scenario needs: a topic being filled, a lake, ingest env.
struct Scenario {
    lake: TestLake,
    env: HashMap<String, String>,
    logs: tempfile::TempDir,
    producing: tokio::task::JoinHandle<mlops_producer::Summary>,
}

impl Scenario {
    async fn start() -> Self {
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
        // Create the topic first so replicas can subscribe at once.
        mlops_bus::KafkaSettings::new(brokers(), "test")
            .ensure_topics(&[(topic.as_str(), 3)])
            .await
            .expect("topic");
        let producing = tokio::spawn(async move {
            produce(&topic, 3, &["--subscribers", "400", "--days", "5"]).await
        });
        Self {
            lake,
            env,
            logs: tempfile::tempdir().expect("log dir"),
            producing,
        }
    }

    /// A replica with dynamic group membership (joins and leaves rebalance).
    fn replica(&self, i: usize) -> Replica {
        Replica::spawn(&self.env, None, &self.log(i))
    }

    /// A replica with a stable member name (static membership): restarted
    /// after a crash, it takes its partitions back at once instead of
    /// waiting for the dead member's session to expire.
    fn static_replica(&self, i: usize) -> Replica {
        Replica::spawn(&self.env, Some(format!("replica-{i}")), &self.log(i))
    }

    /// Waits until replica `i`'s latest incarnation has been assigned
    /// partitions (its log, shared by every incarnation, gains an
    /// assignment line after the last start line).
    async fn wait_until_assigned(&self, i: usize) {
        let log = self.log(i);
        let assigned = wait_for(Duration::from_secs(60), || async {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let started = text.rfind("ingest starting");
            let assigned = text.rfind("partitions assigned");
            matches!((started, assigned), (Some(s), Some(a)) if a > s)
        })
        .await;
        assert!(
            assigned,
            "replica {i} got no partitions within 60 s; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn log(&self, i: usize) -> std::path::PathBuf {
        self.logs.path().join(format!("ingest-{i}.log"))
    }

    /// Waits for the producer and for bronze to hold every record, then
    /// checks exactly-once: no duplicate and no missing offset.
    async fn assert_exactly_once(mut self, replicas: &mut [Replica]) {
        let sent = (&mut self.producing).await.expect("join");
        assert!(sent.total > 10_000, "enough load: {}", sent.total);
        let caught_up = wait_for(Duration::from_secs(120), || async {
            bronze_offsets(&self.lake.location).await.len() as u64 >= sent.total
        })
        .await;
        if !caught_up {
            let offsets = bronze_offsets(&self.lake.location).await;
            let logs: String = (0..replicas.len())
                .map(|i| std::fs::read_to_string(self.log(i)).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n----\n");
            panic!(
                "bronze did not catch up: {} of {} rows, per partition {:?}\nreplica logs:\n{logs}",
                offsets.len(),
                sent.total,
                assert_no_duplicates(&offsets)
            );
        }
        // A little longer, to catch late duplicates.
        tokio::time::sleep(Duration::from_secs(2)).await;
        for replica in replicas.iter_mut() {
            replica.kill_9();
        }
        let offsets = bronze_offsets(&self.lake.location).await;
        let per_partition = assert_no_duplicates(&offsets);
        assert_eq!(
            offsets.len() as u64,
            sent.total,
            "every record exactly once"
        );
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_kill_9_loses_and_duplicates_nothing() {
    let scenario = Scenario::start().await;
    let mut replica = scenario.static_replica(0);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for _ in 0..8 {
        // Kill while the incarnation works: after it got its partitions
        // (a kill during start-up would test nothing), at a random moment.
        scenario.wait_until_assigned(0).await;
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
        replica.kill_9();
        replica = scenario.static_replica(0);
    }
    scenario.assert_exactly_once(&mut [replica]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_joining_and_leaving_share_the_work_exactly_once() {
    let scenario = Scenario::start().await;
    let mut first = scenario.replica(0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Scale out: the group rebalances and the newcomer takes partitions.
    let second = scenario.replica(1);
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Scale in: SIGTERM commits the open batch, the survivor takes over.
    first.terminate();
    scenario.assert_exactly_once(&mut [first, second]).await;
}
