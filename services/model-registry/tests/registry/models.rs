//! Registered models: create, validate, update and archive.

use mlops_registry_client::proto as pb;
use tonic::Code;

use crate::support::{Db, Options, TestRegistry};

pub(crate) async fn models_are_created_validated_updated_and_archived(db: Db) {
    let registry = TestRegistry::start(Options::new(db)).await;
    let mut client = registry.admin_client().await;
    let created = client
        .raw()
        .create_registered_model(pb::CreateRegisteredModelRequest {
            name: "churn".into(),
            description: "churn risk".into(),
            tags: [("team".to_string(), "retention".to_string())].into(),
        })
        .await
        .expect("create")
        .into_inner();
    assert_eq!(created.name, "churn");
    assert_eq!(created.tags["team"], "retention");
    assert_eq!(created.created_by, "bootstrap-admin");
    assert_eq!(created.latest_version, 0);

    let dup = client
        .raw()
        .create_registered_model(pb::CreateRegisteredModelRequest {
            name: "churn".into(),
            ..Default::default()
        })
        .await
        .expect_err("duplicate");
    assert_eq!(dup.code(), Code::AlreadyExists);
    assert_eq!(dup.message(), "registered model \"churn\" already exists");

    let bad = client
        .raw()
        .create_registered_model(pb::CreateRegisteredModelRequest {
            name: "churn model".into(),
            ..Default::default()
        })
        .await
        .expect_err("invalid name");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(
        bad.message().contains("name \"churn model\" is not valid"),
        "{}",
        bad.message()
    );

    let missing = client
        .raw()
        .get_registered_model(pb::GetRegisteredModelRequest {
            name: "nope".into(),
        })
        .await
        .expect_err("missing");
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(missing.message(), "registered model \"nope\" not found");

    let updated = client
        .raw()
        .update_registered_model(pb::UpdateRegisteredModelRequest {
            name: "churn".into(),
            description: Some("churn risk, 30 days".into()),
            set_tags: [("owner".to_string(), "ds".to_string())].into(),
            remove_tags: vec!["team".into()],
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.description, "churn risk, 30 days");
    assert_eq!(
        updated.tags,
        [("owner".to_string(), "ds".to_string())].into()
    );

    let archived = client
        .raw()
        .archive_registered_model(pb::ArchiveRegisteredModelRequest {
            name: "churn".into(),
        })
        .await
        .expect("archive")
        .into_inner();
    assert!(archived.archived);
    let refused = client
        .raw()
        .create_model_version(pb::CreateModelVersionRequest {
            model_name: "churn".into(),
            format: "onnx".into(),
            ..Default::default()
        })
        .await
        .expect_err("archived");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("archived"),
        "{}",
        refused.message()
    );

    let bad_format = client
        .raw()
        .create_model_version(pb::CreateModelVersionRequest {
            model_name: "churn".into(),
            format: "pickle".into(),
            ..Default::default()
        })
        .await
        .expect_err("format");
    assert_eq!(bad_format.code(), Code::InvalidArgument);
    assert_eq!(
        bad_format.message(),
        "format \"pickle\" is not supported; supported: onnx"
    );
    registry.stop().await;
}
