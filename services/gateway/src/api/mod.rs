//! The churn scoring API under `/api/v1` (its OpenAPI document is
//! `/api/v1/openapi.json`): scores of subscribers by the churn model's
//! champion, from the online features, and the features themselves.
//! Errors are `{"error": "..."}` naming the field or id at fault.

pub mod churn;
pub mod openapi;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mlops_features::FeatureRow;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Authenticator;
use crate::metrics::Protocol;
use crate::models::LoadedVersion;
use crate::monitor::{self, REQUEST_ID, RequestContext};
use crate::online::{FeatureTable, OnlineFeatures};
use crate::serving::{ApiError, OipState};
use churn::RankingCache;

/// Most ids one score request may name.
pub const MAX_SCORE_IDS: usize = 1000;
/// Most subscribers one at-risk page may list.
pub const MAX_AT_RISK: usize = 1000;
const DEFAULT_AT_RISK: usize = 50;

/// The OpenAPI document, serialized once.
static OPENAPI: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| openapi::document().to_string());

#[derive(Clone)]
pub struct ApiState {
    pub oip: OipState,
    pub features: Arc<OnlineFeatures>,
    /// `GATEWAY_CHURN_MODEL`: the served model that scores subscribers.
    pub model: Arc<str>,
    pub rankings: Arc<RankingCache>,
}

pub fn router(state: ApiState, auth: Option<Arc<Authenticator>>) -> Router {
    let open = Router::new().route("/api/v1/openapi.json", get(openapi));
    let protected = Router::new()
        .route("/api/v1/churn/score", post(score))
        .route("/api/v1/churn/at-risk", get(at_risk))
        .route("/api/v1/subscribers/{id}/features", get(features))
        .with_state(state);
    let protected = crate::auth::protect(protected, auth);
    open.merge(protected)
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI.as_str(),
    )
        .into_response()
}

impl ApiState {
    pub(crate) fn table(&self) -> Result<Arc<FeatureTable>, ApiError> {
        self.features.current().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the online features are not loaded yet: gold/subscriber_features_latest \
                 has no commit the gateway could read",
            )
        })
    }

    pub(crate) fn champion(&self) -> Result<Arc<LoadedVersion>, ApiError> {
        Ok(self.oip.store.resolve(&self.model, None)?)
    }

    /// Records an API call in the request metrics.
    fn observe(&self, version: &str, status: StatusCode, started: Instant) {
        self.oip.metrics.request(
            &self.model,
            version,
            Protocol::Api,
            status.as_str(),
            started.elapsed(),
        );
    }
}

/// A subscriber's row as the API shows it.
fn row_json(row: &FeatureRow) -> Value {
    json!({
        "subscriber_id": row.subscriber_id,
        "as_of_date": row.as_of_date.to_string(),
        "region": row.region,
        "plan": row.plan,
        "churned": row.churned,
        "features": row.features,
    })
}

fn unknown_subscriber(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("unknown subscriber {id:?}: the online features have no row for it"),
    )
}

