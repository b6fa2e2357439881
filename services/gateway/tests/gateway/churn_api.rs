//! The churn API over a real pipeline: producer events through bronze and
//! the real transform into gold, the real trainer's champion, and the
//! gateway's online features. Zero train/serve skew: for every subscriber,
//! the gateway's features equal gold's row and its score equals Python
//! onnxruntime's score of that row, encoded independently in Python.

use mlops_features::FeatureRow;
use mlops_features::row::from_record_batch;
use mlops_lake::subscriber_features;
use mlops_registry_client::proto as pb;
use serde_json::{Value, json};

use crate::lake_support::{self, TestLake};
use crate::support::{MODEL, TestGateway, World};
use crate::trainer_support;

const SUBSCRIBERS: u32 = 80;
const DAYS: u32 = 45;

/// `value` as the client sees it: JSON text parsed back, so numbers go
/// through the same float parsing the gateway's answers do.
fn as_received(value: &impl serde::Serialize) -> Value {
    serde_json::from_str(&serde_json::to_string(value).expect("json")).expect("parse")
}

/// Gold's latest rows, read straight from the Delta table.
async fn gold_latest(lake: &TestLake) -> (u64, Vec<FeatureRow>) {
    let table = subscriber_features::latest_spec()
        .open(&lake.location)
        .await
        .expect("latest table");
    let version = table.version().expect("a version");
    let mut rows = Vec::new();
    for batch in mlops_lake::read::read_all(&table).await.expect("read") {
        rows.extend(from_record_batch(&batch).expect("rows"));
    }
    rows.sort_by(|a, b| a.subscriber_id.cmp(&b.subscriber_id));
    (version, rows)
}

async fn champion_bytes(world: &World) -> Vec<u8> {
    let mut bytes = Vec::new();
    world
        .admin
        .clone()
        .download_artifact(
            pb::DownloadArtifactRequest {
                model_name: MODEL.into(),
                version: 0,
                alias: "champion".into(),
            },
            &mut bytes,
            |_| {},
            |_| {},
        )
        .await
        .expect("download the champion");
    bytes
}

/// Scores gold rows with onnxruntime, building each input from the model's
/// own `features` metadata: a feature column, or 1/0 for `region=`/`plan=`.
const PYTHON_SCORER: &str = r#"
import json, sys
import numpy as np, onnxruntime as ort
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
columns = json.loads(session.get_modelmeta().custom_metadata_map["features"])
rows = json.load(open(sys.argv[2]))
def value(row, column):
    for prefix in ("region", "plan"):
        if column.startswith(prefix + "="):
            return 1.0 if row[prefix] == column[len(prefix) + 1:] else 0.0
    v = row["features"][column]
    return np.nan if v is None else float(v)
