//! The outbox relay's lease across replicas: a relay whose database session
//! is lost stops publishing, another replica takes over, and every event
//! reaches Kafka once, in commit order.

mod support;

use std::time::Duration;

use mlops_bus::{KafkaSettings, TopicSpec};
use mlops_model_registry::auth::{Principal, Role};
use mlops_model_registry::metrics::RegistryMetrics;
use mlops_model_registry::relay::OutboxRelay;
use mlops_model_registry::store::{Store, StoreOptions};
use mlops_registry_client::proto as pb;
use mlops_runtime::Shutdown;
use prost::Message as _;
use rdkafka::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use sqlx::{Connection as _, Row as _};
use support::{Db, TestDb};

/// One registry replica's relay, on a store of its own.
struct Replica {
    store: Store,
    metrics: RegistryMetrics,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<()>,
}

impl Replica {
    async fn start(url: &str, topic: &str, brokers: &str) -> Self {
        let store = Store::connect(
            url,
            StoreOptions {
                events_topic: topic.to_string(),
                ..Default::default()
            },
        )
        .await
        .expect("store");
        store.migrate().await.expect("migrations");
        let metrics = RegistryMetrics::default();
        let relay = OutboxRelay::new(
            store.clone(),
            &KafkaSettings::new(brokers, "registry-test"),
            Duration::from_millis(100),
            metrics.clone(),
        )
        .expect("relay");
        let shutdown = Shutdown::new();
        let task = tokio::spawn(relay.run(shutdown.clone()));
        Self {
            store,
            metrics,
            shutdown,
            task,
        }
    }

    fn leader(&self) -> bool {
        self.metrics.relay_leader.get() == 1
    }

    fn published(&self) -> u64 {
        self.metrics.events_published.get()
    }

    async fn stop(self) {
        self.shutdown.trigger();
        self.task.await.expect("relay task");
        self.store.close().await;
    }
}

async fn wait_until(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Commits `count` versions of `churn`, one `VersionCreated` event each,
/// spread over several relay cycles.
async fn create_versions(store: &Store, count: usize) {
    let principal = Principal {
        name: "relay-test".into(),
        role: Role::Admin,
    };
    for _ in 0..count {
        store
            .create_version(
                &principal,
                pb::CreateModelVersionRequest {
                    model_name: "churn".into(),
                    format: "onnx".into(),
                    ..Default::default()
                },
            )
            .await
            .expect("create version");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn drained(store: &Store) {
    wait_until("the outbox drains", async || {
        store.pending_event_count().await.expect("count") == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_loses_its_database_session_stops_publishing_and_another_takes_over() {
    let topic = support::unique("registry-lease");
    let brokers = support::required_env("TEST_KAFKA_BROKERS");
    KafkaSettings::new(&brokers, "registry-test")
        .ensure_topics(&[TopicSpec {
            name: &topic,
            partitions: 1,
        }])
        .await
        .expect("topic");
    let db = TestDb::new(Db::Postgres).await;
    let principal = Principal {
        name: "relay-test".into(),
        role: Role::Admin,
    };

    // Replica A starts first and takes the lease; B waits behind it.
    let a = Replica::start(&db.url, &topic, &brokers).await;
    wait_until("A takes the lease", async || a.leader()).await;
    let b = Replica::start(&db.url, &topic, &brokers).await;
    a.store
        .create_model(
            &principal,
            pb::CreateRegisteredModelRequest {
                name: "churn".into(),
                ..Default::default()
            },
        )
        .await
        .expect("model");
    create_versions(&a.store, 3).await;
    drained(&a.store).await;
    assert_eq!((a.published(), b.published()), (3, 0));
    assert!(!b.leader(), "B publishes while A holds the lease");

    // A's lease session dies, as in a network blip or a Postgres restart.
    let mut admin = sqlx::AnyConnection::connect(&db.url)
        .await
        .expect("admin connection");
    let holders = sqlx::query(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_all(&mut admin)
    .await
    .expect("lock holders");
    assert_eq!(holders.len(), 1, "one session holds the relay lease");
    let pid: i32 = holders[0].try_get("pid").expect("pid");
    let killed: bool = sqlx::query("SELECT pg_terminate_backend($1) AS killed")
        .bind(pid)
        .fetch_one(&mut admin)
        .await
        .expect("terminate")
        .try_get("killed")
        .expect("killed");
    assert!(killed);
    wait_until("B takes the lease", async || b.leader()).await;

    // Writes through both replicas; only B may publish them now.
    let before = a.published();
    create_versions(&a.store, 6).await;
    create_versions(&b.store, 6).await;
    drained(&b.store).await;
    assert_eq!(
        a.published(),
        before,
        "A kept publishing after losing its lease"
    );
    assert_eq!(b.published(), 12);
    assert!(!a.leader(), "A still reports holding the lease");

    // When B goes away, A gets the lease back on a later cycle.
    b.stop().await;
    wait_until("A takes the lease back", async || a.leader()).await;
    create_versions(&a.store, 1).await;
    drained(&a.store).await;
    assert_eq!(a.published(), before + 1);

    // The topic holds every committed event once, in commit order.
    let committed: Vec<String> = sqlx::query("SELECT payload FROM outbox ORDER BY id")
        .fetch_all(&mut admin)
        .await
        .expect("outbox")
        .iter()
        .map(|row| {
            let payload: Vec<u8> = row.try_get("payload").expect("payload");
            pb::RegistryEvent::decode(payload.as_slice())
                .expect("decode")
                .event_id
        })
        .collect();
    assert_eq!(committed.len(), 16);
    let consumer: StreamConsumer = KafkaSettings::new(&brokers, "registry-test")
        .consumer_config(&support::unique("group"))
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let mut received = Vec::new();
    // Past the last expected event, a short wait shows up duplicates.
    loop {
        let wait = if received.len() < committed.len() {
            Duration::from_secs(30)
        } else {
            Duration::from_secs(2)
        };
        let Ok(message) = tokio::time::timeout(wait, consumer.recv()).await else {
            break;
        };
        let message = message.expect("message");
        let event = pb::RegistryEvent::decode(message.payload().expect("payload")).expect("decode");
        received.push(event.event_id);
    }
    assert_eq!(received, committed);

    a.stop().await;
}
