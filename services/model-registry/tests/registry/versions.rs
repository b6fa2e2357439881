//! Version numbering under concurrent creates.

use mlops_registry_client::proto as pb;

use crate::support::{Db, Options, TestRegistry};

pub(crate) async fn concurrent_creates_get_distinct_consecutive_numbers(db: Db) {
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