x = np.array([[value(r, c) for c in columns] for r in rows], dtype=np.float32)
names = [o.name for o in session.get_outputs()]
probabilities = dict(zip(names, session.run(None, {session.get_inputs()[0].name: x})))["probabilities"]
print(json.dumps({r["subscriber_id"]: float(p) for r, p in zip(rows, probabilities[:, 1])}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_features_and_scores_match_gold_and_onnxruntime() {
    let (lake, _) = trainer_support::world(11, SUBSCRIBERS, DAYS).await;
    let world = World::new().await;
    let trainer_token = world.registry.token("trainer", pb::Role::Approver).await;
    let config = trainer_support::config(&lake, &world.registry.url, &trainer_token, &[]);
    let summary = trainer_support::train(&config).await.expect("training run");
    assert_eq!(summary.alias, "champion", "the first model is promoted");
    let champion = summary.best_version;

    let root = lake.location.root().to_string();
    let brokers = crate::registry_support::required_env("TEST_KAFKA_BROKERS");
    let topic = crate::monitor::topic_of_one_partition(&brokers).await;
    let gateway = world
        .gateway(&[
            ("LAKE_URL", &root),
            ("GATEWAY_FEATURES_POLL_SECONDS", "1"),
            ("GATEWAY_PREDICTION_LOG", "kafka"),
            ("KAFKA_BROKERS", &brokers),
            ("PREDICTIONS_TOPIC", &topic),
        ])
        .await;
    gateway.wait_for_champion(champion).await;
    let (version, gold) = gold_latest(&lake).await;
    assert_eq!(gold.len(), SUBSCRIBERS as usize);
    let first = &gold[0].subscriber_id;
    gateway
        .wait_until(
            "online features",
            &format!("/api/v1/subscribers/{first}/features"),
            |b| b["features_version"] == version,
        )
        .await;

    // Features: every subscriber's row is gold's row.
    for row in &gold {
        let (status, body) = gateway
            .get(&format!(
                "/api/v1/subscribers/{}/features",
                row.subscriber_id
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["as_of_date"], row.as_of_date.to_string());
        assert_eq!(body["region"], json!(row.region));
        assert_eq!(body["plan"], json!(row.plan));
        assert_eq!(body["churned"], row.churned);
        assert_eq!(
            body["features"],
            as_received(&row.features),
            "{}",
            row.subscriber_id
        );
    }

    // Scores: the gateway's equal onnxruntime's on gold's rows.
    let ids: Vec<&str> = gold.iter().map(|r| r.subscriber_id.as_str()).collect();
    let response = gateway
        .client
        .post(format!("{}/api/v1/churn/score", gateway.http))
        .bearer_auth(&gateway.token)
        .header("x-request-id", "score-all-1")
        .json(&json!({ "subscriber_ids": ids }))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    let scored: Value = response.json().await.expect("json");
    assert_eq!(scored["model_name"], MODEL);
    assert_eq!(scored["model_version"], champion.to_string());
    assert_eq!(scored["features_version"], version);
    let scores = scored["scores"].as_array().expect("scores");
    assert_eq!(scores.len(), gold.len());

    let dir = tempfile::tempdir().expect("temp dir");
    let model_path = dir.path().join("champion.onnx");
    std::fs::write(&model_path, champion_bytes(&world).await).expect("model file");
    let rows_path = dir.path().join("rows.json");
    let rows: Vec<Value> = gold
        .iter()
        .map(|r| {
            json!({
                "subscriber_id": r.subscriber_id, "region": r.region, "plan": r.plan,
                "features": r.features,
            })
        })
        .collect();
    std::fs::write(&rows_path, serde_json::to_vec(&rows).expect("json")).expect("rows file");
    let out = lake_support::run_python(
        PYTHON_SCORER,
        &[
            &model_path.display().to_string(),
            &rows_path.display().to_string(),
        ],
    );
    let python: Value = serde_json::from_str(out.trim()).expect("python json");
    for (entry, row) in scores.iter().zip(&gold) {
        assert_eq!(entry["subscriber_id"], row.subscriber_id.as_str());
        let ours = entry["probability"].as_f64().expect("probability");
        let theirs = python[&row.subscriber_id].as_f64().expect("python score");
        assert!(
            (ours - theirs).abs() <= 1e-6,
            "{}: gateway {ours} vs onnxruntime {theirs}",
            row.subscriber_id
        );
        assert_eq!(entry["features"], as_received(&row.features));
    }

    // Each score is logged under the subscriber, with its features' version,
    // and measured against the trainer's reference distribution.
    let logged = crate::monitor::read_predictions(&brokers, &topic, gold.len()).await;
    for ((key, prediction), entry) in logged.iter().zip(scores) {
        let subscriber = entry["subscriber_id"].as_str().expect("id");
        assert_eq!(key.as_deref(), Some(subscriber));
        assert_eq!(prediction.subscriber_id, subscriber);
        assert_eq!(prediction.request_id, "score-all-1");
        assert_eq!(prediction.source, "api");
        assert_eq!(prediction.model_version, champion);
        assert_eq!(prediction.features_version as u64, version);
        let probability = entry["probability"].as_f64().expect("probability");
        assert!((f64::from(prediction.score) - probability).abs() < 1e-6);
    }
    let window = format!("gateway_drift_window_rows{{model=\"{MODEL}\",version=\"{champion}\"}}");
    assert_eq!(gateway.metric(&window).await, gold.len() as f64);
    let psi = gateway
        .metric(&format!(
            "gateway_drift_score_psi{{model=\"{MODEL}\",version=\"{champion}\"}}"
        ))
        .await;
    assert!(psi.is_finite() && psi >= 0.0, "score PSI {psi}");

    // At risk: current subscribers ranked by those same scores.
    let (status, ranked) = gateway.get("/api/v1/churn/at-risk?limit=5").await;
    assert_eq!(status, 200, "{ranked}");
    let current = gold.iter().filter(|r| !r.churned).count();
    assert_eq!(ranked["matching"], current);
    let listed = ranked["subscribers"].as_array().expect("list");
    assert_eq!(listed.len(), 5.min(current));
    let mut best: Vec<f64> = gold
        .iter()
        .filter(|r| !r.churned)
        .map(|r| python[&r.subscriber_id].as_f64().expect("score"))
        .collect();
    best.sort_by(|a, b| b.total_cmp(a));
    for (entry, want) in listed.iter().zip(&best) {
        let got = entry["probability"].as_f64().expect("probability");
        assert!((got - want).abs() <= 1e-6, "{entry} vs {want}");
    }
    let region = gold[0].region.clone().expect("a region");
    let (status, filtered) = gateway
        .get(&format!(
            "/api/v1/churn/at-risk?region={}&limit=1000",
            region.replace(' ', "%20")
        ))
        .await;
    assert_eq!(status, 200, "{filtered}");
    let in_region = gold
        .iter()
        .filter(|r| !r.churned && r.region.as_deref() == Some(region.as_str()))
        .count();
    assert_eq!(filtered["matching"], in_region);
    assert!(
        filtered["subscribers"]
            .as_array()
            .expect("list")
            .iter()
            .all(|s| s["region"] == region.as_str())
    );
    assert_eq!(
        gateway.metric(&window).await,
        gold.len() as f64,
        "rankings are a view of the table, not monitored predictions"
    );

    errors_name_what_is_wrong(&gateway, first).await;
    schemathesis_finds_nothing(&gateway).await;
    gateway.stop().await;
}

/// schemathesis (PyPI) against the OpenAPI document: no 5xx, every status,
/// content type and body as documented, invalid input refused.
async fn schemathesis_finds_nothing(gateway: &TestGateway) {
    let binary = crate::registry_support::required_env("TEST_SCHEMATHESIS");
    // It keeps a cache in its working directory; keep that out of the tree.
    let scratch = tempfile::tempdir().expect("temp dir");
    let output = tokio::process::Command::new(binary)
        .current_dir(scratch.path())
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", gateway.http))
        .args([
            "--header",
            &format!("Authorization: Bearer {}", gateway.token),
        ])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,negative_data_rejection",
        ])
        .args(["--max-examples", "40", "--seed", "7", "--workers", "1"])
        .env("NO_COLOR", "1")
        .output()
        .await
        .expect("run schemathesis");
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn errors_name_what_is_wrong(gateway: &TestGateway, known: &str) {
    let cases = [
        (
            json!({"subscriber_ids": [known, "nobody"]}),
            404,
            "unknown subscriber \"nobody\"",
        ),
        (
            json!({"subscriber_ids": []}),
            400,
            "subscriber_ids: at least one",
        ),
        (json!({"ids": [known]}), 400, "unknown field `ids`"),
        (
            json!({"subscriber_ids": [1]}),
            400,
            "invalid type: integer `1`",
        ),
    ];
    for (body, status, message) in cases {
        let (got, answer) = gateway.post("/api/v1/churn/score", &body).await;
        assert_eq!(got, status, "{body}: {answer}");
        let error = answer["error"].as_str().expect("error");
        assert!(error.contains(message), "{body}: {error}");
    }
    let (status, answer) = gateway.get("/api/v1/subscribers/nobody/features").await;
    assert_eq!(status, 404);
    assert!(
        answer["error"]
            .as_str()
            .expect("error")
            .contains("\"nobody\"")
    );
    let (status, answer) = gateway.get("/api/v1/churn/at-risk?limit=0").await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .expect("error")
            .starts_with("limit:")
    );

    let (status, document) = gateway.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.0.3");
    let unauthenticated = reqwest::Client::new()
        .get(format!("{}/api/v1/churn/at-risk", gateway.http))
        .send()
        .await
        .expect("GET");
    assert_eq!(unauthenticated.status(), 401);
}
