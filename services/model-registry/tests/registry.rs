//! The registry's API against real databases (Postgres and SQLite, the same
//! scenarios on both) and a local artifact store.

mod support;

use std::collections::HashSet;

use mlops_registry_client::proto as pb;
use support::{Db, Options, TestRegistry, code_of, model_with_version, upload};
use tonic::Code;

on_both_databases!(
    models_are_created_validated_updated_and_archived,
    concurrent_creates_get_distinct_consecutive_numbers,
    artifacts_round_trip_and_failures_leave_the_reason,
    aliases_move_atomically_keep_history_and_need_approvers_when_protected,
    search_filters_orders_pages_and_always_carries_aliases_and_tags,
    tokens_and_roles_are_enforced,
    runs_link_versions_to_their_dataset_and_cannot_be_deleted_when_used,
    every_mutation_is_audited_and_announced_once_committed,
);

async fn models_are_created_validated_updated_and_archived(db: Db) {
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

async fn concurrent_creates_get_distinct_consecutive_numbers(db: Db) {
    let registry = TestRegistry::start(Options::new(db)).await;
    let mut client = registry.admin_client().await;
    client
        .raw()
        .create_registered_model(pb::CreateRegisteredModelRequest {
            name: "busy".into(),
            ..Default::default()
        })
        .await
        .expect("create");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .raw()
                .create_model_version(pb::CreateModelVersionRequest {
                    model_name: "busy".into(),
                    format: "onnx".into(),
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner().version)
        }));
    }
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(task.await.expect("join").expect("create version"));
    }
    numbers.sort();
    assert_eq!(numbers, (1..=50).collect::<Vec<i64>>());
    let model = client
        .raw()
        .get_registered_model(pb::GetRegisteredModelRequest {
            name: "busy".into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(model.latest_version, 50);
    registry.stop().await;
}

async fn artifacts_round_trip_and_failures_leave_the_reason(db: Db) {
    let registry = TestRegistry::start(Options::new(db)).await;
    let mut client = registry.admin_client().await;
    let v = model_with_version(&mut client, "churn", &[("auc", 0.8)]).await;
    assert_eq!(v.status, pb::ModelVersionStatus::Pending as i32);

    // A wrong checksum fails the upload and says why.
    let bytes = support::artifact_bytes(3 * 1024 * 1024 + 17, 1);
    let err = client
        .upload_artifact(
            "churn",
            1,
            "model.onnx",
            bytes.len() as u64,
            &"0".repeat(64),
            std::io::Cursor::new(bytes.clone()),
            |_| {},
        )
        .await
        .expect_err("checksum");
    assert_eq!(code_of(&err), Code::InvalidArgument);
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    let failed = get_version(&mut client, "churn", 1).await;
    assert_eq!(failed.status, pb::ModelVersionStatus::Failed as i32);
    assert!(
        failed.status_message.starts_with("checksum mismatch"),
        "{}",
        failed.status_message
    );

    // A short upload fails too.
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    let err = client
        .upload_artifact(
            "churn",
            1,
            "model.onnx",
            bytes.len() as u64 + 5,
            &sha,
            std::io::Cursor::new(bytes.clone()),
            |_| {},
        )
        .await
        .expect_err("short");
    assert!(err.to_string().contains("upload ended after"), "{err}");

    // A retry succeeds and the artifact comes back byte for byte.
    let ready = upload(&mut client, "churn", 1, bytes.clone())
        .await
        .expect("upload");
    assert_eq!(ready.status, pb::ModelVersionStatus::Ready as i32);
    assert_eq!(ready.artifact_size_bytes, bytes.len() as i64);
    assert_eq!(ready.artifact_sha256, sha);
    assert_eq!(ready.status_message, "");
    let mut out = Vec::new();
    let info = client
        .download_artifact(
            pb::DownloadArtifactRequest {
                model_name: "churn".into(),
                version: 1,
                alias: String::new(),
            },
            &mut out,
            |_| {},
            |_| {},
        )
        .await
        .expect("download");
    assert_eq!(info.sha256, sha);
    assert_eq!(out, bytes);

    // READY artifacts are immutable.
    let err = upload(&mut client, "churn", 1, vec![1, 2, 3])
        .await
        .expect_err("immutable");
    assert_eq!(code_of(&err), Code::FailedPrecondition);
    assert!(err.to_string().contains("immutable"), "{err}");

    // Download of a version without an artifact is refused clearly.
    model_with_version(&mut client, "churn", &[]).await;
    let err = client
        .download_artifact(
            pb::DownloadArtifactRequest {
                model_name: "churn".into(),
                version: 2,
                alias: String::new(),
            },
            &mut Vec::new(),
            |_| {},
            |_| {},
        )
        .await
        .expect_err("pending");
    assert_eq!(code_of(&err), Code::FailedPrecondition);
    assert!(err.to_string().contains("is PENDING"), "{err}");
    registry.stop().await;
}

async fn get_version(
    client: &mut mlops_registry_client::RegistryClient,
    model: &str,
    version: i64,
) -> pb::ModelVersion {
    client
        .raw()
        .get_model_version(pb::GetModelVersionRequest {
            model_name: model.into(),
            version,
        })
        .await
        .expect("get version")
        .into_inner()
}

async fn set_alias(
    client: &mut mlops_registry_client::RegistryClient,
    model: &str,
    alias: &str,
    version: i64,
) -> Result<pb::Alias, tonic::Status> {
    client
        .raw()
        .set_alias(pb::SetAliasRequest {
            model_name: model.into(),
            alias: alias.into(),
            version,
        })
        .await
        .map(|r| r.into_inner())
}

async fn aliases_move_atomically_keep_history_and_need_approvers_when_protected(db: Db) {
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

async fn search_filters_orders_pages_and_always_carries_aliases_and_tags(db: Db) {
    let registry = TestRegistry::start(Options::new(db)).await;
    let mut client = registry.admin_client().await;
    for (name, team) in [
        ("churn-a", "retention"),
        ("churn-b", "retention"),
        ("arpu", "finance"),
    ] {
        client
            .raw()
            .create_registered_model(pb::CreateRegisteredModelRequest {
                name: name.into(),
                tags: [("team".to_string(), team.to_string())].into(),
                ..Default::default()
            })
            .await
            .expect("model");
    }
    for (model, auc) in [
        ("churn-a", 0.70),
        ("churn-a", 0.85),
        ("churn-a", 0.91),
        ("churn-b", 0.88),
        ("arpu", 0.99),
    ] {
        let v = client
            .raw()
            .create_model_version(pb::CreateModelVersionRequest {
                model_name: model.into(),
                format: "onnx".into(),
                metrics: [("auc".to_string(), auc)].into(),
                tags: [(
                    "stage".to_string(),
                    if auc > 0.9 { "prod" } else { "dev" }.to_string(),
                )]
                .into(),
                ..Default::default()
            })
            .await
            .expect("version")
            .into_inner();
        upload(&mut client, model, v.version, vec![1; 4])
            .await
            .expect("upload");
    }
    set_alias(&mut client, "churn-a", "champion", 3)
        .await
        .expect("alias");

    let search = |filter: &str, order_by: &str, page_size: i32, page_token: String| {
        pb::SearchModelVersionsRequest {
            filter: filter.into(),
            order_by: order_by.into(),
            page_size,
            page_token,
        }
    };
    let found = client
        .raw()
        .search_model_versions(search(
            "name LIKE 'churn-%' AND metrics.auc > 0.8",
            "metrics.auc DESC",
            0,
            String::new(),
        ))
        .await
        .expect("search")
        .into_inner();
    let got: Vec<(String, i64)> = found
        .versions
        .iter()
        .map(|v| (v.model_name.clone(), v.version))
        .collect();
    assert_eq!(
        got,
        vec![
            ("churn-a".to_string(), 3),
            ("churn-b".to_string(), 1),
            ("churn-a".to_string(), 2)
        ]
    );
    assert_eq!(found.versions[0].aliases, vec!["champion".to_string()]);
    assert_eq!(found.versions[0].tags["stage"], "prod");
    assert_eq!(found.versions[0].metrics["auc"], 0.91);

    let by_alias = client
        .raw()
        .search_model_versions(search("alias = 'champion'", "", 0, String::new()))
        .await
        .expect("alias search")
        .into_inner();
    assert_eq!(by_alias.versions.len(), 1);
    assert_eq!(
        (
            by_alias.versions[0].model_name.as_str(),
            by_alias.versions[0].version
        ),
        ("churn-a", 3)
    );

    let tagged = client
        .raw()
        .search_model_versions(search(
            "tags.stage = 'prod' AND status = 'READY'",
            "name ASC",
            0,
            String::new(),
        ))
        .await
        .expect("tag search")
        .into_inner();
    let names: Vec<&str> = tagged
        .versions
        .iter()
        .map(|v| v.model_name.as_str())
        .collect();
    assert_eq!(names, vec!["arpu", "churn-a"]);

    // Pages of 2 cover everything once, in order.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .raw()
            .search_model_versions(search("", "created_at ASC", 2, token.clone()))
            .await
            .expect("page")
            .into_inner();
        assert!(page.versions.len() <= 2);
        seen.extend(
            page.versions
                .iter()
                .map(|v| (v.model_name.clone(), v.version)),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 5);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 5);

    // A token from another search is refused.
    let err = client
        .raw()
        .search_model_versions(search(
            "metrics.auc > 0.1",
            "created_at ASC",
            2,
            "o2.000000000000".into(),
        ))
        .await
        .expect_err("foreign token");
    assert_eq!(err.code(), Code::InvalidArgument);

    let models = client
        .raw()
        .search_registered_models(pb::SearchRegisteredModelsRequest {
            filter: "tags.team = 'retention'".into(),
            order_by: "name DESC".into(),
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .expect("models")
        .into_inner();
    let names: Vec<&str> = models.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, vec!["churn-b", "churn-a"]);
    assert_eq!(models.models[1].aliases["champion"], 3);

    let bad = client
        .raw()
        .search_model_versions(search("metrics.auc > high", "", 0, String::new()))
        .await
        .expect_err("bad filter");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(
        bad.message(),
        "invalid filter at character 15: `metrics.auc` compares with a number"
    );
    registry.stop().await;
}

async fn tokens_and_roles_are_enforced(db: Db) {
    let registry = TestRegistry::start(Options::new(db)).await;
    let reader = registry.token("viewer", pb::Role::Reader).await;

    let mut anonymous = registry.client("mlops_not_a_real_token").await;
    let err = anonymous
        .raw()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect_err("unknown token");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(err.message(), "unknown or revoked token");

    let mut reader_client = registry.client(&reader).await;
    let me = reader_client
        .raw()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("whoami")
        .into_inner();
    assert_eq!(
        (me.principal.as_str(), me.role),
        ("viewer", pb::Role::Reader as i32)
    );
    let err = reader_client
        .raw()
        .create_registered_model(pb::CreateRegisteredModelRequest {
            name: "x".into(),
            ..Default::default()
        })
        .await
        .expect_err("reader cannot write");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "CreateRegisteredModel needs the writer role; token \"viewer\" has the reader role"
    );
    let err = reader_client
        .raw()
        .list_api_tokens(pb::ListApiTokensRequest {})
        .await
        .expect_err("reader is not admin");
    assert!(
        err.message().contains("needs the admin role"),
        "{}",
        err.message()
    );

    // Without metadata at all.
    let channel = tonic::transport::Endpoint::from_shared(registry.url.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut bare = pb::model_registry_client::ModelRegistryClient::new(channel);
    let err = bare
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(
        err.message()
            .contains("missing `authorization: Bearer <token>`"),
        "{}",
        err.message()
    );

    // Tokens are stored hashed and can be revoked.
    let mut admin = registry.admin_client().await;
    let tokens = admin
        .raw()
        .list_api_tokens(pb::ListApiTokensRequest {})
        .await
        .expect("list")
        .into_inner()
        .tokens;
    assert_eq!(tokens.len(), 1);
    let stored: String = sqlx::query_scalar("SELECT secret_sha256 FROM api_tokens")
        .fetch_one(&registry_pool(&registry).await)
        .await
        .expect("stored hash");
    assert_ne!(stored, reader);
    assert_eq!(stored.len(), 64);
    admin
        .raw()
        .revoke_api_token(pb::RevokeApiTokenRequest {
            token_id: tokens[0].token_id.clone(),
        })
        .await
        .expect("revoke");
    let err = reader_client
        .raw()
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect_err("revoked");
    assert_eq!(err.code(), Code::Unauthenticated);
    registry.stop().await;
}

async fn registry_pool(registry: &TestRegistry) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&registry.db.url)
        .await
        .expect("pool")
}

