//! Training runs and the lineage versions inherit from them.

use mlops_registry_client::proto as pb;
use tonic::Code;

use crate::support::{Db, Options, TestRegistry};

pub(crate) async fn runs_link_versions_to_their_dataset_and_cannot_be_deleted_when_used(db: Db) {
    let registry = TestRegistry::start(Options::new(db)).await;
    let mut client = registry.admin_client().await;
    let dataset = pb::DatasetLineage {
        table_uri: "s3://lake/gold/subscriber_features_daily".into(),
        table_version: 42,
        upstream: [("silver_version".to_string(), "17".to_string())].into(),
    };
    let run = client
        .raw()
        .create_run(pb::CreateRunRequest {
            name: "nightly".into(),
            params: [("max_depth".to_string(), "6".to_string())].into(),
            dataset: Some(dataset.clone()),
            tags: [("stage".to_string(), "nightly".to_string())].into(),
        })
        .await
        .expect("run")
        .into_inner();
    assert_eq!(run.status, pb::RunStatus::Running as i32);
    let ended = client
        .raw()
        .update_run(pb::UpdateRunRequest {
            run_id: run.run_id.clone(),
            status: pb::RunStatus::Finished as i32,
            metrics: [("auc".to_string(), 0.87)].into(),
            set_tags: [("gate.decision".to_string(), "promoted".to_string())].into(),
        })
        .await
        .expect("end run")
        .into_inner();
    assert_eq!(ended.status, pb::RunStatus::Finished as i32);
    assert!(ended.ended_at.is_some());
    assert_eq!(ended.metrics["auc"], 0.87);
    assert_eq!(ended.tags["stage"], "nightly", "tags are merged");
    assert_eq!(ended.tags["gate.decision"], "promoted");
    // Tags may still be set once a run has ended (a decision recorded late).
    let annotated = client
        .raw()
        .update_run(pb::UpdateRunRequest {
            run_id: run.run_id.clone(),
            set_tags: [("reviewed".to_string(), "yes".to_string())].into(),
            ..Default::default()
        })
        .await
        .expect("tag ended run")
        .into_inner();
    assert_eq!(annotated.tags.len(), 3);
    assert_eq!(annotated.status, pb::RunStatus::Finished as i32);

    client
        .raw()
        .create_registered_model(pb::CreateRegisteredModelRequest {
            name: "churn".into(),
            ..Default::default()
        })
        .await
        .expect("model");
    let version = client
        .raw()
        .create_model_version(pb::CreateModelVersionRequest {
            model_name: "churn".into(),
            format: "onnx".into(),
            run_id: run.run_id.clone(),
            ..Default::default()
        })
        .await
        .expect("version")
        .into_inner();
    assert_eq!(version.run_id, run.run_id);
    assert_eq!(
        version.dataset,
        Some(dataset),
        "the version inherits the run's dataset"
    );

    let err = client
        .raw()
        .delete_run(pb::DeleteRunRequest {
            run_id: run.run_id.clone(),
        })
        .await
        .expect_err("in use");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("referenced by churn/1"),
        "{}",
        err.message()
    );

    let unknown = client
        .raw()
        .create_model_version(pb::CreateModelVersionRequest {
            model_name: "churn".into(),
            format: "onnx".into(),
            run_id: "no-such-run".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown run");
    assert_eq!(unknown.code(), Code::NotFound);

    let spare = client
        .raw()
        .create_run(pb::CreateRunRequest::default())
        .await
        .expect("run")
        .into_inner();
    client
        .raw()
        .delete_run(pb::DeleteRunRequest {
            run_id: spare.run_id.clone(),
        })
        .await
        .expect("delete unused");
    let gone = client
        .raw()
        .get_run(pb::GetRunRequest {
            run_id: spare.run_id,
        })
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
    registry.stop().await;
}
