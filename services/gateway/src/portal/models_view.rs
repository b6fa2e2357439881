//! Markup of the Models pages.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use mlops_registry_client::proto as pb;

use super::models::may_promote;
use super::pages::{self, timestamp, url_encode};
use super::registry::{ModelDetail, PROMOTABLE, millis};
use super::session::CurrentUser;

/// Metrics shown first, in this order; the calibration table's entries are
/// left to the version's own page.
const HEADLINE: [&str; 7] = [
    "test_roc_auc",
    "test_pr_auc",
    "test_log_loss",
    "test_brier",
    "test_ece",
    "test_top_decile_precision",
    "test_top_decile_lift",
];

fn is_calibration(key: &str) -> bool {
    key.starts_with("test_calibration_")
}

/// Whether a smaller value of `key` is better (losses, errors, time).
fn lower_is_better(key: &str) -> bool {
    ["loss", "brier", "ece", "error", "seconds"]
        .iter()
        .any(|w| key.contains(w))
}

/// The metric keys of `versions`, headline first, without calibration.
fn metric_keys<'a>(versions: impl IntoIterator<Item = &'a pb::ModelVersion>) -> Vec<String> {
    let all: BTreeSet<&str> = versions
        .into_iter()
        .flat_map(|v| v.metrics.keys().map(String::as_str))
        .filter(|k| !is_calibration(k))
        .collect();
    let mut keys: Vec<String> = HEADLINE
        .iter()
        .filter(|k| all.contains(*k))
        .map(|k| (*k).to_owned())
        .collect();
    keys.extend(
        all.iter()
            .filter(|k| !HEADLINE.contains(k))
            .map(|k| (*k).to_owned()),
    );
    keys
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.4}")
    }
}

fn when(t: Option<&prost_types::Timestamp>) -> String {
    millis(t).map_or_else(String::new, timestamp)
}

fn model_href(name: &str) -> String {
    format!("/models/{}", url_encode(name))
}

pub fn failure(user: &CurrentUser, status: StatusCode, text: &str) -> Response {
    let mut response = pages::page(user, "Models", html! { p.error role="alert" { (text) } });
    *response.status_mut() = status;
    response
}

pub fn list(user: &CurrentUser, models: &[pb::RegisteredModel]) -> Response {
    let main = html! {
        @if models.is_empty() {
            p { "No model is registered yet." }
        } @else {
            div.scroll { table #models-table {
                thead { tr { th scope="col" { "Model" } th scope="col" { "Latest version" } th scope="col" { "Aliases" } th scope="col" { "Updated" } th scope="col" { "Description" } } }
                tbody {
                    @for m in models {
                        tr {
                            td { a href=(model_href(&m.name)) { (m.name) } }
                            td { (m.latest_version) }
                            td { (aliases_text(&m.aliases)) }
                            td { (when(m.updated_at.as_ref())) }
                            td { (m.description) }
                        }
                    }
                }
            } }
        }
    };
    pages::page(user, "Models", main)
}

fn aliases_text(aliases: &std::collections::HashMap<String, i64>) -> String {
    let sorted: BTreeMap<_, _> = aliases.iter().collect();
    sorted
        .iter()
        .map(|(a, v)| format!("@{a} → {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn model(user: &CurrentUser, detail: &ModelDetail, can_approve: bool) -> Response {
    let name = &detail.model.name;
    let keys = metric_keys(&detail.versions);
    let promote = may_promote(user.user.role);
    let main = html! {
        p { (detail.model.description) }
        p { "Aliases: " strong #aliases { (aliases_text(&detail.model.aliases)) } }
        @if promote && !can_approve {
            p.status.amber { "Promotion is not configured: the gateway has no GATEWAY_PORTAL_APPROVER_TOKEN." }
        }
        section aria-labelledby="versions" {
            h2 #versions { "Versions" }
            div.scroll { table #versions-table {
                thead { tr {
                    th scope="col" { "Version" } th scope="col" { "Status" } th scope="col" { "Aliases" } th scope="col" { "Created" }
                    @for k in &keys { th scope="col" { (k.trim_start_matches("test_")) } }
                    @if promote { th scope="col" { "Promote" } }
                } }
                tbody {
                    @for v in &detail.versions {
                        tr data-version=(v.version) {
                            td { a href={ (model_href(name)) "/versions/" (v.version) } { (v.version) } }
                            td { (status_name(v.status)) }
                            td { (v.aliases.iter().map(|a| format!("@{a}")).collect::<Vec<_>>().join(" ")) }
                            td { (when(v.created_at.as_ref())) }
                            @for k in &keys { td.num { (v.metrics.get(k).map(|m| number(*m)).unwrap_or_default()) } }
                            @if promote { td { (promote_forms(user, name, v)) } }
                        }
                    }
                }
            } }
        }
        section aria-labelledby="timeline" {
            h2 #timeline { "Alias history" }
            (timeline(&detail.history))
            (rollback(user, detail))
        }
        section aria-labelledby="audit" {
            h2 #audit { "Audit trail" }
            div.scroll { table #audit-table {
                thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Action" } th scope="col" { "Target" } } }
                tbody {
                    @for e in &detail.audit {
                        tr { td { (when(e.at.as_ref())) } td { (e.principal) } td { (e.action) } td { (e.target) } }
                    }
                }
            } }
        }
    };
    pages::page(user, name, main)
}

fn status_name(status: i32) -> &'static str {
    match pb::ModelVersionStatus::try_from(status) {
        Ok(pb::ModelVersionStatus::Ready) => "ready",
        Ok(pb::ModelVersionStatus::Pending) => "pending",
        Ok(pb::ModelVersionStatus::Failed) => "failed",
        _ => "unknown",
    }
}

