//! The OpenAPI 3.0 document of `/api/v1`, built from the code it describes:
//! the feature schema comes from `libs/features`' [`FEATURES`], so the two
//! cannot drift apart.

use mlops_features::{FEATURES, FeatureKind};
use serde_json::{Map, Value, json};

use super::{MAX_AT_RISK, MAX_SCORE_IDS};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    })
}

fn ok(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}},
    })
}

fn features_schema() -> Value {
    let mut properties = Map::new();
    for f in FEATURES {
        let ty = match f.kind {
            FeatureKind::Long => "integer",
            FeatureKind::Double => "number",
        };
        properties.insert(
            f.name.to_string(),
            json!({"type": ty, "nullable": f.nullable, "description": f.description}),
        );
    }
    json!({
        "type": "object",
        "description": "The subscriber's features as of as_of_date, as gold holds them (libs/features).",
        "properties": properties,
        "required": FEATURES.iter().map(|f| f.name).collect::<Vec<_>>(),
        "additionalProperties": false,
    })
}

/// The document served at `/api/v1/openapi.json`.
pub fn document() -> Value {
    let nullable_string = json!({"type": "string", "nullable": true});
    let row_properties = json!({
        "subscriber_id": {"type": "string"},
        "as_of_date": {"type": "string", "format": "date"},
        "region": nullable_string,
        "plan": nullable_string,
        "churned": {"type": "boolean", "description": "the subscriber churned on as_of_date"},
        "features": {"$ref": "#/components/schemas/Features"},
    });
    let row_required = json!([
        "subscriber_id",
        "as_of_date",
        "region",
        "plan",
        "churned",
        "features"
    ]);
    let mut scored = row_properties.clone();
    scored["probability"] = json!({"type": "number", "minimum": 0, "maximum": 1});
    let mut scored_required = row_required.clone();
    scored_required
        .as_array_mut()
        .expect("array")
        .push(json!("probability"));
    let mut subscriber = row_properties.clone();
    subscriber["features_version"] = json!({"type": "integer", "minimum": 0});
    let mut subscriber_required = row_required.clone();
    subscriber_required
        .as_array_mut()
        .expect("array")
        .push(json!("features_version"));
    let common = [
        ("401", error_response("no valid bearer token")),
        (
            "503",
            error_response("the online features or the champion are not loaded yet"),
        ),
    ];
    let with_common = |mut responses: Map<String, Value>| {
        for (code, response) in &common {
            responses.insert(code.to_string(), response.clone());
        }
        Value::Object(responses)
    };
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "mlops gateway: churn scoring API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Churn probabilities of subscribers by the registry's @champion of the churn model, \
                            from the online features (gold/subscriber_features_latest). Every call needs a \
                            registry token as a bearer token.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/churn/score": {"post": {
                "operationId": "scoreSubscribers",
                "summary": "Churn probability of each subscriber named, with the features used",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScoreRequest"}}}},
                "responses": with_common(Map::from_iter([
                    ("200".to_string(), ok("one score per id, in the order given", "ScoreResponse")),
                    ("400".to_string(), error_response("a malformed body, naming the field")),
                    ("404".to_string(), error_response("an unknown subscriber, naming the id")),
                ])),
            }},
            "/api/v1/churn/at-risk": {"get": {
                "operationId": "atRisk",
                "summary": "Current subscribers ranked by churn probability, highest first",
                "parameters": [
                    {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": MAX_AT_RISK, "default": 50}},
                    {"name": "region", "in": "query", "required": false, "schema": {"type": "string"}},
                    {"name": "plan", "in": "query", "required": false, "schema": {"type": "string"}},
                ],
                "responses": with_common(Map::from_iter([
                    ("200".to_string(), ok("the highest-scored subscribers matching the filters", "AtRiskResponse")),
                    ("400".to_string(), error_response("an invalid or unknown query parameter, naming it")),
                ])),
            }},
            "/api/v1/subscribers/{id}/features": {"get": {
                "operationId": "subscriberFeatures",
                "summary": "A subscriber's online features",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": with_common(Map::from_iter([
                    ("200".to_string(), ok("the subscriber's row of the online features", "Subscriber")),
                    ("404".to_string(), error_response("an unknown subscriber, naming the id")),
                ])),
            }},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "a registry token (any role)"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
                "Features": features_schema(),
                "ScoreRequest": {
                    "type": "object",
                    "properties": {"subscriber_ids": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_SCORE_IDS}},
                    "required": ["subscriber_ids"],
                    "additionalProperties": false,
                },
                "Scored": {"type": "object", "properties": scored, "required": scored_required},
                "ScoreResponse": {
                    "type": "object",
                    "properties": {
                        "model_name": {"type": "string"},
                        "model_version": {"type": "string"},
                        "features_version": {"type": "integer", "minimum": 0},
                        "scores": {"type": "array", "items": {"$ref": "#/components/schemas/Scored"}},
                    },
                    "required": ["model_name", "model_version", "features_version", "scores"],
                },
                "Subscriber": {"type": "object", "properties": subscriber, "required": subscriber_required},
                "AtRiskEntry": {
                    "type": "object",
                    "properties": {
                        "subscriber_id": {"type": "string"},
                        "probability": {"type": "number", "minimum": 0, "maximum": 1},
                        "as_of_date": {"type": "string", "format": "date"},
                        "region": nullable_string,
                        "plan": nullable_string,
                    },
                    "required": ["subscriber_id", "probability", "as_of_date", "region", "plan"],
                },
                "AtRiskResponse": {
                    "type": "object",
                    "properties": {
                        "model_name": {"type": "string"},
                        "model_version": {"type": "string"},
                        "features_version": {"type": "integer", "minimum": 0},
                        "matching": {"type": "integer", "minimum": 0, "description": "current subscribers matching the filters"},
                        "subscribers": {"type": "array", "items": {"$ref": "#/components/schemas/AtRiskEntry"}},
                    },
                    "required": ["model_name", "model_version", "features_version", "matching", "subscribers"],
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_feature_is_in_the_schema() {
        let doc = document();
        let properties = &doc["components"]["schemas"]["Features"]["properties"];
        assert_eq!(properties.as_object().map(Map::len), Some(FEATURES.len()));
        assert_eq!(properties["tenure_days"]["nullable"], true);
        assert_eq!(properties["data_trend"]["type"], "number");
        assert_eq!(
            doc["paths"]["/api/v1/churn/score"]["post"]["responses"]["404"]["description"],
            "an unknown subscriber, naming the id"
        );
    }
}
