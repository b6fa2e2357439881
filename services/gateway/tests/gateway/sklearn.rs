//! scikit-learn models exported by skl2onnx with its default options,
//! registered with the `mlops` CLI, served, and driven by tritonclient over
//! REST and gRPC.

use std::path::Path;

use clap::Parser;
use mlops_cli::{Cli, run_with_output};
use serde_json::Value;

use crate::registry_support::BOOTSTRAP;
use crate::support::World;

const PIPELINE: &str = "sk-pipeline";
const FOREST: &str = "sk-forest";

fn script(name: &str) -> String {
    format!("{}/tests/python/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `mlops <args> --json` as the bootstrap admin.
async fn mlops(world: &World, args: &[&str]) -> Value {
    let mut argv = vec![
        "mlops",
        "--registry-url",
        &world.registry.url,
        "--token",
        BOOTSTRAP,
    ];
    argv.extend_from_slice(args);
    argv.push("--json");
    let cli = Cli::try_parse_from(&argv).expect("mlops arguments");
    let mut out = Vec::new();
    run_with_output(cli, &mut out)
        .await
        .unwrap_or_else(|e| panic!("mlops {args:?}: {e:#}"));
    serde_json::from_slice(&out).expect("mlops printed JSON")
}

async fn register_champion(world: &World, name: &str, file: &Path) -> i64 {
    mlops(world, &["models", "create", name]).await;
    let version = mlops(
        world,
        &[
            "versions",
            "register",
            name,
            "--file",
            file.to_str().expect("utf-8 path"),
        ],
    )
    .await;
    let number = version["version"].as_i64().expect("version number");
    mlops(
        world,
        &["alias", "set", name, "champion", &number.to_string()],
    )
    .await;
    number
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scikit_learn_models_serve_tritonclient_over_rest_and_grpc() {
    let world = World::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let dir_arg = dir.path().to_str().expect("utf-8 path");
    mlops_testkit::run_python(
        &std::fs::read_to_string(script("sklearn_models.py")).expect("script"),
        &[dir_arg],
    );
    register_champion(&world, PIPELINE, &dir.path().join("pipeline.onnx")).await;
    register_champion(&world, FOREST, &dir.path().join("forest.onnx")).await;

    let models = format!("{PIPELINE},{FOREST}");
    let gateway = world.gateway(&[("GATEWAY_MODELS", &models)]).await;
    gateway
        .wait_until("both models", "/v2/health/ready", |b| b["ready"] == true)
        .await;

    let address = gateway.http.trim_start_matches("http://").to_string();
    let rows = dir.path().join("rows.json");
    let output = mlops_testkit::run_python_with(
        "TEST_TRITON_PYTHON",
        &[
            &script("triton_http.py"),
            &address,
            &gateway.token,
            PIPELINE,
            FOREST,
            rows.to_str().expect("utf-8 path"),
        ],
    );
    let mut differences: Value = serde_json::from_str(&output).expect("differences");
    let output = mlops_testkit::run_python_with(
        "TEST_TRITON_PYTHON",
        &[
            &script("triton_grpc.py"),
            gateway.grpc.trim_start_matches("http://"),
            &gateway.token,
            PIPELINE,
            FOREST,
            rows.to_str().expect("utf-8 path"),
        ],
    );
    let grpc: Value = serde_json::from_str(&output).expect("gRPC differences");
    differences["pipeline_grpc"] = grpc["pipeline_grpc"].clone();
    differences["forest_grpc"] = grpc["forest_grpc"].clone();
    for check in [
        "pipeline_binary",
        "pipeline_json",
        "forest_binary",
        "pipeline_grpc",
        "forest_grpc",
    ] {
        let d = differences[check].as_f64().expect(check);
        assert!(
            d < 1e-5,
            "{check}: served scores differ from scikit-learn's by {d}"
        );
    }
    gateway.stop().await;
}