/// "Make @champion" / "Make @challenger" for a ready version not already so.
fn promote_forms(user: &CurrentUser, name: &str, v: &pb::ModelVersion) -> Markup {
    let ready = v.status == pb::ModelVersionStatus::Ready as i32;
    html! {
        @if ready {
            @for alias in PROMOTABLE {
                @if !v.aliases.iter().any(|a| a == alias) {
                    form.inline method="post" action={ (model_href(name)) "/promote" } {
                        input type="hidden" name="csrf" value=(user.user.csrf_token);
                        input type="hidden" name="alias" value=(alias);
                        input type="hidden" name="version" value=(v.version);
                        button type="submit" aria-label={ "Make version " (v.version) " @" (alias) } { "@" (alias) }
                    }
                }
            }
        }
    }
}

/// The previous @champion, offered back when the user may promote.
fn rollback(user: &CurrentUser, detail: &ModelDetail) -> Markup {
    let current = detail.model.aliases.get("champion").copied();
    let previous = detail
        .history
        .iter()
        .rev()
        .filter(|e| e.alias == "champion" && e.version != 0)
        .map(|e| e.version)
        .find(|v| Some(*v) != current);
    html! {
        @if let (true, Some(previous)) = (may_promote(user.user.role), previous) {
            form.inline method="post" action={ (model_href(&detail.model.name)) "/promote" } {
                input type="hidden" name="csrf" value=(user.user.csrf_token);
                input type="hidden" name="alias" value="champion";
                input type="hidden" name="version" value=(previous);
                button type="submit" { "Roll @champion back to version " (previous) }
            }
        }
    }
}

/// Alias history as a timeline (one lane per alias) and as a table.
fn timeline(history: &[pb::AliasHistoryEntry]) -> Markup {
    const WIDTH: f64 = 900.0;
    const LEFT: f64 = 110.0;
    const LANE: f64 = 34.0;
    let now = chrono::Utc::now().timestamp_millis();
    let start = history
        .iter()
        .filter_map(|e| millis(e.set_at.as_ref()))
        .min()
        .unwrap_or(now);
    let span = (now - start).max(1) as f64;
    let x = |ms: i64| LEFT + (ms - start) as f64 / span * (WIDTH - LEFT - 10.0);
    let lanes: Vec<&str> = {
        let mut seen: Vec<&str> = Vec::new();
        for e in history {
            if !seen.contains(&e.alias.as_str()) {
                seen.push(&e.alias);
            }
        }
        seen
    };
    let height = LANE * lanes.len() as f64 + 10.0;
    html! {
        @if history.is_empty() {
            p { "No alias has been set." }
        } @else {
            svg.timeline role="img" aria-label="Alias history timeline" viewBox={ "0 0 " (WIDTH) " " (height) } width="100%" {
                @for (lane, alias) in lanes.iter().enumerate() {
                    @let y = lane as f64 * LANE + 8.0;
                    text x="4" y=(y + 17.0) class="lane" { "@" (alias) }
                    @let entries: Vec<&pb::AliasHistoryEntry> = history.iter().filter(|e| e.alias == *alias).collect();
                    @for (i, e) in entries.iter().enumerate() {
                        @let from = millis(e.set_at.as_ref()).unwrap_or(start);
                        @let to = entries.get(i + 1).and_then(|n| millis(n.set_at.as_ref())).unwrap_or(now);
                        @if e.version != 0 {
                            rect class="segment" data-alias=(alias) data-version=(e.version) x=(x(from)) y=(y) width=((x(to) - x(from)).max(2.0)) height="24" rx="3" {
                                title { "@" (alias) " → version " (e.version) " from " (timestamp(from)) " by " (e.set_by) }
                            }
                            text x=(x(from) + 4.0) y=(y + 17.0) class="segment-label" { "v" (e.version) }
                        }
                    }
                }
            }
            details {
                summary { "As a table" }
                div.scroll { table #alias-history {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Alias" } th scope="col" { "Version" } th scope="col" { "By" } } }
                    tbody {
                        @for e in history.iter().rev() {
                            tr {
                                td { (when(e.set_at.as_ref())) }
                                td { "@" (e.alias) }
                                td { @if e.version == 0 { "deleted" } @else { (e.version) } }
                                td { (e.set_by) }
                            }
                        }
                    }
                } }
            }
        }
    }
}

