//! Health, metadata and inference of the registry's champion over REST.

use serde_json::json;

use crate::support::{MODEL, World, expected, infer_body, linear_model, positive_scores};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_champion_with_the_models_own_scores() {
    let mut world = World::new().await;
    let (model, bytes) = linear_model(1);
    let version = world.register(MODEL, bytes).await;
    world.set_alias(MODEL, "champion", version).await;
    let gateway = world.gateway(&[]).await;
    gateway.wait_for_champion(version).await;

    let (status, body) = gateway.get("/v2/health/live").await;
    assert_eq!((status, body), (200, json!({"live": true})));
    let (status, body) = gateway.get("/v2/health/ready").await;
    assert_eq!((status, body), (200, json!({"ready": true})));
    let (status, server) = gateway.get("/v2").await;
    assert_eq!(status, 200);
    assert_eq!(server["name"], "mlops-gateway");
    assert_eq!(
        server["extensions"],
        json!(["binary_tensor_data", "model_repository"])
    );

    let (status, metadata) = gateway.get(&format!("/v2/models/{MODEL}")).await;
    assert_eq!(status, 200, "{metadata}");
    assert_eq!(metadata["name"], MODEL);
    assert_eq!(metadata["versions"], json!([version.to_string()]));
    assert_eq!(metadata["platform"], "onnxruntime_onnx");
    assert_eq!(
        metadata["inputs"],
        json!([{"name": "input", "datatype": "FP32", "shape": [-1, 3]}])
    );
    let outputs: Vec<&str> = metadata["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .map(|o| o["name"].as_str().expect("name"))
        .collect();
    assert_eq!(outputs, ["label", "probabilities"]);

    // NaN is not JSON: unknown values go through the binary extension
    // (binary_tensors_carry_unknown_values_both_ways).
    let json_rows = [[1.0, 2.0, 0.5], [0.0, 0.0, 9.0]];
    for path in [
        format!("/v2/models/{MODEL}/infer"),
        format!("/v2/models/{MODEL}/versions/{version}/infer"),
        format!("/v2/models/{MODEL}/versions/champion/infer"),
    ] {
        let (status, response) = gateway.post(&path, &infer_body(&json_rows)).await;
        assert_eq!(status, 200, "{path}: {response}");
        assert_eq!(response["model_name"], MODEL);
        assert_eq!(response["model_version"], version.to_string());
        assert_eq!(response["id"], "request-1");
        let scores = positive_scores(&response);
        assert_eq!(scores.len(), 2);
        for (score, row) in scores.iter().zip(&json_rows) {
            assert!(
                (score - expected(&model, row)).abs() < 1e-6,
                "{score} vs {}",
                expected(&model, row)
            );
        }
    }

    // Nested data and one requested output.
    let nested = json!({
        "inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [[1.0, 2.0, 0.5]]}],
        "outputs": [{"name": "probabilities"}],
    });
    let (status, response) = gateway
        .post(&format!("/v2/models/{MODEL}/infer"), &nested)
        .await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["outputs"].as_array().map(Vec::len), Some(1));
    assert_eq!(response["outputs"][0]["shape"], json!([1, 2]));
    assert_eq!(response["outputs"][0]["datatype"], "FP32");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_errors_that_name_the_problem() {
    let mut world = World::new().await;
    let (_, bytes) = linear_model(1);
    let version = world.register(MODEL, bytes).await;
    world.set_alias(MODEL, "champion", version).await;
    let gateway = world.gateway(&[]).await;
    gateway.wait_for_champion(version).await;
    let infer = format!("/v2/models/{MODEL}/infer");

    let input = |name: &str, shape: serde_json::Value, datatype: &str, data: serde_json::Value| json!({"inputs": [{"name": name, "shape": shape, "datatype": datatype, "data": data}]});
    let cases = [
        (
            input("features", json!([1, 3]), "FP32", json!([1, 2, 3])),
            400,
            "unknown input \"features\"; the model's inputs are \"input\"",
        ),
        (
            input("input", json!([1, 3]), "FP64", json!([1, 2, 3])),
            400,
            "input \"input\" has datatype FP64; the model expects FP32",
        ),
        (
            input("input", json!([1, 4]), "FP32", json!([1, 2, 3, 4])),
            400,
            "input \"input\" has shape [1, 4]; the model expects [-1, 3]",
        ),
        (
            input("input", json!([2, 3]), "FP32", json!([1, 2, 3])),
            400,
            "shape [2, 3] holds 6 values but 3 were given",
        ),
        (
            input("input", json!([1, 3]), "FP32", json!([1, "two", 3])),
            400,
            "element 1 is \"two\", not a number",
        ),
        (
            json!({"inputs": "none"}),
            400,
            "not a valid inference request",
        ),
    ];
    for (body, status, message) in cases {
        let (got, response) = gateway.post(&infer, &body).await;
        assert_eq!(got, status, "{response}");
        let error = response["error"].as_str().expect("error");
        assert!(
            error.contains(message),
            "{error:?} should contain {message:?}"
        );
    }

    let good = infer_body(&[[1.0, 2.0, 3.0]]);
    let (status, response) = gateway.post("/v2/models/nope/infer", &good).await;
    assert_eq!(status, 404);
    assert_eq!(response["error"], "unknown model \"nope\"");
    let (status, response) = gateway
        .post(&format!("/v2/models/{MODEL}/versions/99/infer"), &good)
        .await;
    assert_eq!(status, 404);
    assert!(
        response["error"]
            .as_str()
            .is_some_and(|e| e.contains("no version \"99\"")
                && e.contains(&format!("{version} (@champion)"))),
        "{response}"
    );
    let (status, _) = gateway
        .get(&format!("/v2/models/{MODEL}/versions/99"))
        .await;
    assert_eq!(status, 404);
    let (status, response) = gateway.get("/v2/nothing/here").await;
    assert_eq!(status, 404);
    assert_eq!(response["error"], "no such endpoint: /v2/nothing/here");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_until_a_champion_exists() {
    let mut world = World::new().await;
    let gateway = world.gateway(&[]).await;
    let (status, body) = gateway.get("/v2/health/ready").await;
    assert_eq!((status, body), (503, json!({"ready": false})));
    let (status, body) = gateway
        .post(
            &format!("/v2/models/{MODEL}/infer"),
            &infer_body(&[[1.0, 2.0, 3.0]]),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("no @champion has been loaded yet")),
        "{body}"
    );
    let (status, text) = mlops_testkit::http_get(&format!("http://{}/readyz", gateway.admin)).await;
    assert_eq!(status, 503);
    assert!(text.contains("churn: nothing loaded"), "{text}");

    let (_, bytes) = linear_model(2);
    let version = world.register(MODEL, bytes).await;
    world.set_alias(MODEL, "champion", version).await;
    gateway.wait_for_champion(version).await;
    let (status, text) = mlops_testkit::http_get(&format!("http://{}/readyz", gateway.admin)).await;
    assert_eq!(status, 200);
    assert!(
        text.contains(&format!("churn: serving version {version} (champion)")),
        "{text}"
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_tensors_carry_unknown_values_both_ways() {
    let mut world = World::new().await;
    let (model, bytes) = linear_model(4);
    let version = world.register(MODEL, bytes).await;
    world.set_alias(MODEL, "champion", version).await;
    let gateway = world.gateway(&[]).await;
    gateway.wait_for_champion(version).await;

    let rows = [[3.5f32, -1.0, f32::NAN], [1.0, 2.0, 0.5]];
    let header = serde_json::to_vec(&json!({
        "inputs": [{"name": "input", "shape": [2, 3], "datatype": "FP32",
                    "parameters": {"binary_data_size": 24}}],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": true}}],
    }))
    .expect("json");
    let mut body = header.clone();
    for x in rows.iter().flatten() {
        body.extend(x.to_le_bytes());
    }
    let response = gateway
        .client
        .post(format!("{}/v2/models/{MODEL}/infer", gateway.http))
        .bearer_auth(&gateway.token)
        .header("Inference-Header-Content-Length", header.len())
        .header("Content-Type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    let split: usize = response
        .headers()
        .get("inference-header-content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("binary response header");
    let bytes = response.bytes().await.expect("body");
    let head: serde_json::Value = serde_json::from_slice(&bytes[..split]).expect("json header");
    assert_eq!(head["model_version"], version.to_string());
    assert_eq!(head["outputs"][0]["parameters"]["binary_data_size"], 16);
    let probabilities: Vec<f32> = bytes[split..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    for (row, p) in rows.iter().zip(probabilities.chunks(2)) {
        let want = expected(&model, row);
        assert!((p[1] - want).abs() < 1e-6, "{} vs {want}", p[1]);
    }
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_but_health_needs_a_registry_token() {
    let mut world = World::new().await;
    let (_, bytes) = linear_model(1);
    let version = world.register(MODEL, bytes).await;
    world.set_alias(MODEL, "champion", version).await;
    let mut gateway = world.gateway(&[]).await;
    gateway.wait_for_champion(version).await;
    let client_token = world.client_token().await;

    let call = |token: Option<&str>, path: &str| {
        let mut request = gateway.client.get(format!("{}{path}", gateway.http));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    for path in ["/v2/health/live", "/v2/health/ready"] {
        assert_eq!(call(None, path).await.expect("GET").status(), 200, "{path}");
    }
    let metadata = format!("/v2/models/{MODEL}");
    for (token, want) in [
        (None, "an Authorization: Bearer <token> header is required"),
        (
            Some("mlops_not_a_real_token_at_all"),
            "the bearer token is not valid",
        ),
    ] {
        let response = call(token, &metadata).await.expect("GET");
        assert_eq!(response.status(), 401);
        let body: serde_json::Value = response.json().await.expect("json");
        assert!(
            body["error"].as_str().is_some_and(|e| e.starts_with(want)),
            "{body}"
        );
    }
    // Another principal's token works too: the registry is the identity system.
    gateway.token = client_token;
    let (status, body) = gateway
        .post(
            &format!("/v2/models/{MODEL}/infer"),
            &infer_body(&[[1.0, 2.0, 3.0]]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    gateway.stop().await;
}
