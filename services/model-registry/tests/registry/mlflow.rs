//! The MLflow REST API driven by the real `mlflow` client from PyPI, and
//! what it did seen over gRPC: the same versions, aliases, audit rows and
//! outbox events.

use mlops_registry_client::proto as pb;
use mlops_testkit::http_get;
use serde_json::{Value, json};

use crate::helpers::get_version;
use crate::support::{Db, Options, TestRegistry, artifact_bytes, required_env, upload};

const MODEL: &str = "churn-mlflow";

async fn register_two_versions(registry: &TestRegistry) {
    let mut client = registry.admin_client().await;
    client
        .raw()
        .create_registered_model(pb::CreateRegisteredModelRequest {
            name: MODEL.into(),
            ..Default::default()
        })
        .await
        .expect("model");
    for (n, hint) in [(1u32, "baseline"), (2, "candidate")] {
        client
            .raw()
            .create_model_version(pb::CreateModelVersionRequest {
                model_name: MODEL.into(),
                format: "onnx".into(),
                metrics: [("auc".to_string(), 0.8 + f64::from(n) / 100.0)].into(),
                tags: [("stage_hint".to_string(), hint.to_string())].into(),
                ..Default::default()
            })
            .await
            .expect("version");
        upload(
            &mut client,
            MODEL,
            i64::from(n),
            artifact_bytes(2048, n.into()),
        )
        .await
        .expect("upload");
    }
}

pub(crate) async fn the_mlflow_client_manages_models_through_the_same_rules(db: Db) {
    let registry = TestRegistry::start(Options::new(db)).await;
    register_two_versions(&registry).await;
    let writer = registry.token("notebook", pb::Role::Writer).await;
    let approver = registry.token("lead", pb::Role::Approver).await;
    let events_before = registry.store.pending_event_count().await.expect("outbox");

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/mlflow_registry.py"
    );
    let output = tokio::process::Command::new(required_env("TEST_PYTHON"))
        .arg(script)
        .env("MLFLOW_TRACKING_URI", &registry.mlflow_url)
        .env("WRITER_TOKEN", &writer)
        .env("APPROVER_TOKEN", &approver)
        // Fail fast instead of MLflow's minutes of retries on a 5xx.
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let r: Value = serde_json::from_str(stdout.lines().last().expect("report")).expect("json");

    assert_eq!(
        r["created"],
        json!({"name": "churn-notebook", "tags": {"team": "retention"}, "description": "from MLflow"})
    );
    assert_eq!(r["duplicate"]["code"], "RESOURCE_ALREADY_EXISTS");
    assert_eq!(r["missing"]["code"], "RESOURCE_DOES_NOT_EXIST");
    assert!(
        r["missing"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("no-such-model"),
        "{r}"
    );
    assert_eq!(r["latest_versions"], json!(["2"]));
    assert_eq!(r["champion_as_writer"]["code"], "PERMISSION_DENIED");
    assert_eq!(
        r["champion"],
        json!({"version": "1", "aliases": ["champion"], "status": "READY"})
    );
    assert_eq!(
        r["model_aliases"],
        json!({"challenger": "2", "champion": "1"})
    );
    assert_eq!(r["by_tag"], json!(["2"]));
    assert_eq!(r["ordered"], json!(["2", "1"]));
    assert_eq!(
        r["models_by_prefix"],
        json!(["churn-mlflow", "churn-notebook"])
    );
    assert_eq!(r["latest"], json!(["2"]));
    assert_eq!(r["ilike"]["code"], "INVALID_PARAMETER_VALUE");
    assert!(
        r["ilike"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("ILIKE"),
        "{r}"
    );
    assert_eq!(
        r["v2"],
        json!({
            "description": "retrained on November",
            "tags": {"stage_hint": "candidate", "reviewed": "yes"},
            "aliases": ["challenger"],
        })
    );
    assert_eq!(
        r["edited"],
        json!({"description": "edited", "tags": {"owner": "ds-team"}})
    );
    assert_eq!(r["challenger_gone"]["code"], "RESOURCE_DOES_NOT_EXIST");
    assert_eq!(r["stage"]["code"], "INVALID_PARAMETER_VALUE");
    assert!(
        r["stage"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("aliases"),
        "{r}"
    );
    assert_eq!(r["deleted"]["code"], "RESOURCE_DOES_NOT_EXIST");
    assert_eq!(r["after_delete"], json!(["churn-mlflow"]));

    // Over gRPC: the same store, changed by the callers MLflow named.
    let mut client = registry.admin_client().await;
    let v2 = get_version(&mut client, MODEL, 2).await;
    assert_eq!(v2.description, "retrained on November");
    assert_eq!(v2.tags.get("reviewed").map(String::as_str), Some("yes"));
    let champion = client
        .raw()
        .get_model_version_by_alias(pb::GetModelVersionByAliasRequest {
            model_name: MODEL.into(),
            alias: "champion".into(),
            at_time: None,
        })
        .await
        .expect("champion")
        .into_inner();
    assert_eq!(champion.version, 1);
    let archived = client
        .raw()
        .get_registered_model(pb::GetRegisteredModelRequest {
            name: "churn-notebook".into(),
        })
        .await
        .expect("archived model")
        .into_inner();
    assert!(archived.archived, "MLflow's delete archives");
    let audit = client
        .raw()
        .list_audit_events(pb::ListAuditEventsRequest {
            model_name: MODEL.into(),
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .expect("audit")
        .into_inner()
        .events;
    let by = |principal: &str, action: &str| {
        audit
            .iter()
            .filter(|e| e.principal == principal && e.action == action)
            .count()
    };
    assert_eq!(by("lead", "alias.set"), 1, "{audit:?}");
    assert_eq!(by("notebook", "alias.set"), 1, "challenger");
    assert_eq!(by("notebook", "alias.delete"), 1);
    assert_eq!(
        by("notebook", "version.update"),
        4,
        "description, two tags, one removal"
    );
    // Three alias changes announced: challenger set, champion set, challenger deleted.
    let events_after = registry.store.pending_event_count().await.expect("outbox");
    assert_eq!(events_after - events_before, 3);
    registry.stop().await;
}

pub(crate) async fn mlflow_errors_are_json_with_mlflow_codes(db: Db) {
    let registry = TestRegistry::start(Options::new(db)).await;
    let base = &registry.mlflow_url;
    let (status, body) = http_get(&format!(
        "{base}/api/2.0/mlflow/registered-models/get?name=churn"
    ))
    .await;
    let body: Value = serde_json::from_str(&body).expect("json error");
    assert_eq!(
        (status, body["error_code"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    let (status, body) = http_get(&format!("{base}/api/2.0/mlflow/experiments/nope")).await;
    let body: Value = serde_json::from_str(&body).expect("json error");
    assert_eq!(
        (status, body["error_code"].as_str()),
        (404, Some("ENDPOINT_NOT_FOUND"))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("/experiments/nope")
    );
    registry.stop().await;
}
