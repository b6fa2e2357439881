//! The `mlops` command line against a real registry: the commands a data
//! scientist runs, in `--json` and table form, and their errors.

mod support;

use clap::Parser;
use mlops_cli::{Cli, run_with_output};
use serde_json::Value;
use support::{Db, Options, TestRegistry};

/// Runs `mlops <args>` and returns what it printed.
async fn mlops(registry: &TestRegistry, token: &str, args: &[&str]) -> anyhow::Result<String> {
    let mut argv = vec![
        "mlops",
        "--registry-url",
        registry.url.as_str(),
        "--token",
        token,
    ];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv)?;
    let mut out = Vec::new();
    run_with_output(cli, &mut out).await?;
    Ok(String::from_utf8(out)?)
}

async fn json(registry: &TestRegistry, token: &str, args: &[&str]) -> Value {
    let mut with_json = args.to_vec();
    with_json.push("--json");
    let text = mlops(registry, token, &with_json)
        .await
        .unwrap_or_else(|e| panic!("mlops {args:?}: {e:#}"));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("mlops {args:?} printed no JSON ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_scientist_registers_promotes_finds_and_downloads_a_model() {
    let registry = TestRegistry::start(Options::new(Db::Sqlite)).await;
    let admin = support::BOOTSTRAP;

    let token = json(
        &registry,
        admin,
        &["tokens", "create", "ds", "--role", "approver"],
    )
    .await;
    let secret = token["secret"].as_str().expect("secret").to_string();
    assert!(secret.starts_with("mlops_"), "{token}");
    let me = json(&registry, &secret, &["whoami"]).await;
    assert_eq!(
        (me["principal"].as_str(), me["role"].as_str()),
        (Some("ds"), Some("approver"))
    );

    let model = json(
        &registry,
        &secret,
        &["models", "create", "churn", "--tag", "team=retention"],
    )
    .await;
    assert_eq!(model["name"], "churn");
    assert_eq!(model["tags"]["team"], "retention");

    let dir = tempfile::tempdir().expect("tempdir");
    let artifact = dir.path().join("model.onnx");
    let bytes = support::artifact_bytes(2 * 1024 * 1024 + 5, 3);
    std::fs::write(&artifact, &bytes).expect("write artifact");
    let version = json(
        &registry,
        &secret,
        &[
            "versions",
            "register",
            "churn",
            "--file",
            artifact.to_str().expect("utf8"),
            "--metric",
            "auc=0.87",
            "--param",
            "max_depth=6",
            "--input",
            "features:float32:-1x12",
            "--output",
            "churn:float32:-1x1",
            "--dataset",
            "s3://lake/gold/subscriber_features_daily@42",
        ],
    )
    .await;
    assert_eq!(version["version"], 1);
    assert_eq!(version["status"], "READY");
    assert_eq!(version["artifact"]["size_bytes"], bytes.len());
    assert_eq!(
        version["signature"]["inputs"][0]["shape"],
        serde_json::json!([-1, 12])
    );
    assert_eq!(version["dataset"]["table_version"], 42);
    assert_eq!(version["created_by"], "ds");

    let alias = json(
        &registry,
        &secret,
        &["alias", "set", "churn", "champion", "1"],
    )
    .await;
    assert_eq!(alias["version"], 1);

    let found = json(
        &registry,
        &secret,
        &[
            "versions",
            "search",
            "--filter",
            "metrics.auc > 0.8",
            "--order-by",
            "metrics.auc DESC",
        ],
    )
    .await;
    assert_eq!(found.as_array().map(Vec::len), Some(1));
    assert_eq!(found[0]["aliases"], serde_json::json!(["champion"]));

    let out = dir.path().join("downloaded.onnx");
    let download = json(
        &registry,
        &secret,
        &[
            "versions",
            "download",
            "churn",
            "@champion",
            "-o",
            out.to_str().expect("utf8"),
        ],
    )
    .await;
    assert_eq!(download["version"], 1);
    assert!(
        std::fs::read(&out).expect("downloaded file") == bytes,
        "downloaded bytes differ"
    );

    let shown = json(
        &registry,
        &secret,
        &["versions", "show", "churn", "@champion"],
    )
    .await;
    assert_eq!(shown["version"], 1);
    let history = json(
        &registry,
        &secret,
        &["alias", "history", "churn", "champion"],
    )
    .await;
    assert_eq!(history[0]["version"], 1);
    assert_eq!(history[0]["set_by"], "ds");
    let audit = json(&registry, &secret, &["audit", "churn"]).await;
    let actions: Vec<&str> = audit
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        vec![
            "alias.set",
            "version.ready",
            "version.create",
            "model.create"
        ]
    );

    // People get tables.
    let table = mlops(&registry, &secret, &["models", "list"])
        .await
        .expect("table");
    assert!(
        table.contains("churn") && table.contains("champion=1") && table.contains("team=retention"),
        "{table}"
    );
    registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistakes_get_clear_errors_and_leave_no_files_behind() {
    let registry = TestRegistry::start(Options::new(Db::Sqlite)).await;
    let admin = support::BOOTSTRAP;

    let err = mlops(
        &registry,
        admin,
        &["versions", "search", "--filter", "metrics.auc > high"],
    )
    .await
    .expect_err("bad filter");
    assert_eq!(
        format!("{err:#}"),
        "INVALID_ARGUMENT: invalid filter at character 15: `metrics.auc` compares with a number"
    );

    let err = mlops(
        &registry,
        admin,
        &["models", "create", "m", "--tag", "novalue"],
    )
    .await
    .expect_err("bad tag");
    assert!(err.to_string().contains("expected key=value"), "{err}");
    let err = mlops(
        &registry,
        admin,
        &[
            "versions", "register", "m", "--file", "x", "--metric", "auc=high",
        ],
    )
    .await
    .expect_err("bad metric");
    assert!(
        err.to_string().contains("\"high\" is not a number"),
        "{err}"
    );

    let err = mlops(&registry, "mlops_wrong", &["models", "list"])
        .await
        .expect_err("bad token");
    assert_eq!(
        format!("{err:#}"),
        "UNAUTHENTICATED: unknown or revoked token"
    );

    // A failed download leaves neither the target nor a temporary file.
    mlops(&registry, admin, &["models", "create", "churn"])
        .await
        .expect("model");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("model.onnx");
    let err = mlops(
        &registry,
        admin,
        &[
            "versions",
            "download",
            "churn",
            "@champion",
            "-o",
            out.to_str().expect("utf8"),
        ],
    )
    .await
    .expect_err("no such alias");
    assert!(
        format!("{err:#}").starts_with("NOT_FOUND: alias \"champion\""),
        "{err:#}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);

    let err = mlops(
        &registry,
        admin,
        &[
            "versions",
            "register",
            "churn",
            "--file",
            "/no/such/file.onnx",
        ],
    )
    .await
    .expect_err("missing file");
    assert!(
        format!("{err:#}").contains("reading /no/such/file.onnx"),
        "{err:#}"
    );
    registry.stop().await;
}
