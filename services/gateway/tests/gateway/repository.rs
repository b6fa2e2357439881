//! Failed loads and the repository extension.

use serde_json::json;

use crate::support::{MODEL, World, infer_body, linear_model};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_champion_is_reported_and_the_previous_one_keeps_serving() {
    let mut world = World::new().await;
    let (_, bytes) = linear_model(1);
    let good = world.register(MODEL, bytes).await;
    world.set_alias(MODEL, "champion", good).await;
    let gateway = world.gateway(&[]).await;
    gateway.wait_for_champion(good).await;

    let corrupt = world.register(MODEL, b"not an onnx model".to_vec()).await;
    world.set_alias(MODEL, "champion", corrupt).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let index = loop {
        let (status, index) = gateway.post("/v2/repository/index", &json!({})).await;
        assert_eq!(status, 200);
        if index[0]["reason"].as_str().is_some_and(|r| !r.is_empty()) {
            break index;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failure reported: {index}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(index[0]["name"], MODEL);
    assert_eq!(index[0]["state"], "READY");
    assert_eq!(index[0]["version"], good.to_string());
    let reason = index[0]["reason"].as_str().expect("reason");
    assert!(
        reason.contains(&format!("loading version {corrupt} (@champion) failed")),
        "{reason}"
    );

    // Still served by the good version.
    let (status, response) = gateway
        .post(
            &format!("/v2/models/{MODEL}/infer"),
            &infer_body(&[[1.0, 2.0, 3.0]]),
        )
        .await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["model_version"], good.to_string());
    let (status, text) = mlops_testkit::http_get(&format!("http://{}/readyz", gateway.admin)).await;
    assert_eq!(status, 200);
    assert!(
        text.contains(&format!("loading version {corrupt} (@champion) failed")),
        "{text}"
    );
    let (_, metrics) = mlops_testkit::http_get(&format!("http://{}/metrics", gateway.admin)).await;
    assert!(
        metrics.contains("gateway_model_loads_total{model=\"churn\",outcome=\"failed\"} 1"),
        "{metrics}"
    );

    // A fixed version clears the failure.
    let (_, bytes) = linear_model(3);
    let fixed = world.register(MODEL, bytes).await;
    world.set_alias(MODEL, "champion", fixed).await;
    gateway.wait_for_champion(fixed).await;
    let (_, index) = gateway.post("/v2/repository/index", &json!({})).await;
    assert_eq!(index[0]["reason"], "");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_unload_and_load() {
    let mut world = World::new().await;
    let (_, bytes) = linear_model(1);
    let champion = world.register(MODEL, bytes).await;
    world.set_alias(MODEL, "champion", champion).await;
    let (_, bytes) = linear_model(2);
    let challenger = world.register(MODEL, bytes).await;
    world.set_alias(MODEL, "challenger", challenger).await;
    let gateway = world.gateway(&[]).await;
    gateway.wait_for_champion(champion).await;
    gateway
        .wait_until(
            "the challenger",
            &format!("/v2/models/{MODEL}/versions/{challenger}/ready"),
            |b| b["ready"] == true,
        )
        .await;
    let (_, metadata) = gateway.get(&format!("/v2/models/{MODEL}")).await;
    assert_eq!(
        metadata["versions"],
        json!([challenger.to_string(), champion.to_string()])
    );
    let (status, response) = gateway
        .post(
            &format!("/v2/models/{MODEL}/versions/challenger/infer"),
            &infer_body(&[[1.0, 2.0, 3.0]]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(response["model_version"], challenger.to_string());

    let unload = format!("/v2/repository/models/{MODEL}/unload");
    let (status, body) = gateway.post(&unload, &json!({})).await;
    assert_eq!((status, body), (200, json!({})));
    let (status, index) = gateway.post("/v2/repository/index", &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(index[0]["state"], "UNAVAILABLE");
    let (status, _) = gateway
        .post(
            &format!("/v2/models/{MODEL}/infer"),
            &infer_body(&[[1.0, 2.0, 3.0]]),
        )
        .await;
    assert_eq!(status, 503);
    // Polling does not bring an unloaded model back.
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let (_, index) = gateway
        .post("/v2/repository/index", &json!({"ready": true}))
        .await;
    assert_eq!(index, json!([]));

    let (status, body) = gateway
        .post(&format!("/v2/repository/models/{MODEL}/load"), &json!({}))
        .await;
    assert_eq!((status, body), (200, json!({})));
    let (status, index) = gateway
        .post("/v2/repository/index", &json!({"ready": true}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(index[0]["version"], champion.to_string());

    let (status, body) = gateway
        .post("/v2/repository/models/unknown-model/load", &json!({}))
        .await;
    assert_eq!(status, 404, "{body}");
    let (_, index) = gateway.post("/v2/repository/index", &json!({})).await;
    assert_eq!(index.as_array().map(Vec::len), Some(1), "{index}");
    let (status, _) = gateway
        .post("/v2/repository/models/unknown-model/unload", &json!({}))
        .await;
    assert_eq!(status, 404);
    gateway.stop().await;
}
