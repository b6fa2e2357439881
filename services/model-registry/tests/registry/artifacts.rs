//! Artifact upload and download, and the reasons failed uploads leave.

use mlops_registry_client::proto as pb;
use tonic::Code;

use crate::helpers::get_version;
use crate::support::{self, Db, Options, TestRegistry, code_of, model_with_version, upload};

pub(crate) async fn artifacts_round_trip_and_failures_leave_the_reason(db: Db) {
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
