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

    /// Freezes (`STOP`) or resumes (`CONT`) the process: a member that
    /// stops making progress without leaving the group.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.0.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal}");
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
        create_topic(&topic, 3).await;
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
            let started = text.rfind("service starting");
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
        assert_complete(&self.lake.location, sent.total).await;
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

async fn create_topic(topic: &str, partitions: i32) {
    mlops_bus::KafkaSettings::new(brokers(), "test")
        .ensure_topics(&[mlops_bus::TopicSpec {
            name: topic,
            partitions,
        }])
        .await
        .expect("topic");
}

/// Two ingest processes in one group on a fresh topic and lake, each with
/// its own admin port so the test can read each one's metrics.
struct Group {
    topic: String,
    lake: TestLake,
    env: HashMap<String, String>,
    admins: [String; 2],
    logs: tempfile::TempDir,
}

impl Group {
    async fn new(partitions: i32, extra: &[(&str, &str)]) -> Self {
        let topic = unique("events");
        let lake = TestLake::new(Store::Local);
        let env = ingest_env(&topic, &unique("group"), &lake, extra);
        create_topic(&topic, partitions).await;
        let (a, b) = free_admin_addrs();
        Self {
            topic,
            lake,
            env,
            admins: [a, b],
            logs: tempfile::tempdir().expect("log dir"),
        }
    }

