//! The overview at `/`: pipeline health red/amber/green with the reason,
//! then the detail behind each line: served models, the trainer's last
//! run, the lake's tables, ingest per partition, dead letters and
//! quarantine by reason, the online features.

use axum::extract::State;
use axum::response::Response;
use maud::html;
use mlops_registry_client::proto as pb;

use super::PortalState;
use super::health::{Check, Level};
use super::pages::{self, timestamp};
use super::registry::millis;
use super::session::CurrentUser;

fn age(ms: i64) -> String {
    let seconds = (chrono::Utc::now().timestamp_millis() - ms).max(0) / 1000;
    match seconds {
        s if s < 120 => format!("{s} s ago"),
        s if s < 7200 => format!("{} min ago", s / 60),
        s if s < 172_800 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    }
}

fn trainer_check(run: &Result<Option<pb::Run>, String>) -> Check {
    let (level, reason) = match run {
        Err(e) => (Level::Red, format!("the registry did not answer: {e}")),
        Ok(None) => (
            Level::Amber,
            "no training run has registered a version yet".to_owned(),
        ),
        Ok(Some(run)) => {
            let tag = |k: &str| run.tags.get(k).map_or("", String::as_str);
            match pb::RunStatus::try_from(run.status) {
                Ok(pb::RunStatus::Finished) => (
                    Level::Green,
                    format!(
                        "{}: {} ({})",
                        run.name,
                        tag("gate.decision"),
                        tag("gate.reason")
                    ),
                ),
                Ok(pb::RunStatus::Failed) => (Level::Red, format!("{} failed", run.name)),
                _ => (Level::Amber, format!("{} has not finished", run.name)),
            }
        }
    };
    Check {
        area: "Trainer",
        level,
        reason,
    }
}

