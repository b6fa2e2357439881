//! The champion gate with real models: a weak first model is promoted, a
//! better one replaces it, a worse one becomes @challenger, and a writer
//! token registers without promoting.

use mlops_registry_client::proto as pb;

use crate::registry_support::{Db, Options, TestRegistry};
use crate::support;

/// One tree of two leaves: a real model, but a poor one.
const WEAK: &[(&str, &str)] = &[
    ("TRAINER_CANDIDATES", "gbdt"),
    ("TRAINER_GBDT_MAX_ITERATIONS", "1"),
    ("TRAINER_GBDT_MAX_LEAVES", "2"),
];

async fn champion(registry: &TestRegistry) -> i64 {
    registry
        .admin_client()
        .await
        .raw()
        .get_model_version_by_alias(pb::GetModelVersionByAliasRequest {
            model_name: "churn".into(),
            alias: "champion".into(),
            at_time: None,
        })
        .await
        .expect("champion")
        .into_inner()
        .version
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn better_candidates_are_promoted_and_worse_ones_are_not() {
    let (lake, _) = support::world(41, 500, 50).await;
    let registry = TestRegistry::start(Options::new(Db::Sqlite)).await;
    let approver = registry.token("trainer", pb::Role::Approver).await;
    let writer = registry.token("ci", pb::Role::Writer).await;

    let weak = support::train(&support::config(&lake, &registry.url, &approver, WEAK))
        .await
        .expect("weak run");
    assert_eq!(
        weak.alias, "champion",
        "first model: {}",
        weak.decision.reason
    );
    assert_eq!(champion(&registry).await, weak.best_version);

    let strong = support::train(&support::config(&lake, &registry.url, &writer, &[]))
        .await
        .expect("writer run");
    assert_eq!(strong.alias, "challenger");
    assert!(
        strong
            .decision
            .reason
            .starts_with("not promoted: needs approver"),
        "{}",
        strong.decision.reason
    );
    assert_eq!(
        champion(&registry).await,
        weak.best_version,
        "a writer cannot move @champion"
    );

    let better = support::train(&support::config(
        &lake,
        &registry.url,
        &approver,
        &[("TRAINER_SEED", "7")],
    ))
    .await
    .expect("better run");
    assert_eq!(better.alias, "champion", "{}", better.decision.reason);
    assert!(
        better
            .decision
            .reason
            .contains(&format!("beats champion v{}", weak.best_version)),
        "{}",
        better.decision.reason
    );
    let champion_auc = better
        .champion_auc
        .expect("the champion was scored on the same test period");
    assert!(better.test_auc[&better.best] >= champion_auc + 0.002);
    assert_eq!(champion(&registry).await, better.best_version);

    let worse = support::train(&support::config(
        &lake,
        &registry.url,
        &approver,
        &[WEAK, &[("TRAINER_SEED", "8")]].concat(),
    ))
    .await
    .expect("worse run");
    assert_eq!(worse.alias, "challenger");
    assert!(
        worse
            .decision
            .reason
            .contains(&format!("vs champion v{}", better.best_version)),
        "{}",
        worse.decision.reason
    );
    assert_eq!(
        champion(&registry).await,
        better.best_version,
        "the champion stays"
    );
}
