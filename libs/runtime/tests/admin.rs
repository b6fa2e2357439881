//! The admin server: liveness always, readiness as set, metrics in the
//! Prometheus text format.

use std::net::SocketAddr;

use mlops_runtime::{AdminServer, Readiness, Shutdown};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    mlops_testkit::http_get(&format!("http://{addr}{path}")).await
}

#[tokio::test]
async fn probes_and_metrics() {
    let mut registry = Registry::default();
    let counter = Counter::<u64>::default();
    registry.register("widgets_made", "Widgets made", counter.clone());
    counter.inc_by(3);
    let readiness = Readiness::default();
    let server = AdminServer::bind(
        "127.0.0.1:0".parse().expect("addr"),
        registry,
        readiness.clone(),
    )
    .await
    .expect("bind");
    let addr = server.local_addr().expect("addr");
    let shutdown = Shutdown::new();
    let serving = tokio::spawn(server.serve(shutdown.clone()));

    assert_eq!(get(addr, "/livez").await.0, 200);
    assert_eq!(get(addr, "/readyz").await, (503, "not ready".to_string()));
    readiness.set(true);
    assert_eq!(get(addr, "/readyz").await, (200, "ready".to_string()));
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("widgets_made_total 3"), "{body}");
    assert_eq!(get(addr, "/nope").await.0, 404);

    shutdown.trigger();
    serving.await.expect("join").expect("clean stop");
}