pub async fn page(user: CurrentUser, State(state): State<PortalState>) -> Response {
    let models = state.api.oip.index(false);
    let features = state.api.features.current();
    let snapshot = state.health.snapshot().await;
    let run = state
        .registry
        .last_run(&state.api.model)
        .await
        .map_err(|e| e.to_string());
    let mut checks = snapshot.checks.clone();
    checks.push(trainer_check(&run));
    let unready: Vec<String> = models
        .iter()
        .filter(|m| m.state != "READY")
        .map(|m| format!("{}: {}", m.name, m.reason))
        .collect();
    checks.push(Check {
        area: "Serving",
        level: if unready.is_empty() {
            Level::Green
        } else {
            Level::Red
        },
        reason: if unready.is_empty() {
            format!("{} model(s) ready", models.len())
        } else {
            unready.join("; ")
        },
    });
    let worst = checks.iter().map(|c| c.level).max().unwrap_or(Level::Green);
    let main = html! {
        section aria-labelledby="health" {
            h2 #health { "Pipeline health: " span #overall class=(worst.class()) { (worst.word()) } }
            div.scroll { table #health-table {
                thead { tr { th scope="col" { "Area" } th scope="col" { "Status" } th scope="col" { "Why" } } }
                tbody {
                    @for c in &checks {
                        tr data-area=(c.area) {
                            th scope="row" { (c.area) }
                            td { span class=(c.level.class()) { (c.level.word()) } }
                            td { (c.reason) }
                        }
                    }
                }
            } }
        }
        section aria-labelledby="served" {
            h2 #served { "Served models" }
            div.scroll { table #served-table {
                thead { tr { th scope="col" { "Model" } th scope="col" { "Version" } th scope="col" { "Aliases" } th scope="col" { "State" } th scope="col" { "Reason" } } }
                tbody {
                    @for m in &models {
                        tr {
                            td { a href={ "/models/" (pages::url_encode(&m.name)) } { (m.name) } }
                            td { (m.version) }
                            td { (m.aliases.join(", ")) }
                            td { span class=(if m.state == "READY" { "status green" } else { "status red" }) { (m.state) } }
                            td { (m.reason) }
                        }
                    }
                }
            } }
        }
        @if let Ok(Some(run)) = &run {
            section aria-labelledby="trainer" {
                h2 #trainer { "Trainer's last run" }
                dl.facts {
                    dt { "Run" } dd { (run.name) " (" code { (run.run_id) } ")" }
                    dt { "Started" } dd { (millis(run.started_at.as_ref()).map(timestamp).unwrap_or_default()) }
                    dt { "Decision" } dd { (run.tags.get("gate.decision").map_or("", String::as_str)) ": " (run.tags.get("gate.reason").map_or("", String::as_str)) }
                    dt { "Best candidate" } dd { (run.tags.get("gate.candidate").map_or("", String::as_str)) }
                }
            }
        }
        section aria-labelledby="tables" {
            h2 #tables { "Lake tables" }
            div.scroll { table #tables-table {
                thead { tr { th scope="col" { "Table" } th scope="col" { "Version" } th scope="col" { "Last commit" } } }
                tbody {
                    @for t in &snapshot.tables {
                        tr data-table=(t.name) {
                            th scope="row" { (t.name) }
                            td.num { @match t.version { Some(v) => { (v) } None => { "not written yet" } } }
                            td { @if let Some(ms) = t.committed_ms { (timestamp(ms)) " (" (age(ms)) ")" } }
                        }
                    }
                }
            } }
        }
        @if let Some(partitions) = &snapshot.partitions {
            section aria-labelledby="ingest" {
                h2 #ingest { "Ingest" }
                @match partitions {
                    Err(e) => { p.error { "Kafka did not answer: " (e) } }
                    Ok(partitions) => {
                        p.hint #throughput {
                            @match snapshot.throughput {
                                Some(rate) => { (format!("{rate:.1}")) " records/s into bronze since the previous check." }
                                None => { "Throughput is measured from the next check on." }
                            }
                        }
                        div.scroll { table #ingest-table {
                            thead { tr { th scope="col" { "Partition" } th scope="col" { "High watermark" } th scope="col" { "Last offset in bronze" } th scope="col" { "Lag" } } }
                            tbody {
                                @for p in partitions {
                                    tr { td.num { (p.partition) } td.num { (p.high_watermark) } td.num { (p.in_bronze.map_or_else(|| "none".to_owned(), |o| o.to_string())) } td.num { (p.lag) } }
                                }
                            }
                        } }
                    }
                }
            }
        }
        @if let Some(letters) = &snapshot.dead_letters {
            section aria-labelledby="dead-letters" {
                h2 #dead-letters { "Dead letters by reason" }
                @match letters {
                    Err(e) => { p.error { (e) } }
                    Ok(letters) => {
                        @if letters.counts.is_empty() { p { "None." } }
                        @else {
                            div.scroll { table #dead-letters-table {
                                thead { tr { th scope="col" { "Reason" } th scope="col" { "Records" } } }
                                tbody { @for (reason, n) in &letters.counts { tr { td { (reason) } td.num { (n) @if letters.partial { "+" } } } } }
                            } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="quarantine" {
            h2 #quarantine { "Quarantine by reason" }
            @match &snapshot.quarantine {
                Err(e) => { p.error { (e) } }
                Ok(rows) if rows.is_empty() => { p { "None." } }
                Ok(rows) => {
                    div.scroll { table #quarantine-table {
                        thead { tr { th scope="col" { "Reason" } th scope="col" { "Records" } } }
                        tbody { @for (reason, n) in rows { tr { td { (reason) } td.num { (n) } } } }
                    } }
                }
            }
        }
        section aria-labelledby="online" {
            h2 #online { "Online features" }
            @match &features {
                Some(table) => {
                    p {
                        "gold/subscriber_features_latest version " strong { (table.version) } ", "
                        (table.rows.len()) " subscribers"
                        @if let Some(ms) = table.committed_ms { ", committed " (timestamp(ms)) }
                        "."
                    }
                }
                None => {
                    p.status.red { "Not loaded yet: the gateway has read no version of gold/subscriber_features_latest." }
                }
            }
        }
    };
    pages::page(&user, "Overview", main)
}