async fn features(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let answer = (|| {
        let table = state.table()?;
        let row = table.get(&id).ok_or_else(|| unknown_subscriber(&id))?;
        let mut body = row_json(row);
        body["features_version"] = json!(table.version);
        Ok::<_, ApiError>(axum::Json(body))
    })();
    answer.into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreRequest {
    subscriber_ids: Vec<String>,
}

async fn score(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> Response {
    let started = Instant::now();
    let mut served = String::new();
    let answer = (|| {
        let request: ScoreRequest = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the body is not a score request: {e}")))?;
        if request.subscriber_ids.is_empty() {
            return Err(ApiError::bad_request(
                "subscriber_ids: at least one subscriber id is required",
            ));
        }
        if request.subscriber_ids.len() > MAX_SCORE_IDS {
            return Err(ApiError::bad_request(format!(
                "subscriber_ids: {} ids given, at most {MAX_SCORE_IDS} per request",
                request.subscriber_ids.len()
            )));
        }
        let table = state.table()?;
        let rows = request
            .subscriber_ids
            .iter()
            .map(|id| table.get(id).ok_or_else(|| unknown_subscriber(id)))
            .collect::<Result<Vec<_>, _>>()?;
        let loaded = state.champion()?;
        served = loaded.version.to_string();
        let request_id =
            monitor::request_id(None, headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()));
        let ids: Vec<&str> = rows.iter().map(|r| r.subscriber_id.as_str()).collect();
        let mut first = 0;
        let scores = churn::score_observed(&loaded, &rows, |width, inputs, scores| {
            let context = RequestContext {
                request_id: &request_id,
                protocol: Protocol::Api,
                subscribers: &ids[first..first + scores.len()],
                features_version: table.version,
            };
            state
                .oip
                .monitor
                .observe(&loaded, width, inputs, scores, &context);
            first += scores.len();
        })?;
        let scored: Vec<Value> = rows
            .iter()
            .zip(&scores)
            .map(|(row, score)| {
                let mut entry = row_json(row);
                entry["probability"] = json!(score);
                entry
            })
            .collect();
        Ok(axum::Json(json!({
            "model_name": loaded.model_name,
            "model_version": loaded.version.to_string(),
            "features_version": table.version,
            "scores": scored,
        })))
    })();
    let response = answer.into_response();
    state.observe(&served, response.status(), started);
    response
}

/// The at-risk query: `limit`, `region`, `plan`; anything else is refused.
struct AtRiskQuery {
    limit: usize,
    region: Option<String>,
    plan: Option<String>,
}

fn parse_at_risk(query: Option<&str>) -> Result<AtRiskQuery, ApiError> {
    let pairs: Vec<(String, String)> = match query {
        Some(q) => query_pairs(q)?,
        None => Vec::new(),
    };
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for (key, value) in &pairs {
        if !matches!(key.as_str(), "limit" | "region" | "plan") {
            return Err(ApiError::bad_request(format!(
                "{key}: unknown query parameter (limit, region and plan are)"
            )));
        }
        if seen.insert(key, value).is_some() {
            return Err(ApiError::bad_request(format!(
                "{key}: given more than once"
            )));
        }
    }
    let limit = match seen.get("limit") {
        None => DEFAULT_AT_RISK,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_AT_RISK).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit: {raw:?} is not a whole number from 1 to {MAX_AT_RISK}"
                )));
            }
        },
    };
    Ok(AtRiskQuery {
        limit,
        region: seen.get("region").map(|s| s.to_string()),
        plan: seen.get("plan").map(|s| s.to_string()),
    })
}

/// `application/x-www-form-urlencoded` pairs, percent-decoded.
fn query_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_decode(&s.replace('+', " ")).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "the query {pair:?} is not valid percent-encoding"
                    ))
                })
            };
            Ok((decode(key)?, decode(value)?))
        })
        .collect()
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

async fn at_risk(State(state): State<ApiState>, RawQuery(query): RawQuery) -> Response {
    let started = Instant::now();
    let mut served = String::new();
    let answer = (|| {
        let query = parse_at_risk(query.as_deref())?;
        let table = state.table()?;
        let loaded = state.champion()?;
        served = loaded.version.to_string();
        let ranking = state.rankings.get(&loaded, &table)?;
        let matches = |row: &FeatureRow| {
            query
                .region
                .as_ref()
                .is_none_or(|r| row.region.as_ref() == Some(r))
                && query
                    .plan
                    .as_ref()
                    .is_none_or(|p| row.plan.as_ref() == Some(p))
        };
        let mut total = 0usize;
        let mut listed = Vec::new();
        for &(i, score) in &ranking.ranked {
            let row = &table.rows[i];
            if !matches(row) {
                continue;
            }
            total += 1;
            if listed.len() < query.limit {
                listed.push(json!({
                    "subscriber_id": row.subscriber_id,
                    "probability": score,
                    "as_of_date": row.as_of_date.to_string(),
                    "region": row.region,
                    "plan": row.plan,
                }));
            }
        }
        Ok::<_, ApiError>(axum::Json(json!({
            "model_name": loaded.model_name,
            "model_version": loaded.version.to_string(),
            "features_version": table.version,
            "matching": total,
            "subscribers": listed,
        })))
    })();
    let response = answer.into_response();
    state.observe(&served, response.status(), started);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_risk_queries_are_checked_by_name() {
        let q = parse_at_risk(Some("limit=5&region=north%20east&plan=gold+plus")).expect("valid");
        assert_eq!(q.limit, 5);
        assert_eq!(q.region.as_deref(), Some("north east"));
        assert_eq!(q.plan.as_deref(), Some("gold plus"));
        assert_eq!(
            parse_at_risk(None).expect("defaults").limit,
            DEFAULT_AT_RISK
        );
        for (query, want) in [
            (
                "limit=0",
                "limit: \"0\" is not a whole number from 1 to 1000",
            ),
            ("limit=abc", "limit: \"abc\""),
            ("limit=1001", "from 1 to 1000"),
            ("sort=score", "sort: unknown query parameter"),
            ("plan=a&plan=b", "plan: given more than once"),
            ("region=%zz", "not valid percent-encoding"),
        ] {
            let error = parse_at_risk(Some(query)).err().expect(query);
            assert_eq!(error.status, StatusCode::BAD_REQUEST);
            assert!(error.message.contains(want), "{query}: {}", error.message);
        }
    }
}
