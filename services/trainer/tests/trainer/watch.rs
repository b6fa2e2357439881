//! `trainer watch`: trains once gold has data, again when gold advanced
//! `TRAINER_MIN_NEW_DAYS` days, and reports it on /metrics.

use std::time::Duration;

use mlops_producer::FaultRates;
use mlops_registry_client::proto as pb;
use mlops_runtime::Shutdown;
use mlops_trainer::App;

use crate::lake_support::{self, Store, TestLake};
use crate::registry_support::{Db, Options, TestRegistry};
use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_retrains_when_gold_advances() {
    let lake = TestLake::new(Store::Local);
    let faults = FaultRates {
        duplicate: 0.0,
        late: 0.0,
        malformed: 0.0,
    };
    let days = lake_support::producer_days(51, 400, 40, faults);
    let first: Vec<_> = days[..32].concat();
    let rest: Vec<_> = days[32..].concat();
    lake_support::write_bronze(
        &lake.location,
        &first,
        50_000,
        lake_support::ingested_at(32),
    )
    .await;
    lake_support::run_once(&lake).await;

    let registry = TestRegistry::start(Options::new(Db::Sqlite)).await;
    let approver = registry.token("trainer", pb::Role::Approver).await;
    let config = support::config(
        &lake,
        &registry.url,
        &approver,
        &[
            ("TRAINER_MODE", "watch"),
            ("TRAINER_POLL_SECONDS", "1"),
            ("TRAINER_MIN_NEW_DAYS", "5"),
        ],
    );
    let launched = mlops_runtime::service::launch::<App>((*config).clone())
        .await
        .expect("launch");
    let metrics_url = format!("http://{}/metrics", launched.admin_addr());
    let shutdown = Shutdown::new();
    let task = tokio::spawn(launched.run(shutdown.clone()));

    let client = registry.admin_client().await;
    let ready = async |client: &mlops_registry_client::RegistryClient| {
        support::versions(client)
            .await
            .into_iter()
            .filter(|v| v.status == pb::ModelVersionStatus::Ready as i32)
            .count()
    };
    lake_support::eventually(
        Duration::from_secs(120),
        "the first run registers two versions",
        || async { ready(&client).await == 2 },
    )
    .await;
    // The versions turn READY at upload; the run is counted after its gate.
    lake_support::eventually(
        Duration::from_secs(30),
        "the first run to be counted",
        || async {
            lake_support::http_get(&metrics_url)
                .await
                .1
                .contains("trainer_runs_total{outcome=\"ok\"} 1")
        },
    )
    .await;
    let (status, body) = lake_support::http_get(&metrics_url).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("trainer_runs_total{outcome=\"ok\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("trainer_gate_decisions_total{outcome=\"promoted\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("trainer_last_auc{model_type=\"gbdt\"}"),
        "{body}"
    );

    // Eight more days of events: gold advances past TRAINER_MIN_NEW_DAYS.
    lake_support::write_bronze(&lake.location, &rest, 50_000, lake_support::ingested_at(40)).await;
    lake_support::run_once(&lake).await;
    lake_support::eventually(
        Duration::from_secs(120),
        "a second run on the advanced gold",
        || async { ready(&client).await == 4 },
    )
    .await;
    let all = support::versions(&client).await;
    let gold_versions: std::collections::BTreeSet<_> =
        all.iter().map(|v| v.tags["gold_version"].clone()).collect();
    assert_eq!(
        gold_versions.len(),
        2,
        "each run trained on its own gold version: {gold_versions:?}"
    );

    shutdown.trigger();
    task.await.expect("join").expect("watch stops cleanly");
}