/// The confirmation of a move: what the alias points at now, what it will,
/// and each metric's difference.
pub fn confirm(
    user: &CurrentUser,
    name: &str,
    alias: &str,
    current: Option<&pb::ModelVersion>,
    candidate: &pb::ModelVersion,
) -> Response {
    let keys = metric_keys(current.into_iter().chain([candidate]));
    let main = html! {
        p #confirm-text {
            "Move " strong { (name) "@" (alias) } " from "
            @match current { Some(c) => { "version " (c.version) } None => { "nothing" } }
            " to version " strong { (candidate.version) } "? The gateway serves the new version as soon as it has loaded it."
        }
        div.scroll { table #metric-diff {
            thead { tr { th scope="col" { "Metric" } th scope="col" { "Now" } th scope="col" { "Version " (candidate.version) } th scope="col" { "Difference" } } }
            tbody {
                @for k in &keys {
                    @let now = current.and_then(|c| c.metrics.get(k)).copied();
                    @let next = candidate.metrics.get(k).copied();
                    tr {
                        td { (k) }
                        td.num { (now.map(number).unwrap_or_default()) }
                        td.num { (next.map(number).unwrap_or_default()) }
                        td.num {
                            @if let (Some(now), Some(next)) = (now, next) {
                                @let delta = next - now;
                                @let better = if lower_is_better(k) { delta < 0.0 } else { delta > 0.0 };
                                span class=(if delta == 0.0 { "status" } else if better { "status green" } else { "status red" }) {
                                    (format!("{delta:+.4}"))
                                    @if delta != 0.0 { " " (if better { "(better)" } else { "(worse)" }) }
                                }
                            }
                        }
                    }
                }
            }
        } }
        form.inline method="post" action={ (model_href(name)) "/promote" } {
            input type="hidden" name="csrf" value=(user.user.csrf_token);
            input type="hidden" name="alias" value=(alias);
            input type="hidden" name="version" value=(candidate.version);
            input type="hidden" name="confirmed" value="yes";
            button #confirm type="submit" { "Move @" (alias) " to version " (candidate.version) }
            " "
            a href=(model_href(name)) { "Cancel" }
        }
    };
    pages::page(user, "Confirm promotion", main)
}

