//! `mlops audit`: the audit log, newest first.

use mlops_registry_client::RegistryClient;
use mlops_registry_client::proto as pb;
use serde_json::Value;

use crate::json;
use crate::output::{Output, table, text};

pub(crate) async fn run(
    client: &mut RegistryClient,
    out: &Output<'_>,
    model: Option<String>,
    limit: i32,
) -> anyhow::Result<()> {
    let resp = client
        .raw()
        .list_audit_events(pb::ListAuditEventsRequest {
            model_name: model.unwrap_or_default(),
            page_size: limit,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    let value: Value = resp.events.iter().map(json::audit).collect();
    out.print(&value, || {
        let mut t = table(&[
            "id",
            "at",
            "principal",
            "action",
            "target",
            "before",
            "after",
        ]);
        for e in &resp.events {
            t.add_row(vec![
                e.id.to_string(),
                text(&json::time(&e.at)),
                e.principal.clone(),
                e.action.clone(),
                e.target.clone(),
                e.before_json.clone(),
                e.after_json.clone(),
            ]);
        }
        t
    })
}
