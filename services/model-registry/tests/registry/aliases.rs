//! Aliases: atomic moves, history, point-in-time lookups and protection.

use mlops_registry_client::proto as pb;
use tonic::Code;

use crate::helpers::{get_version, set_alias};
use crate::support::{Db, Options, TestRegistry, model_with_version, upload};

pub(crate) async fn aliases_move_atomically_keep_history_and_need_approvers_when_protected(db: Db) {
    let registry = TestRegistry::start(Options::new(db)).await;
    let mut admin = registry.admin_client().await;
    for _ in 0..3 {
        let v = model_with_version(&mut admin, "churn", &[]).await;
        upload(&mut admin, "churn", v.version, vec![v.version as u8; 10])
            .await
            .expect("upload");
    }
    model_with_version(&mut admin, "churn", &[]).await; // version 4 stays PENDING

    let writer = registry.token("ci", pb::Role::Writer).await;
    let approver = registry.token("lead", pb::Role::Approver).await;
    let mut writer = registry.client(&writer).await;
    let mut approver = registry.client(&approver).await;

    // Unprotected aliases are writers' business; protected need approvers.
    set_alias(&mut writer, "churn", "challenger", 2)
        .await
        .expect("challenger");
    let denied = set_alias(&mut writer, "churn", "champion", 1)
        .await
        .expect_err("protected");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(
        denied.message(),
        "setting protected alias \"champion\" needs the approver role; token \"ci\" has the writer role"
    );
    let pending = set_alias(&mut approver, "churn", "champion", 4)
        .await
        .expect_err("pending");
    assert_eq!(pending.code(), Code::FailedPrecondition);
    assert!(
        pending.message().contains("only READY versions"),
        "{}",
        pending.message()
    );

    let first = set_alias(&mut approver, "churn", "champion", 1)
        .await
        .expect("set");
    assert_eq!((first.version, first.set_by.as_str()), (1, "lead"));
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let between = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let moved = set_alias(&mut approver, "churn", "champion", 3)
        .await
        .expect("move");
    assert_eq!(moved.version, 3);

    // One alias points at exactly one version; versions list their aliases.
    assert_eq!(
        get_version(&mut admin, "churn", 1).await.aliases,
        Vec::<String>::new()
    );
    assert_eq!(
        get_version(&mut admin, "churn", 3).await.aliases,
        vec!["champion".to_string()]
    );
    let by_alias = admin
        .raw()
        .get_model_version_by_alias(pb::GetModelVersionByAliasRequest {
            model_name: "churn".into(),
            alias: "champion".into(),
            at_time: None,
        })
        .await
        .expect("by alias")
        .into_inner();
    assert_eq!(by_alias.version, 3);
    let at_time = prost_types::Timestamp {
        seconds: between.timestamp(),
        nanos: between.timestamp_subsec_nanos() as i32,
    };
    let then = admin
        .raw()
        .get_model_version_by_alias(pb::GetModelVersionByAliasRequest {
            model_name: "churn".into(),
            alias: "champion".into(),
            at_time: Some(at_time),
        })
        .await
        .expect("at time")
        .into_inner();
    assert_eq!(then.version, 1, "champion was version 1 at {between}");
    let before_any = prost_types::Timestamp {
        seconds: 1,
        nanos: 0,
    };
    let none = admin
        .raw()
        .get_model_version_by_alias(pb::GetModelVersionByAliasRequest {
            model_name: "churn".into(),
            alias: "champion".into(),
            at_time: Some(before_any),
        })
        .await
        .expect_err("before it existed");
    assert_eq!(none.code(), Code::NotFound);

    // Deleting needs the approver too, and is recorded as version 0.
    let denied = writer
        .raw()
        .delete_alias(pb::DeleteAliasRequest {
            model_name: "churn".into(),
            alias: "champion".into(),
        })
        .await
        .expect_err("protected delete");
    assert_eq!(denied.code(), Code::PermissionDenied);
    approver
        .raw()
        .delete_alias(pb::DeleteAliasRequest {
            model_name: "churn".into(),
            alias: "champion".into(),
        })
        .await
        .expect("delete");
    let history = admin
        .raw()
        .list_alias_history(pb::ListAliasHistoryRequest {
            model_name: "churn".into(),
            alias: "champion".into(),
        })
        .await
        .expect("history")
        .into_inner()
        .entries;
    let versions: Vec<(i64, &str)> = history
        .iter()
        .map(|e| (e.version, e.set_by.as_str()))
        .collect();
    assert_eq!(versions, vec![(1, "lead"), (3, "lead"), (0, "lead")]);
    let gone = admin
        .raw()
        .get_model_version_by_alias(pb::GetModelVersionByAliasRequest {
            model_name: "churn".into(),
            alias: "champion".into(),
            at_time: None,
        })
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
    assert_eq!(
        gone.message(),
        "alias \"champion\" of registered model \"churn\" not found"
    );
    registry.stop().await;
}
