//! A full run registers every candidate with its lineage, metrics, tags,
//! signature and a verified artifact, promotes the first model, and
//! registers nothing twice when the same training runs again.

use mlops_registry_client::proto as pb;
use mlops_trainer::dataset;
use mlops_trainer::train::PARITY_TOLERANCE;

use crate::registry_support::{Db, Options, TestRegistry};
use crate::{lake_support, support};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_registers_candidates_with_lineage_and_promotes_the_first_model() {
    let (lake, _) = support::world(21, 500, 50).await;
    let registry = TestRegistry::start(Options::new(Db::Sqlite)).await;
    let approver = registry.token("trainer", pb::Role::Approver).await;
    let export_dir = tempfile::tempdir().expect("tempdir");
    let export = export_dir.path().display().to_string();
    let config = support::config(
        &lake,
        &registry.url,
        &approver,
        &[("TRAINER_EXPORT_MATRICES_DIR", &export)],
    );
    let summary = support::train(&config).await.expect("training run");

    assert_eq!(summary.versions.len(), 2, "{summary:?}");
    assert_eq!(summary.alias, "champion");
    assert!(
        summary.decision.reason.starts_with("promoted: first model"),
        "{}",
        summary.decision.reason
    );
    assert!(summary.parity_max_difference <= PARITY_TOLERANCE);
    for (model, auc) in &summary.test_auc {
        assert!(
            *auc > 0.55,
            "{model} learnt something: AUC {auc} ({summary:?})"
        );
    }

    let mut client = registry.admin_client().await;
    let all = support::versions(&client).await;
    assert_eq!(all.len(), 2);
    let lineage = mlops_lake::lineage::of_gold(
        &lake.location,
        &mlops_lake::subscriber_features::daily_spec(),
        summary.gold_version,
    )
    .await
    .expect("lineage");
    for v in &all {
        assert_eq!(v.status, pb::ModelVersionStatus::Ready as i32, "{v:?}");
        assert_eq!(v.run_id, summary.run_id);
        let dataset = v.dataset.as_ref().expect("dataset lineage");
        assert_eq!(dataset.table_version, summary.gold_version as i64);
        assert!(
            dataset
                .table_uri
                .trim_end_matches('/')
                .ends_with("gold/subscriber_features_daily"),
            "{}",
            dataset.table_uri
        );
        assert_eq!(
            dataset.upstream["silver_version"],
            lineage.silver_version.to_string()
        );
        assert_eq!(
            dataset.upstream["bronze_version"],
            lineage.bronze_version.to_string()
        );
        let offsets: std::collections::BTreeMap<String, i64> =
            serde_json::from_str(&dataset.upstream["kafka_offsets"]).expect("offsets json");
        assert_eq!(
            offsets["telecom.events.v1/0"],
            lineage.kafka_offsets[&("telecom.events.v1".to_string(), 0)]
        );
        for key in [
            "test_roc_auc",
            "test_pr_auc",
            "test_log_loss",
            "test_brier",
            "test_ece",
            "test_top_decile_precision",
            "test_top_decile_lift",
            "test_calibration_9_count",
        ] {
            assert!(v.metrics.contains_key(key), "{key} on v{}", v.version);
        }
        assert_eq!(v.tags["horizon_days"], support::HORIZON);
        assert!(["gbdt", "logistic_regression"].contains(&v.tags["model_type"].as_str()));
        assert_eq!(v.tags["feature_set"].len(), 16);
        let input = &v.signature.as_ref().expect("signature").inputs[0];
        assert_eq!(input.dtype, "float32");
        assert_eq!(input.shape, vec![-1, input.columns.len() as i64]);
        assert_eq!(
            &input.columns[..3],
            ["tenure_days", "plan_price_cents", "price_change_30d_cents"]
        );
        assert!(
            input.columns.iter().any(|c| c.starts_with("region="))
                && input.columns.iter().any(|c| c.starts_with("plan="))
        );
    }
    let run = client
        .raw()
        .get_run(pb::GetRunRequest {
            run_id: summary.run_id.clone(),
        })
        .await
        .expect("run")
        .into_inner();
    assert_eq!(run.status, pb::RunStatus::Finished as i32);
    assert_eq!(run.params["gold_version"], summary.gold_version.to_string());
    assert_eq!(
        run.params["trainer_version"],
        mlops_trainer::TRAINER_VERSION
    );
    assert!(
        run.tags["gate.reason"].starts_with("promoted"),
        "{:?}",
        run.tags
    );
    assert_eq!(run.tags["gate.decision"], "promoted");
    assert!(
        run.metrics["gbdt.test_roc_auc"] > 0.0
            && run.metrics["logistic_regression.test_roc_auc"] > 0.0
    );
    assert!(run.ended_at.is_some() && run.dataset.is_some());

    // Python's onnxruntime scores the champion from its own metadata and
    // the exported test matrix; its scores match Rust's ONNX Runtime.
    let champion = all
        .iter()
        .find(|v| v.aliases.contains(&"champion".to_string()))
        .expect("champion");
    let mut bytes = Vec::new();
    client
        .download_artifact(
            pb::DownloadArtifactRequest {
                model_name: "churn".into(),
                version: champion.version,
                alias: String::new(),
            },
            &mut bytes,
            |_| {},
            |_| {},
        )
        .await
        .expect("download");
    let model_path = export_dir.path().join("champion.onnx");
    std::fs::write(&model_path, &bytes).expect("write model");
    let script = r#"
import json, sys
import numpy as np, onnxruntime as ort, pyarrow.parquet as pq
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
features = json.loads(session.get_modelmeta().custom_metadata_map["features"])
table = pq.read_table(sys.argv[2])
x = np.column_stack([table.column(name).to_numpy(zero_copy_only=False) for name in features]).astype(np.float32)
outputs = {o.name: v for o, v in zip(session.get_outputs(), session.run(None, {session.get_inputs()[0].name: x}))}
probabilities = outputs["probabilities"]
assert probabilities.shape == (len(x), 2), probabilities.shape
print(json.dumps({"rows": len(x), "columns": features, "scores": probabilities[:, 1].tolist()}))
"#;
    let test_path = export_dir.path().join("test.parquet");
    let out = lake_support::run_python(
        script,
        &[
            &model_path.display().to_string(),
            &test_path.display().to_string(),
        ],
    );
    let python: serde_json::Value = serde_json::from_str(out.trim()).expect("python json");
    let columns: Vec<String> = serde_json::from_value(python["columns"].clone()).expect("columns");
    assert_eq!(
        columns,
        champion.signature.as_ref().expect("sig").inputs[0].columns,
        "metadata = signature"
    );
    let snapshot = dataset::load(&lake.location, summary.gold_version)
        .await
        .expect("snapshot");
    let prepared = mlops_trainer::train::prepare(&snapshot, &config).expect("prepare");
    let mut scorer = mlops_onnx::Scorer::from_bytes(&bytes, 2).expect("load");
    let rust = scorer
        .score(&prepared.test.values, prepared.test.width)
        .expect("score");
    let python_scores: Vec<f64> = serde_json::from_value(python["scores"].clone()).expect("scores");
    assert_eq!(python_scores.len(), rust.len());
    assert_eq!(python["rows"], prepared.test.len());
    for (p, r) in python_scores.iter().zip(&rust) {
        assert!((p - f64::from(*r)).abs() <= 1e-6, "python {p} vs rust {r}");
    }

    // Same seed and gold version: the same models, byte for byte, and metrics.
    for kind in [
        mlops_trainer::CandidateKind::Gbdt,
        mlops_trainer::CandidateKind::LogisticRegression,
    ] {
        let first = mlops_trainer::train::train_candidate(kind, &prepared, &snapshot, &config);
        let second = mlops_trainer::train::train_candidate(kind, &prepared, &snapshot, &config);
        assert!(
            first.onnx == second.onnx,
            "{} export differs between runs",
            kind.name()
        );
        assert_eq!(first.test, second.test);
        let registered = all
            .iter()
            .find(|v| v.tags["model_type"] == kind.name())
            .expect("registered");
        assert_eq!(
            registered.metrics["test_roc_auc"], first.test.roc_auc,
            "the registered run is reproduced"
        );
    }

    // The same training again registers nothing new.
    let again = support::train(&config).await.expect("rerun");
    assert_eq!(again.versions, summary.versions);
    assert_eq!(
        again.run_id, summary.run_id,
        "the same run, not a second one"
    );
    assert_eq!(
        again.alias, "champion",
        "not gated against itself: {}",
        again.decision.reason
    );
    assert!(
        again.decision.reason.contains("earlier attempt"),
        "{}",
        again.decision.reason
    );
    assert_eq!(
        support::versions(&client).await.len(),
        2,
        "no duplicate versions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_registry_fails_the_run_and_a_rerun_resumes_an_unfinished_one() {
    let (lake, _) = support::world(31, 400, 45).await;
    // Nothing listens there: the run fails after its bounded retries.
    let config = support::config(&lake, "http://127.0.0.1:9", "some-token-1234567890", &[]);
    let error = support::train(&config).await.expect_err("no registry");
    let text = mlops_runtime::error_chain(&error);
    assert!(
        text.contains("registry at http://127.0.0.1:9 unreachable after 2 attempts"),
        "{text}"
    );

    // An earlier attempt that died after creating its run and one version,
    // before the upload: the rerun continues that run and fills that version.
    let registry = TestRegistry::start(Options::new(Db::Sqlite)).await;
    let approver = registry.token("trainer", pb::Role::Approver).await;
    let config = support::config(&lake, &registry.url, &approver, &[]);
    let gold = dataset::latest_gold_version(&lake.location)
        .await
        .expect("gold")
        .expect("version");
    let key = mlops_trainer::app::training_key(&config, gold);
    let mut client = registry.admin_client().await;
    client
        .raw()
        .create_registered_model(pb::CreateRegisteredModelRequest {
            name: "churn".into(),
            ..Default::default()
        })
        .await
        .expect("model");
    let run = client
        .raw()
        .create_run(pb::CreateRunRequest {
            name: "interrupted".into(),
            ..Default::default()
        })
        .await
        .expect("run")
        .into_inner();
    let pending = client
        .raw()
        .create_model_version(pb::CreateModelVersionRequest {
            model_name: "churn".into(),
            format: "onnx".into(),
            run_id: run.run_id.clone(),
            tags: [
                ("training_key".to_string(), key.clone()),
                ("candidate".to_string(), "gbdt".to_string()),
            ]
            .into(),
            ..Default::default()
        })
        .await
        .expect("pending version")
        .into_inner();
    let summary = support::train(&config).await.expect("rerun");
    assert_eq!(summary.run_id, run.run_id, "the open run is continued");
    assert_eq!(
        summary.versions["gbdt"], pending.version,
        "the pending version is completed"
    );
    let all = support::versions(&client).await;
    assert_eq!(all.len(), 2, "one version per candidate: {all:?}");
    assert!(
        all.iter()
            .all(|v| v.status == pb::ModelVersionStatus::Ready as i32)
    );
}
