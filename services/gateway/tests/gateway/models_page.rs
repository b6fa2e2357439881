//! The portal's Models pages over the trainer's own registrations: metrics
//! side by side, the lineage chain as the registry records it, roles on the
//! server, and a promotion that moves `@champion` and what is served.

use mlops_registry_client::proto as pb;
use reqwest::StatusCode;
use serde_json::Value;

use crate::portal_client::Browser;
use crate::support::{ADMIN_PASSWORD, MODEL, World};
use crate::trainer_support;

async fn version(world: &World, version: i64) -> pb::ModelVersion {
    world
        .admin
        .clone()
        .raw()
        .get_model_version(pb::GetModelVersionRequest {
            model_name: MODEL.into(),
            version,
        })
        .await
        .expect("get version")
        .into_inner()
}

async fn champion(world: &World) -> i64 {
    let model = world
        .admin
        .clone()
        .raw()
        .get_registered_model(pb::GetRegisteredModelRequest { name: MODEL.into() })
        .await
        .expect("get model")
        .into_inner();
    model.aliases["champion"]
}

fn auc(v: &pb::ModelVersion) -> String {
    format!("{:.4}", v.metrics["test_roc_auc"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_compared_traced_and_promoted_from_the_portal() {
    let (lake, _) = trainer_support::world(13, 80, 45).await;
    let world = World::new().await;
    let trainer_token = world.registry.token("trainer", pb::Role::Approver).await;
    let approver_token = world.registry.token("portal", pb::Role::Approver).await;
    let config = trainer_support::config(&lake, &world.registry.url, &trainer_token, &[]);
    let summary = trainer_support::train(&config).await.expect("training run");
    assert_eq!(summary.alias, "champion");
    let first = summary.best_version;
    let other = *summary
        .versions
        .values()
        .find(|v| **v != first)
        .expect("two candidates");
    let root = lake.location.root().to_string();
    let gateway = world
        .gateway(&[
            ("LAKE_URL", &root),
            ("GATEWAY_PORTAL_APPROVER_TOKEN", &approver_token),
        ])
        .await;
    gateway.wait_for_champion(first).await;

    let mut admin = Browser::new(&gateway);
    let csrf = admin.logged_in("admin", ADMIN_PASSWORD).await;
    for (name, role) in [("vic", "viewer"), ("dana", "data-scientist")] {
        let created = admin
            .create_account(&csrf, name, role, "models-password-1")
            .await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    }

    // A viewer reads everything and can change nothing.
    let mut vic = Browser::new(&gateway);
    let vic_csrf = vic.logged_in("vic", "models-password-1").await;
    let list = vic.get("/models").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.body.contains("href=\"/models/churn\""),
        "{}",
        list.body
    );
    assert!(list.body.contains(&format!("@champion → {first}")));
    let page = vic.get("/models/churn").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let (first_v, other_v) = (version(&world, first).await, version(&world, other).await);
    for v in [&first_v, &other_v] {
        assert!(
            page.body
                .contains(&format!("data-version=\"{}\"", v.version))
        );
        assert!(
            page.body.contains(&auc(v)),
            "AUC {} of version {}",
            auc(v),
            v.version
        );
    }
    assert!(page.body.contains(">roc_auc<"), "metrics are columns");
    assert!(
        !page.body.contains("/promote"),
        "no promotion forms for a viewer"
    );
    assert!(page.body.contains("model.create") && page.body.contains("alias.set"));
    let refused = vic
        .post(
            "/models/churn/promote",
            &[
                ("csrf", &vic_csrf),
                ("alias", "champion"),
                ("version", &other.to_string()),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(champion(&world).await, first);

    // The lineage chain is the one the registry holds.
    let detail = vic.get(&format!("/models/churn/versions/{first}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    let dataset = first_v.dataset.as_ref().expect("dataset lineage");
    let offsets: std::collections::BTreeMap<String, i64> =
        serde_json::from_str(&dataset.upstream["kafka_offsets"]).expect("offsets");
    assert!(!offsets.is_empty());
    for expected in [
        format!(
            "gold/subscriber_features_daily version <strong>{}</strong>",
            dataset.table_version
        ),
        format!(
            "silver/telecom_events version <strong>{}</strong>",
            dataset.upstream["silver_version"]
        ),
        format!(
            "bronze/telecom_events version <strong>{}</strong>",
            dataset.upstream["bronze_version"]
        ),
        format!("<code>{}</code>", first_v.run_id),
    ] {
        assert!(
            detail.body.contains(&expected),
            "{expected} in {}",
            detail.body
        );
    }
    for (partition, offset) in &offsets {
        assert!(
            detail
                .body
                .contains(&format!("{partition} @ <strong>{offset}</strong>"))
        );
    }
    assert!(detail.body.contains("id=\"calibration\""));
    let missing = vic.get("/models/churn/versions/99").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(vic.get("/models/nope").await.status, StatusCode::NOT_FOUND);

    // A data scientist is asked to confirm, seeing the metric difference…
    let mut dana = Browser::new(&gateway);
    let dana_csrf = dana.logged_in("dana", "models-password-1").await;
    let page = dana.get("/models/churn").await;
    assert!(
        page.body
            .contains(&format!("Make version {other} @champion"))
    );
    let other_s = other.to_string();
    let form = [
        ("csrf", dana_csrf.as_str()),
        ("alias", "champion"),
        ("version", &other_s),
    ];
    let confirm = dana.post("/models/churn/promote", &form).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    let delta = other_v.metrics["test_roc_auc"] - first_v.metrics["test_roc_auc"];
    assert!(
        confirm.body.contains(&format!("{delta:+.4}")),
        "{}",
        confirm.body
    );
    assert!(
        confirm
            .body
            .contains(&format!("Move @champion to version {other}"))
    );
    assert_eq!(
        champion(&world).await,
        first,
        "nothing moves before confirmation"
    );

    // …then the alias moves and the gateway serves the new champion.
    let forged = dana
        .post(
            "/models/churn/promote",
            &[
                ("csrf", "forged"),
                ("alias", "champion"),
                ("version", &other_s),
                ("confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let mut confirmed = form.to_vec();
    confirmed.push(("confirmed", "yes"));
    let moved = dana.post("/models/churn/promote", &confirmed).await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER, "{}", moved.body);
    assert_eq!(moved.location, "/models/churn");
    assert_eq!(champion(&world).await, other);
    gateway.wait_for_champion(other).await;
    let other_text = other.to_string();
    gateway
        .wait_until(
            "the at-risk ranking by the new champion",
            "/api/v1/churn/at-risk?limit=1",
            |b| b["model_version"] == other_text.as_str(),
        )
        .await;
    let (status, ready) = gateway.get("/v2/models/churn/ready").await;
    assert_eq!(status, 200);
    assert_eq!(ready["version"], Value::from(other.to_string()));

    // The move is on the record of both, and the page offers the rollback.
    let page = dana.get("/models/churn").await;
    assert!(
        page.body
            .contains(&format!("Roll @champion back to version {first}")),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("data-alias=\"champion\" data-version=\"{other}\""))
    );
    let users = admin.get("/admin/users").await;
    assert!(
        users
            .body
            .contains(&format!("churn@champion {first} -&gt; {other}")),
        "{}",
        users.body
    );
    assert!(
        page.body.contains("<td>portal</td>"),
        "the registry's audit names the portal's token"
    );
    gateway.stop().await;

    // Without the approver token the portal says promotion is not configured.
    let gateway = world.gateway(&[("LAKE_URL", &root)]).await;
    let mut dana = Browser::new(&gateway);
    let mut admin = Browser::new(&gateway);
    let csrf = admin.logged_in("admin", ADMIN_PASSWORD).await;
    let created = admin
        .create_account(&csrf, "dana", "data-scientist", "models-password-1")
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    let dana_csrf = dana.logged_in("dana", "models-password-1").await;
    let first_s = first.to_string();
    let refused = dana
        .post(
            "/models/churn/promote",
            &[
                ("csrf", &dana_csrf),
                ("alias", "champion"),
                ("version", &first_s),
                ("confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        refused.body.contains("GATEWAY_PORTAL_APPROVER_TOKEN"),
        "{}",
        refused.body
    );
    assert_eq!(champion(&world).await, other);
    gateway.stop().await;
}
