//! The audit log and the outbox: only committed changes, once each.

use mlops_registry_client::proto as pb;

use crate::helpers::set_alias;
use crate::support::{Db, Options, TestRegistry, model_with_version, upload};

pub(crate) async fn every_mutation_is_audited_and_announced_once_committed(db: Db) {
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