pub fn version(user: &CurrentUser, v: &pb::ModelVersion, run: Option<&pb::Run>) -> Response {
    let calibration: Vec<(usize, f64, f64, f64)> = (0..)
        .map_while(|i| {
            let get = |what: &str| {
                v.metrics
                    .get(&format!("test_calibration_{i}_{what}"))
                    .copied()
            };
            Some((
                i,
                get("count")?,
                get("mean_predicted")?,
                get("observed_rate")?,
            ))
        })
        .collect();
    let inputs: Vec<&str> = v
        .signature
        .as_ref()
        .and_then(|s| s.inputs.first())
        .map(|t| t.columns.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let main = html! {
        p { a href=(model_href(&v.model_name)) { "← " (v.model_name) } }
        dl.facts {
            dt { "Status" } dd { (status_name(v.status)) " " (v.status_message) }
            dt { "Aliases" } dd { (v.aliases.iter().map(|a| format!("@{a}")).collect::<Vec<_>>().join(" ")) }
            dt { "Format" } dd { (v.format) }
            dt { "Artifact" } dd { (v.artifact_filename) ", " (v.artifact_size_bytes) " bytes, sha256 " code { (v.artifact_sha256) } }
            dt { "Created" } dd { (when(v.created_at.as_ref())) " by " (v.created_by) }
            dt { "Description" } dd { (v.description) }
        }
        section aria-labelledby="lineage" {
            h2 #lineage { "Lineage" }
            (lineage(v, run))
        }
        section aria-labelledby="metrics" {
            h2 #metrics { "Metrics" }
            div.scroll { table #version-metrics {
                tbody {
                    @for k in metric_keys([v]) {
                        tr { th scope="row" { (k) } td.num { (v.metrics.get(&k).map(|m| number(*m)).unwrap_or_default()) } }
                    }
                }
            } }
            @if !calibration.is_empty() {
                h3 { "Calibration on the test period" }
                div.scroll { table #calibration {
                    thead { tr { th scope="col" { "Bin" } th scope="col" { "Rows" } th scope="col" { "Mean predicted" } th scope="col" { "Observed rate" } } }
                    tbody {
                        @for (i, count, predicted, observed) in &calibration {
                            tr { td { (i) } td.num { (number(*count)) } td.num { (number(*predicted)) } td.num { (number(*observed)) } }
                        }
                    }
                } }
            }
        }
        section aria-labelledby="params" {
            h2 #params { "Parameters and tags" }
            div.scroll { table {
                tbody {
                    @for (k, value) in v.params.iter().collect::<BTreeMap<_, _>>() { tr { th scope="row" { (k) } td { (value) } } }
                    @for (k, value) in v.tags.iter().collect::<BTreeMap<_, _>>() { tr { th scope="row" { "tag " (k) } td { (value) } } }
                }
            } }
        }
        @if !inputs.is_empty() {
            section aria-labelledby="inputs" {
                h2 #inputs { "Input columns" }
                p.hint { (inputs.join(", ")) }
            }
        }
    };
    pages::page(
        user,
        &format!("{} version {}", v.model_name, v.version),
        main,
    )
}

/// run → gold version → silver version → bronze version → Kafka offsets.
fn lineage(v: &pb::ModelVersion, run: Option<&pb::Run>) -> Markup {
    let dataset = v
        .dataset
        .as_ref()
        .or_else(|| run.and_then(|r| r.dataset.as_ref()));
    let offsets: BTreeMap<String, i64> = dataset
        .and_then(|d| d.upstream.get("kafka_offsets"))
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default();
    let table = dataset.map(|d| {
        let uri = d.table_uri.trim_end_matches('/');
        uri.rsplit_once("gold/")
            .map_or(uri.to_owned(), |(_, t)| format!("gold/{t}"))
    });
    html! {
        @match dataset {
            None => { p { "This version records no dataset." } }
            Some(d) => {
                ol.chain #lineage-chain {
                    li { "Run " @match run {
                        Some(r) => { strong { (r.name) } " (" code { (r.run_id) } ", started " (when(r.started_at.as_ref())) ")" }
                        None => { code { (v.run_id) } }
                    } }
                    li { (table.unwrap_or_default()) " version " strong { (d.table_version) } }
                    li { "silver/telecom_events version " strong { (d.upstream.get("silver_version").map_or("?", String::as_str)) } }
                    li { "bronze/telecom_events version " strong { (d.upstream.get("bronze_version").map_or("?", String::as_str)) } }
                    li { "Kafka offsets: "
                        @for (i, (partition, offset)) in offsets.iter().enumerate() {
                            @if i > 0 { ", " }
                            (partition) " @ " strong { (offset) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headline_metrics_come_first_and_calibration_is_left_out() {
        let v = pb::ModelVersion {
            metrics: [
                ("fit_seconds", 1.0),
                ("test_log_loss", 0.4),
                ("test_roc_auc", 0.8),
                ("test_calibration_0_count", 3.0),
            ]
            .into_iter()
            .map(|(k, m)| (k.to_owned(), m))
            .collect(),
            ..Default::default()
        };
        assert_eq!(
            metric_keys([&v]),
            ["test_roc_auc", "test_log_loss", "fit_seconds"]
        );
        assert!(lower_is_better("test_log_loss") && !lower_is_better("test_roc_auc"));
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.81234), "0.8123");
    }
}
