//! JSON views of registry messages, for `--json` output and scripts.

use std::collections::{BTreeMap, HashMap};

use mlops_registry_client::proto as pb;
use serde_json::{Value, json};

pub fn time(ts: &Option<prost_types::Timestamp>) -> Value {
    ts.as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)))
        .unwrap_or(Value::Null)
}

fn sorted<V: Clone>(map: &HashMap<String, V>) -> BTreeMap<String, V> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub fn status(status: i32) -> &'static str {
    match pb::ModelVersionStatus::try_from(status) {
        Ok(pb::ModelVersionStatus::Pending) => "PENDING",
        Ok(pb::ModelVersionStatus::Ready) => "READY",
        Ok(pb::ModelVersionStatus::Failed) => "FAILED",
        _ => "UNSPECIFIED",
    }
}

pub fn role(role: i32) -> &'static str {
    match pb::Role::try_from(role) {
        Ok(pb::Role::Reader) => "reader",
        Ok(pb::Role::Writer) => "writer",
        Ok(pb::Role::Approver) => "approver",
        Ok(pb::Role::Admin) => "admin",
        _ => "unspecified",
    }
}

pub fn run_status(status: i32) -> &'static str {
    match pb::RunStatus::try_from(status) {
        Ok(pb::RunStatus::Running) => "RUNNING",
        Ok(pb::RunStatus::Finished) => "FINISHED",
        Ok(pb::RunStatus::Failed) => "FAILED",
        _ => "UNSPECIFIED",
    }
}

pub fn model(m: &pb::RegisteredModel) -> Value {
    json!({
        "name": m.name,
        "description": m.description,
        "tags": sorted(&m.tags),
        "aliases": sorted(&m.aliases),
        "archived": m.archived,
        "latest_version": m.latest_version,
        "created_by": m.created_by,
        "created_at": time(&m.created_at),
        "updated_at": time(&m.updated_at),
    })
}

fn tensors(specs: &[pb::TensorSpec]) -> Value {
    specs
        .iter()
        .map(|t| json!({"name": t.name, "dtype": t.dtype, "shape": t.shape}))
        .collect()
}

pub fn dataset(d: &Option<pb::DatasetLineage>) -> Value {
    d.as_ref()
        .map(|d| json!({"table_uri": d.table_uri, "table_version": d.table_version, "upstream": sorted(&d.upstream)}))
        .unwrap_or(Value::Null)
}

pub fn version(v: &pb::ModelVersion) -> Value {
    let signature = v.signature.clone().unwrap_or_default();
    json!({
        "model_name": v.model_name,
        "version": v.version,
        "status": status(v.status),
        "status_message": v.status_message,
        "format": v.format,
        "signature": {"inputs": tensors(&signature.inputs), "outputs": tensors(&signature.outputs)},
        "metrics": sorted(&v.metrics),
        "params": sorted(&v.params),
        "tags": sorted(&v.tags),
        "aliases": v.aliases,
        "description": v.description,
        "created_by": v.created_by,
        "run_id": v.run_id,
        "dataset": dataset(&v.dataset),
        "artifact": {"filename": v.artifact_filename, "size_bytes": v.artifact_size_bytes, "sha256": v.artifact_sha256},
        "created_at": time(&v.created_at),
        "updated_at": time(&v.updated_at),
    })
}

pub fn alias(a: &pb::Alias) -> Value {
    json!({"model_name": a.model_name, "alias": a.alias, "version": a.version, "set_by": a.set_by, "set_at": time(&a.set_at)})
}

pub fn alias_history(e: &pb::AliasHistoryEntry) -> Value {
    json!({"alias": e.alias, "version": e.version, "set_by": e.set_by, "set_at": time(&e.set_at)})
}

pub fn audit(e: &pb::AuditEvent) -> Value {
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    json!({
        "id": e.id, "at": time(&e.at), "principal": e.principal, "action": e.action,
        "model_name": e.model_name, "target": e.target,
        "before": parse(&e.before_json), "after": parse(&e.after_json),
    })
}

pub fn run(r: &pb::Run) -> Value {
    json!({
        "run_id": r.run_id, "name": r.name, "status": run_status(r.status),
        "params": sorted(&r.params), "metrics": sorted(&r.metrics), "dataset": dataset(&r.dataset),
        "created_by": r.created_by, "started_at": time(&r.started_at), "ended_at": time(&r.ended_at),
    })
}

pub fn token(t: &pb::ApiToken) -> Value {
    json!({
        "token_id": t.token_id, "name": t.name, "role": role(t.role), "created_by": t.created_by,
        "created_at": time(&t.created_at), "revoked_at": time(&t.revoked_at),
    })
}
