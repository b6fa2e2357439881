//! The shared service lifecycle: ordered shutdown (not ready, drain with the
//! admin server still up, then the admin server stops), a failing admin
//! bind, and errors of the work surfaced.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mlops_runtime::{
    ConfigError, EnvReader, LifecycleError, Probes, Readiness, Service, ServiceConfig, Shutdown,
    TelemetryConfig, service,
};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::Notify;

#[derive(Clone)]
struct TestConfig {
    admin_addr: SocketAddr,
    telemetry: TelemetryConfig,
    /// The work drains until this is notified.
    release_drain: Arc<Notify>,
    fail_with: Option<&'static str>,
    log: Arc<Mutex<Vec<&'static str>>>,
}

impl TestConfig {
    fn new(admin_addr: SocketAddr) -> Self {
        Self {
            admin_addr,
            telemetry: TelemetryConfig::from_env(&mut EnvReader::from_pairs(&[]), "test"),
            release_drain: Arc::new(Notify::new()),
            fail_with: None,
            log: Arc::default(),
        }
    }

    fn events(&self) -> Vec<&'static str> {
        self.log.lock().expect("log").clone()
    }
}

impl ServiceConfig for TestConfig {
    fn from_env(_: &mut EnvReader) -> Result<Self, ConfigError> {
        Err(ConfigError::invalid("TEST"))
    }
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
    fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }
}

#[derive(Debug, thiserror::Error)]
#[error("work failed: {0}")]
struct WorkError(&'static str);

struct TestService {
    config: TestConfig,
    readiness: Readiness,
    runs: Counter,
}

impl Service for TestService {
    const NAME: &'static str = "test";
    type Config = TestConfig;
    type Error = WorkError;

    async fn build(config: TestConfig, probes: Probes<'_>) -> Result<Self, WorkError> {
        let runs = Counter::default();
        probes
            .metrics
            .register("test_runs", "Runs started", runs.clone());
        Ok(Self {
            config,
            readiness: probes.readiness,
            runs,
        })
    }

    async fn run(self, shutdown: Shutdown) -> Result<(), WorkError> {
        self.runs.inc();
        self.readiness.set(true);
        if let Some(reason) = self.config.fail_with {
            return Err(WorkError(reason));
        }
        shutdown.wait().await;
        let log = |event| self.config.log.lock().expect("log").push(event);
        log("drain started");
        self.config.release_drain.notified().await;
        log("drain finished");
        Ok(())
    }
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    mlops_testkit::http_get(&format!("http://{addr}{path}")).await
}

async fn wait_until_ready(addr: SocketAddr) {
    for _ in 0..100 {
        if get(addr, "/readyz").await.0 == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the service never became ready");
}

#[tokio::test]
async fn shutdown_clears_readiness_then_drains_with_probes_up_then_stops_the_admin_server() {
    let config = TestConfig::new(any_port());
    let launched = service::launch::<TestService>(config.clone())
        .await
        .expect("launch");
    let admin = launched.admin_addr();
    let shutdown = Shutdown::new();
    let running = tokio::spawn(launched.run(shutdown.clone()));
    wait_until_ready(admin).await;
    let (status, metrics) = get(admin, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("test_runs_total 1"), "{metrics}");

    shutdown.trigger();
    for _ in 0..100 {
        if config.events() == ["drain started"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(config.events(), ["drain started"]);
    // Draining: not ready, but alive and scrapeable.
    assert_eq!(get(admin, "/readyz").await, (503, "not ready".to_string()));
    assert_eq!(get(admin, "/livez").await.0, 200);
    assert_eq!(get(admin, "/metrics").await.0, 200);
    assert!(
        !running.is_finished(),
        "the lifecycle returned before the drain"
    );

    config.release_drain.notify_one();
    let outcome = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("stops after the drain")
        .expect("join");
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(config.events(), ["drain started", "drain finished"]);
    assert!(
        tokio::net::TcpStream::connect(admin).await.is_err(),
        "the admin server still accepts connections after the service stopped"
    );
}

#[tokio::test]
async fn an_admin_port_in_use_fails_the_launch_with_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let error = match service::launch::<TestService>(TestConfig::new(addr)).await {
        Ok(_) => panic!("launched on a port in use"),
        Err(error) => error,
    };
    assert!(
        matches!(error, LifecycleError::AdminBind { addr: a, .. } if a == addr),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains(&format!("cannot bind the admin server on {addr}")),
        "{text}"
    );
}

#[tokio::test]
async fn a_failing_work_is_reported_and_stops_the_admin_server() {
    let mut config = TestConfig::new(any_port());
    config.fail_with = Some("lake unreachable");
    let launched = service::launch::<TestService>(config)
        .await
        .expect("launch");
    let admin = launched.admin_addr();
    let outcome = tokio::time::timeout(Duration::from_secs(10), launched.run(Shutdown::new()))
        .await
        .expect("returns");
    let error = outcome.expect_err("the work failed");
    assert!(matches!(error, LifecycleError::Work(_)), "{error:?}");
    assert_eq!(error.to_string(), "work failed: lake unreachable");
    assert!(tokio::net::TcpStream::connect(admin).await.is_err());
}