async fn runs_link_versions_to_their_dataset_and_cannot_be_deleted_when_used(db: Db) {
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
        })
        .await
        .expect("end run")
        .into_inner();
    assert_eq!(ended.status, pb::RunStatus::Finished as i32);
    assert!(ended.ended_at.is_some());
    assert_eq!(ended.metrics["auc"], 0.87);

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

async fn every_mutation_is_audited_and_announced_once_committed(db: Db) {
    let registry = TestRegistry::start(Options::new(db)).await;
    let mut client = registry.admin_client().await;
    let v = model_with_version(&mut client, "churn", &[]).await;
    upload(&mut client, "churn", v.version, vec![7; 100])
        .await
        .expect("upload");
    set_alias(&mut client, "churn", "champion", 1)
        .await
        .expect("alias");
    // A refused change is neither audited nor announced.
    client
        .raw()
        .create_registered_model(pb::CreateRegisteredModelRequest {
            name: "churn".into(),
            ..Default::default()
        })
        .await
        .expect_err("duplicate");

    let events = client
        .raw()
        .list_audit_events(pb::ListAuditEventsRequest {
            model_name: "churn".into(),
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .expect("audit")
        .into_inner()
        .events;
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            "alias.set",
            "version.ready",
            "version.create",
            "model.create"
        ]
    );
    assert!(events.iter().all(|e| e.principal == "bootstrap-admin"));
    assert_eq!(events[0].target, "churn@champion");
    assert_eq!(events[0].before_json, "");
    assert!(
        events[0].after_json.contains("\"version\":1"),
        "{}",
        events[0].after_json
    );

    // Paging through the audit log by one.
    let first = client
        .raw()
        .list_audit_events(pb::ListAuditEventsRequest {
            model_name: "churn".into(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .expect("page")
        .into_inner();
    let second = client
        .raw()
        .list_audit_events(pb::ListAuditEventsRequest {
            model_name: "churn".into(),
            page_size: 1,
            page_token: first.next_page_token,
        })
        .await
        .expect("page 2")
        .into_inner();
    assert_eq!(second.events[0].action, "version.ready");

    // Events wait in the outbox (publishing is off in this test): exactly
    // the three committed announcements, in order.
    let pending = registry.store.pending_events(100).await.expect("outbox");
    let kinds: Vec<&str> = pending
        .iter()
        .map(|e| {
            use prost::Message;
            match pb::RegistryEvent::decode(e.payload.as_slice())
                .expect("event")
                .event
            {
                Some(pb::registry_event::Event::VersionCreated(_)) => "created",
                Some(pb::registry_event::Event::VersionReady(_)) => "ready",
                Some(pb::registry_event::Event::AliasChanged(_)) => "alias",
                None => "none",
            }
        })
        .collect();
    assert_eq!(kinds, vec!["created", "ready", "alias"]);
    assert!(pending.iter().all(|e| e.key == "churn"));
    registry.stop().await;
}
