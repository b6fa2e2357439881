//! Search over versions and models: filters, ordering and paging.

use std::collections::HashSet;

use mlops_registry_client::proto as pb;
use tonic::Code;

use crate::helpers::set_alias;
use crate::support::{Db, Options, TestRegistry, upload};

pub(crate) async fn search_filters_orders_pages_and_always_carries_aliases_and_tags(db: Db) {
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
