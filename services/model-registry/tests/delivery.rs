//! What the registry delivers beyond its API: events on Kafka, artifacts on
//! S3 and Azure, migrations, health and metrics endpoints, and a non-Rust
//! client.

mod support;

use std::time::Duration;

use mlops_registry_client::proto as pb;
use prost::Message as _;
use rdkafka::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use support::{Artifacts, Db, Options, TestRegistry, model_with_version, upload};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_kafka_in_commit_order_and_the_outbox_drains() {
    let topic = support::unique("registry-events");
    let brokers = support::required_env("TEST_KAFKA_BROKERS");
    mlops_bus::KafkaSettings::new(&brokers, "registry-test")
        .ensure_topics(&[mlops_bus::TopicSpec {
            name: &topic,
            partitions: 1,
        }])
        .await
        .expect("topic");
    let registry = TestRegistry::start(Options {
        events_topic: Some(topic.clone()),
        ..Options::new(Db::Postgres)
    })
    .await;
    let mut client = registry.admin_client().await;
    let v = model_with_version(&mut client, "churn", &[]).await;
    upload(&mut client, "churn", v.version, vec![1; 64])
        .await
        .expect("upload");
    client
        .raw()
        .set_alias(pb::SetAliasRequest {
            model_name: "churn".into(),
            alias: "champion".into(),
            version: 1,
        })
        .await
        .expect("alias");

    let consumer: StreamConsumer = mlops_bus::KafkaSettings::new(&brokers, "registry-test")
        .consumer_config(&support::unique("group"))
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let mut events = Vec::new();
    while events.len() < 3 {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("events within 30 s")
            .expect("message");
        assert_eq!(message.key(), Some("churn".as_bytes()));
        let headers = rdkafka::message::Headers::iter(message.headers().expect("headers"))
            .find(|h| h.key == "schema-version")
            .and_then(|h| h.value)
            .map(|v| v.to_vec());
        assert_eq!(headers, Some(b"v1".to_vec()));
        events
            .push(pb::RegistryEvent::decode(message.payload().expect("payload")).expect("decode"));
    }
    use pb::registry_event::Event;
    match (&events[0].event, &events[1].event, &events[2].event) {
        (
            Some(Event::VersionCreated(c)),
            Some(Event::VersionReady(r)),
            Some(Event::AliasChanged(a)),
        ) => {
            assert_eq!((c.model_name.as_str(), c.version), ("churn", 1));
            assert_eq!(r.artifact_size_bytes, 64);
            assert_eq!(
                (a.alias.as_str(), a.previous_version, a.version),
                ("champion", 0, 1)
            );
        }
        other => panic!("unexpected event order: {other:?}"),
    }
    assert!(
        events
            .iter()
            .all(|e| e.principal == "bootstrap-admin" && !e.event_id.is_empty())
    );
    // Acknowledged events leave the outbox.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while registry.store.pending_event_count().await.expect("count") > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "outbox never drained"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_committed_while_kafka_is_unreachable_are_published_later() {
    // A registry pointed at a closed port commits changes and keeps their
    // events; a relay with a working broker publishes them afterwards.
    let topic = support::unique("registry-late");
    let brokers = support::required_env("TEST_KAFKA_BROKERS");
    mlops_bus::KafkaSettings::new(&brokers, "registry-test")
        .ensure_topics(&[mlops_bus::TopicSpec {
            name: &topic,
            partitions: 1,
        }])
        .await
        .expect("topic");
    let registry = TestRegistry::start(Options {
        events_topic: Some(topic.clone()),
        extra_env: vec![("KAFKA_BROKERS".into(), "127.0.0.1:1".into())],
        ..Options::new(Db::Sqlite)
    })
    .await;
    let mut client = registry.admin_client().await;
    model_with_version(&mut client, "churn", &[]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        registry.store.pending_event_count().await.expect("count"),
        1
    );

    let relay = mlops_model_registry::relay::OutboxRelay::new(
        registry.store.clone(),
        &mlops_bus::KafkaSettings::new(&brokers, "registry-test"),
        Duration::from_millis(100),
        Default::default(),
    )
    .expect("relay");
    relay
        .publish_pending(&mlops_runtime::Shutdown::new())
        .await
        .expect("publish");
    assert_eq!(
        registry.store.pending_event_count().await.expect("count"),
        0
    );
    registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_round_trip_through_s3_and_azure_in_several_parts() {
    for store in [Artifacts::S3, Artifacts::Azure] {
        let registry = TestRegistry::start(Options {
            artifacts: store,
            ..Options::new(Db::Sqlite)
        })
        .await;
        let mut client = registry.admin_client().await;
        let v = model_with_version(&mut client, "churn", &[]).await;
        // Over one 8 MiB part, so the multipart path is taken.
        let bytes = support::artifact_bytes(9 * 1024 * 1024 + 3, 7);
        let ready = upload(&mut client, "churn", v.version, bytes.clone())
            .await
            .unwrap_or_else(|e| panic!("{store:?} upload: {e}"));
        assert_eq!(
            ready.status,
            pb::ModelVersionStatus::Ready as i32,
            "{store:?}"
        );
        let mut out = Vec::new();
        client
            .download_artifact(
                pb::DownloadArtifactRequest {
                    model_name: "churn".into(),
                    version: 0,
                    alias: String::new(),
                },
                &mut out,
                |_| {},
                |_| {},
            )
            .await
            .expect_err("neither version nor alias");
        client
            .download_artifact(
                pb::DownloadArtifactRequest {
                    model_name: "churn".into(),
                    version: v.version,
                    alias: String::new(),
                },
                &mut out,
                |_| {},
                |_| {},
            )
            .await
            .unwrap_or_else(|e| panic!("{store:?} download: {e}"));
        assert!(out == bytes, "{store:?}: downloaded bytes differ");
        registry.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_concurrently_once_and_from_the_migrate_subcommand() {
    let db = support::TestDb::new(Db::Postgres).await;
    let connect = || mlops_model_registry::store::Store::connect(&db.url, Default::default());
    let (a, b) = (connect().await.expect("a"), connect().await.expect("b"));
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.expect("first migrator");
    rb.expect("second migrator");
    a.migrate().await.expect("re-run is a no-op");

    let fresh = support::TestDb::new(Db::Postgres).await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_model-registry"))
        .arg("migrate")
        .env("DATABASE_URL", &fresh.url)
        .env("RUST_LOG", "info")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .await
        .expect("run model-registry migrate");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let store = mlops_model_registry::store::Store::connect(&fresh.url, Default::default())
        .await
        .expect("store");
    assert_eq!(store.pending_event_count().await.expect("tables exist"), 0);

    let bad = tokio::process::Command::new(env!("CARGO_BIN_EXE_model-registry"))
        .arg("migrate")
        .env("DATABASE_URL", "mysql://nope")
        .output()
        .await
        .expect("run");
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("DATABASE_URL must start with postgres://"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_per_method_metrics_are_served() {
    let registry = TestRegistry::start(Options::new(Db::Sqlite)).await;
    let http = |path: &str| format!("http://{}{path}", registry.admin);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let status = reqwest_status(&http("/readyz")).await;
        if status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz stayed {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let channel = tonic::transport::Endpoint::from_shared(registry.url.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "mlops.registry.v1.ModelRegistry".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(
        serving.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let mut client = registry.admin_client().await;
    model_with_version(&mut client, "churn", &[]).await;
    let _ = client
        .raw()
        .get_registered_model(pb::GetRegisteredModelRequest {
            name: "nope".into(),
        })
        .await;
    let metrics = reqwest_text(&http("/metrics")).await;
    for line in [
        "registry_requests_total{method=\"CreateRegisteredModel\",code=\"ok\"} 1",
        "registry_requests_total{method=\"GetRegisteredModel\",code=\"not_found\"} 1",
        "registry_request_duration_seconds_count{method=\"CreateModelVersion\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line} in:\n{metrics}");
    }
    registry.stop().await;
}

use mlops_testkit::http_get;

async fn reqwest_status(url: &str) -> u16 {
    http_get(url).await.0
}

async fn reqwest_text(url: &str) -> String {
    http_get(url).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_grpcio_client_registers_uploads_and_reads_back() {
    let registry = TestRegistry::start(Options::new(Db::Sqlite)).await;
    let writer = registry.token("notebook", pb::Role::Writer).await;
    let proto_root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/registry_client.py"
    );
    let output = tokio::process::Command::new(support::required_env("TEST_PYTHON"))
        .arg(script)
        .arg(registry.url.trim_start_matches("http://"))
        .arg(proto_root)
        .env("MLOPS_TOKEN", &writer)
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("report")).expect("json report");
    assert_eq!(
        report["reflection_services"]
            .as_array()
            .map(|a| a.iter().any(|s| s == "mlops.registry.v1.ModelRegistry")),
        Some(true)
    );
    assert_eq!(report["version"], 1);
    assert_eq!(report["status"], "MODEL_VERSION_STATUS_READY");
    assert_eq!(report["downloaded_matches"], true);
    assert_eq!(report["created_by"], "notebook");

    // And the Rust side sees what Python registered.
    let mut client = registry.admin_client().await;
    let v = client
        .raw()
        .get_model_version(pb::GetModelVersionRequest {
            model_name: "py-churn".into(),
            version: 1,
        })
        .await
        .expect("python's version")
        .into_inner();
    assert_eq!(v.metrics["auc"], 0.83);
    assert_eq!(v.artifact_size_bytes, 300_000);
    registry.stop().await;
}