    /// Every replica's log, for a failure message.
    fn logs(&self) -> String {
        (0..self.admins.len())
            .map(|i| {
                let log = self.logs.path().join(format!("{i}.log"));
                format!(
                    "--- replica {i}\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            })
            .collect()
    }

    /// Waits until every replica has had an assignment (possibly empty):
    /// the group's last rebalance included them all.
    async fn wait_until_all_joined(&self) {
        let joined = wait_for(Duration::from_secs(60), || async {
            (0..self.admins.len()).all(|i| {
                let log = self.logs.path().join(format!("{i}.log"));
                std::fs::read_to_string(log)
                    .unwrap_or_default()
                    .contains("partitions assigned")
            })
        })
        .await;
        assert!(joined, "not every replica joined; logs:\n{}", self.logs());
    }

    fn spawn(&self, which: usize) -> Replica {
        let mut env = self.env.clone();
        env.insert("ADMIN_ADDR".into(), self.admins[which].clone());
        let log = self.logs.path().join(format!("{which}.log"));
        Replica::spawn(&env, None, &log)
    }
}

/// Bronze holds `expected` records, each (partition, offset) once and no
/// partition with a gap.
async fn assert_complete(lake: &mlops_lake::LakeLocation, expected: u64) {
    let offsets = bronze_offsets(lake).await;
    let per_partition = assert_no_duplicates(&offsets);
    assert_eq!(offsets.len() as u64, expected, "every record exactly once");
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

/// Two distinct free loopback ports for the replicas' admin servers, so the
/// test can read each replica's own metrics.
fn free_admin_addrs() -> (String, String) {
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    // Both held at once: the OS cannot hand out the same port twice.
    let (a, b) = (bind(), bind());
    let addr = |l: &std::net::TcpListener| l.local_addr().expect("addr").to_string();
    (addr(&a), addr(&b))
}

/// The value of an unlabelled metric of a replica (0 when absent or while
/// the replica is not listening yet).
async fn metric(admin: &str, name: &str) -> f64 {
    if tokio::net::TcpStream::connect(admin).await.is_err() {
        return 0.0;
    }
    let (_, body) = http_get(&format!("http://{admin}/metrics")).await;
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_joining_and_leaving_share_the_work_exactly_once() {
    let group = Group::new(
        3,
        &[
            ("INGEST_BATCH_MAX_RECORDS", "700"),
            ("INGEST_BATCH_MAX_WAIT_MS", "300"),
        ],
    )
    .await;
    let (topic, lake) = (&group.topic, &group.lake);
    let [admin_0, admin_1] = &group.admins;
    let mut first = group.spawn(0);
    let mut total = 0u64;
    let mut produce_more = async |seed: &str| {
        total += produce(
            topic,
            3,
            &["--subscribers", "150", "--days", "3", "--seed", seed],
        )
        .await
        .total;
        total
    };
    let in_bronze = |expected: u64| {
        let lake = lake.location.clone();
        async move {
            eventually(Duration::from_secs(90), "bronze holds every record", || {
                let lake = lake.clone();
                async move { bronze_offsets(&lake).await.len() as u64 >= expected }
            })
            .await
        }
    };

    let expected = produce_more("1").await;
    in_bronze(expected).await;
    assert_eq!(metric(admin_0, "ingest_assigned_partitions").await, 3.0);

    // Scale out: the group rebalances and the newcomer takes partitions,
    // then writes the rows of new records on them.
    let second = group.spawn(1);
    eventually(
        Duration::from_secs(60),
        "the newcomer is assigned partitions",
        || async { metric(admin_1, "ingest_assigned_partitions").await >= 1.0 },
    )
    .await;
    let expected = produce_more("2").await;
    in_bronze(expected).await;
    let assigned_0 = metric(admin_0, "ingest_assigned_partitions").await;
    let assigned_1 = metric(admin_1, "ingest_assigned_partitions").await;
    assert_eq!(assigned_0 + assigned_1, 3.0, "each partition has one owner");
    let written_1 = metric(admin_1, "ingest_records_written_total").await;
    assert!(written_1 > 0.0, "the newcomer wrote no rows");

    // Scale in: SIGTERM commits the open batch, the survivor takes over
    // every partition and writes what comes next.
    first.terminate();
    eventually(
        Duration::from_secs(60),
        "the survivor owns every partition",
        || async { metric(admin_1, "ingest_assigned_partitions").await == 3.0 },
    )
    .await;
    let expected = produce_more("3").await;
    in_bronze(expected).await;
    assert!(metric(admin_1, "ingest_records_written_total").await > written_1);

    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(second);
    assert_complete(&lake.location, expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_without_partitions_rejoins_only_when_lag_stands_still() {
    // One partition, two members: one owns it, the other is spare.
    let group = Group::new(
        1,
        &[
            ("INGEST_BATCH_MAX_WAIT_MS", "300"),
            ("INGEST_REJOIN_AFTER_SECONDS", "3"),
        ],
    )
    .await;
    let (topic, lake) = (&group.topic, &group.lake);
    let [admin_a, admin_b] = &group.admins;
    let a = group.spawn(0);
    let b = group.spawn(1);
    group.wait_until_all_joined().await;
    let first = produce(
        topic,
        1,
        &["--subscribers", "100", "--days", "2", "--seed", "1"],
    )
    .await;
    eventually(
        Duration::from_secs(90),
        "bronze holds the first records",
        || async { bronze_offsets(&lake.location).await.len() as u64 >= first.total },
    )
    .await;
    let owner_is_a = metric(admin_a, "ingest_assigned_partitions").await == 1.0;
    let (owner, spare, spare_admin) = if owner_is_a {
        (a, b, admin_b)
    } else {
        (b, a, admin_a)
    };
    assert_eq!(
        metric(spare_admin, "ingest_assigned_partitions").await,
        0.0,
        "exactly one member owns the partition"
    );

    // The owner keeps up: several bounds pass and the spare stays put.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(metric(spare_admin, "ingest_group_rejoins_total").await, 0.0);

    // The owner freezes (still a member, no progress) while records arrive:
    // the spare sees lag standing still and rejoins the group.
    owner.signal("STOP");
    let second = produce(
        topic,
        1,
        &["--subscribers", "100", "--days", "2", "--seed", "2"],
    )
    .await;
    let rejoined = wait_for(Duration::from_secs(30), || async {
        metric(spare_admin, "ingest_group_rejoins_total").await >= 1.0
    })
    .await;
    assert!(
        rejoined,
        "the spare never rejoined; logs:\n{}",
        group.logs()
    );
    // Once the frozen owner's session expires the spare takes over, and
    // every record still lands exactly once.
    let expected = first.total + second.total;
    eventually(
        Duration::from_secs(90),
        "the spare ingests the rest",
        || async { bronze_offsets(&lake.location).await.len() as u64 >= expected },
    )
    .await;
    assert_eq!(metric(spare_admin, "ingest_assigned_partitions").await, 1.0);
    owner.signal("CONT");
    drop((owner, spare));
    assert_complete(&lake.location, expected).await;
}
