//! Hot swap: the champion moves while requests run, and none fails.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::support::{MODEL, World, infer_body, linear_model};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_champion_moves_five_times_under_load_without_a_failed_request() {
    let mut world = World::new().await;
    let mut versions = Vec::new();
    for seed in 0..6 {
        let (_, bytes) = linear_model(seed);
        versions.push(world.register(MODEL, bytes).await);
    }
    world.set_alias(MODEL, "champion", versions[0]).await;
    let gateway = Arc::new(world.gateway(&[]).await);
    gateway.wait_for_champion(versions[0]).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut loops = Vec::new();
    for _ in 0..4 {
        let (gateway, stop) = (gateway.clone(), stop.clone());
        loops.push(tokio::spawn(async move {
            let body = infer_body(&[[1.0, 2.0, 0.5], [0.5, 1.0, 2.0]]);
            let path = format!("/v2/models/{MODEL}/infer");
            let (mut ok, mut failed, mut seen) = (0u64, Vec::new(), BTreeSet::new());
            while !stop.load(Ordering::Relaxed) {
                let (status, response) = gateway.post(&path, &body).await;
                if status == 200 {
                    ok += 1;
                    seen.insert(
                        response["model_version"]
                            .as_str()
                            .unwrap_or("?")
                            .to_string(),
                    );
                } else {
                    failed.push(format!("{status} {response}"));
                }
            }
            (ok, failed, seen)
        }));
    }
    for &version in &versions[1..] {
        world.set_alias(MODEL, "champion", version).await;
        gateway.wait_for_champion(version).await;
        // Let the loop run on the new champion for a moment.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut failed, mut seen) = (0, Vec::new(), BTreeSet::new());
    for handle in loops {
        let (o, f, s) = handle.await.expect("load loop");
        ok += o;
        failed.extend(f);
        seen.extend(s);
    }
    assert!(
        failed.is_empty(),
        "{} failed requests: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    let expected: BTreeSet<String> = versions.iter().map(i64::to_string).collect();
    assert_eq!(seen, expected, "responses name every champion in turn");
    assert!(ok > 100, "only {ok} requests ran");

    let (status, metrics) =
        mlops_testkit::http_get(&format!("http://{}/metrics", gateway.admin)).await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("gateway_model_swaps_total{model=\"churn\",alias=\"champion\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "gateway_model_serving_version{{model=\"churn\",alias=\"champion\"}} {}",
            versions[5]
        )),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_event_swaps_the_champion_long_before_the_next_poll() {
    let topic = crate::registry_support::unique("registry-events");
    let mut world = World::with_events(&topic).await;
    let (_, bytes) = linear_model(1);
    let first = world.register(MODEL, bytes).await;
    world.set_alias(MODEL, "champion", first).await;
    let (_, bytes) = linear_model(2);
    let second = world.register(MODEL, bytes).await;
    let brokers = crate::registry_support::required_env("TEST_KAFKA_BROKERS");
    let gateway = world
        .gateway(&[
            ("GATEWAY_POLL_SECONDS", "600"),
            ("GATEWAY_REGISTRY_EVENTS", "kafka"),
            ("KAFKA_BROKERS", &brokers),
            ("REGISTRY_EVENTS_TOPIC", &topic),
        ])
        .await;
    gateway.wait_for_champion(first).await;

    // The consumer reads from the newest offset once it has joined: move
    // another model's alias until events arrive.
    let mut probes = Vec::new();
    for seed in [3, 4] {
        let (_, bytes) = linear_model(seed);
        probes.push(world.register("probe", bytes).await);
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut turn = 0;
    while gateway.metric("gateway_registry_events_total").await < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no registry event reached the gateway"
        );
        world.set_alias("probe", "champion", probes[turn % 2]).await;
        turn += 1;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }

    let moved = tokio::time::Instant::now();
    world.set_alias(MODEL, "champion", second).await;
    gateway.wait_for_champion(second).await;
    assert!(
        moved.elapsed() < std::time::Duration::from_secs(20),
        "the swap took {:?}; polling is every 600 s",
        moved.elapsed()
    );
}
