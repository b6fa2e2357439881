//! A test world in gold and a trainer configuration pointing at it (also
//! used by the gateway's tests, which need only part of it).
#![allow(dead_code)]

use std::sync::Arc;

use mlops_producer::FaultRates;
use mlops_producer::sim::Truth;
use mlops_registry_client::proto as pb;
use mlops_runtime::EnvReader;
use mlops_trainer::TrainerConfig;
use mlops_trainer::metrics::TrainerMetrics;

use crate::lake_support::{self, Store, TestLake};

pub const HORIZON: &str = "7";

/// `subscribers` simulated for `days`, through bronze and the transform
/// into gold; returns the lake and the producer's ground truth.
pub async fn world(seed: u64, subscribers: u32, days: u32) -> (TestLake, Vec<Truth>) {
    let lake = TestLake::new(Store::Local);
    let faults = FaultRates {
        duplicate: 0.01,
        late: 0.01,
        malformed: 0.0,
    };
    let (records, truth) = lake_support::producer_world(seed, subscribers, days, faults);
    lake_support::write_bronze(
        &lake.location,
        &records,
        50_000,
        lake_support::ingested_at(days),
    )
    .await;
    lake_support::run_once(&lake).await;
    (lake, truth)
}

pub fn ort_library() -> String {
    lake_support::required_env("ORT_DYLIB_PATH")
}

/// A trainer config for `lake` and the registry at `url`, small-world
/// settings, then `extra` on top.
pub fn config(
    lake: &TestLake,
    url: &str,
    token: &str,
    extra: &[(&str, &str)],
) -> Arc<TrainerConfig> {
    let root = lake.location.root().to_string();
    let ort = ort_library();
    let mut pairs: Vec<(&str, &str)> = vec![
        ("LAKE_URL", &root),
        ("REGISTRY_URL", url),
        ("TRAINER_REGISTRY_TOKEN", token),
        ("ORT_DYLIB_PATH", &ort),
        ("TRAINER_HORIZON_DAYS", HORIZON),
        ("TRAINER_TEST_DAYS", "7"),
        ("TRAINER_MIN_TRAINING_ROWS", "500"),
        ("TRAINER_MIN_POSITIVES", "5"),
        ("TRAINER_MIN_AUC", "0.5"),
        ("TRAINER_MAX_ECE", "0.25"),
        ("TRAINER_REGISTRY_ATTEMPTS", "2"),
        ("ADMIN_ADDR", "127.0.0.1:0"),
    ];
    pairs.extend_from_slice(extra);
    let mut config = TrainerConfig::from_env(&mut EnvReader::from_pairs(&pairs)).expect("config");
    config.lake = lake.location.clone();
    mlops_onnx::init(&config.onnx_runtime).expect("onnx runtime");
    Arc::new(config)
}

pub async fn train(
    config: &Arc<TrainerConfig>,
) -> mlops_trainer::Result<mlops_trainer::RunSummary> {
    mlops_trainer::train_once(config, &TrainerMetrics::default(), None).await
}

/// Every version of `churn`, oldest first.
pub async fn versions(client: &mlops_registry_client::RegistryClient) -> Vec<pb::ModelVersion> {
    client
        .clone()
        .raw()
        .search_model_versions(pb::SearchModelVersionsRequest {
            filter: "name = 'churn'".into(),
            order_by: "version ASC".into(),
            ..Default::default()
        })
        .await
        .expect("search")
        .into_inner()
        .versions
}
