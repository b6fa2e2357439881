//! The registry's objects in MLflow's JSON shapes.

use mlops_proto::registry::v1 as pb;
use serde_json::{Value, json};

/// Epoch milliseconds, MLflow's time unit.
fn millis(ts: Option<&prost_types::Timestamp>) -> i64 {
    ts.map_or(0, |t| {
        t.seconds
            .saturating_mul(1000)
            .saturating_add(i64::from(t.nanos) / 1_000_000)
    })
}

/// Tags sorted by key, as `[{"key", "value"}]`.
fn tags(map: &std::collections::HashMap<String, String>) -> Value {
    let mut pairs: Vec<(&String, &String)> = map.iter().collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(key, value)| json!({"key": key, "value": value}))
        .collect()
}

pub fn registered_model(model: &pb::RegisteredModel, latest: Option<&pb::ModelVersion>) -> Value {
    let mut aliases: Vec<(&String, &i64)> = model.aliases.iter().collect();
    aliases.sort();
    json!({
        "name": model.name,
        "creation_timestamp": millis(model.created_at.as_ref()),
        "last_updated_timestamp": millis(model.updated_at.as_ref()),
        "description": model.description,
        "user_id": model.created_by,
        "tags": tags(&model.tags),
        "aliases": aliases
            .into_iter()
            .map(|(alias, version)| json!({"alias": alias, "version": version.to_string()}))
            .collect::<Vec<_>>(),
        "latest_versions": latest.map(model_version).into_iter().collect::<Vec<_>>(),
    })
}

/// MLflow's registration states for the registry's.
fn status(status: i32) -> &'static str {
    match pb::ModelVersionStatus::try_from(status) {
        Ok(pb::ModelVersionStatus::Ready) => "READY",
        Ok(pb::ModelVersionStatus::Failed) => "FAILED_REGISTRATION",
        _ => "PENDING_REGISTRATION",
    }
}

/// Where MLflow's client finds a version's files: the registry's own
/// `models:/` URI, resolved by the artifacts endpoints.
pub fn source(version: &pb::ModelVersion) -> String {
    format!("models:/{}/{}", version.model_name, version.version)
}

pub fn model_version(version: &pb::ModelVersion) -> Value {
    let mut aliases = version.aliases.clone();
    aliases.sort();
    json!({
        "name": version.model_name,
        "version": version.version.to_string(),
        "creation_timestamp": millis(version.created_at.as_ref()),
        "last_updated_timestamp": millis(version.updated_at.as_ref()),
        "current_stage": "None",
        "description": version.description,
        "user_id": version.created_by,
        "source": source(version),
        "run_id": version.run_id,
        "run_link": "",
        "status": status(version.status),
        "status_message": version.status_message,
        "tags": tags(&version.tags),
        "aliases": aliases,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_strings_times_are_milliseconds_and_tags_are_pairs() {
        let version = pb::ModelVersion {
            model_name: "churn".into(),
            version: 7,
            status: pb::ModelVersionStatus::Ready as i32,
            tags: [("team".to_string(), "retention".to_string())].into(),
            aliases: vec!["champion".into()],
            created_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_456_789,
            }),
            ..Default::default()
        };
        let v = model_version(&version);
        assert_eq!(v["version"], "7");
        assert_eq!(v["status"], "READY");
        assert_eq!(v["creation_timestamp"], 1_700_000_000_123i64);
        assert_eq!(v["tags"], json!([{"key": "team", "value": "retention"}]));
        assert_eq!(v["aliases"], json!(["champion"]));
        assert_eq!(v["current_stage"], "None");
        assert_eq!(v["source"], "models:/churn/7");

        let model = pb::RegisteredModel {
            name: "churn".into(),
            aliases: [("champion".to_string(), 7)].into(),
            ..Default::default()
        };
        let m = registered_model(&model, Some(&version));
        assert_eq!(m["aliases"], json!([{"alias": "champion", "version": "7"}]));
        assert_eq!(m["latest_versions"][0]["version"], "7");
    }
}
