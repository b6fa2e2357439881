//! Churn risk (every role): the serving API's at-risk ranking by the
//! champion, filtered by region and plan, and one subscriber's drill-down:
//! the score, its main drivers and the last 30 days of features.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use mlops_features::{FEATURES, FeatureRow, InputLayout, input::Source};
use mlops_onnx::explain::Background;

use super::PortalState;
use super::pages::{self, url_encode};
use super::session::CurrentUser;
use super::sql::Scope;
use crate::api::churn;
use crate::models::LoadedVersion;
use crate::online::FeatureTable;
use crate::serving::ApiError;

const DEFAULT_ROWS: usize = 50;
const MAX_ROWS: usize = 1000;
/// Rows of today's population the tree explanation averages over.
const BACKGROUND_ROWS: usize = 1000;
/// Drivers listed on a page.
pub const DRIVERS: usize = 8;

pub fn failure(user: &CurrentUser, title: &str, error: &ApiError) -> Response {
    let mut response = pages::page(
        user,
        title,
        html! { p.error role="alert" { (error.message) } },
    );
    *response.status_mut() = error.status;
    response
}

/// One driver of a score: a feature (one-hot columns grouped as `region`
/// and `plan`), its value and its contribution to the log-odds.
#[derive(Clone, Debug, PartialEq)]
pub struct Driver {
    pub name: String,
    pub value: String,
    pub contribution: f64,
}

/// A score and why: the drivers largest first, the method, and the
/// probability the decomposition adds up to (a check on the served score).
#[derive(Clone, Debug)]
pub struct Drivers {
    pub method: &'static str,
    pub drivers: Vec<Driver>,
    pub probability: f64,
}

fn shown(value: f32) -> String {
    if value.is_nan() {
        "unknown".to_owned()
    } else if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

fn encode(layout: &InputLayout, row: &FeatureRow) -> Vec<f32> {
    let mut out = Vec::with_capacity(layout.width());
    layout.encode(row, &mut out);
    out
}

/// The tree explanations' background (expected values over today's
/// subscribers), kept until the model or the online features change: it
/// walks every tree for a thousand rows, too much to redo per page.
#[derive(Default)]
pub struct BackgroundCache(Mutex<Option<(BackgroundKey, Arc<Background>)>>);

type BackgroundKey = (i64, String, u64);

impl BackgroundCache {
    fn get(
        &self,
        loaded: &LoadedVersion,
        layout: &InputLayout,
        table: &FeatureTable,
    ) -> Arc<Background> {
        let key = (loaded.version, loaded.sha256.clone(), table.version);
        if let Some((kept, background)) = self.0.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
            && *kept == key
        {
            return background.clone();
        }
        let Some(explainer) = loaded.explainer.as_ref() else {
            return Arc::default();
        };
        let step = (table.rows.len() / BACKGROUND_ROWS).max(1);
        let rows: Vec<Vec<f32>> = table
            .rows
            .iter()
            .step_by(step)
            .map(|r| encode(layout, r))
            .collect();
        let background = Arc::new(explainer.background(&rows));
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((key, background.clone()));
        background
    }
}

/// The drivers of `row`'s score by `loaded`, or `None` when the model's
/// graph is not one the explainer reads.
pub fn drivers(
    loaded: &LoadedVersion,
    layout: &InputLayout,
    table: &FeatureTable,
    row: &FeatureRow,
    backgrounds: &BackgroundCache,
) -> Option<Drivers> {
    let explainer = loaded.explainer.as_ref()?;
    let background = backgrounds.get(loaded, layout, table);
    let input = encode(layout, row);
    let explanation = explainer.explain(&input, &background);
    let mut grouped: Vec<Driver> = Vec::new();
    for ((source, contribution), value) in layout
        .sources()
        .iter()
        .zip(&explanation.contributions)
        .zip(&input)
    {
        let (name, value) = match source {
            Source::Feature(i) => (FEATURES[*i].name.to_owned(), shown(*value)),
            Source::Region(_) => (
                "region".to_owned(),
                row.region.clone().unwrap_or_else(|| "unknown".into()),
            ),
            Source::Plan(_) => (
                "plan".to_owned(),
                row.plan.clone().unwrap_or_else(|| "unknown".into()),
            ),
        };
        match grouped.iter_mut().find(|d| d.name == name) {
            Some(d) => d.contribution += contribution,
            None => grouped.push(Driver {
                name,
                value,
                contribution: *contribution,
            }),
        }
    }
    grouped.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
    Some(Drivers {
        method: explainer.method(),
        drivers: grouped,
        probability: explanation.probability(),
    })
}

/// The drivers as a table with bars: red raises the risk, green lowers it.
pub fn drivers_table(drivers: &Drivers) -> Markup {
    let largest = drivers
        .drivers
        .first()
        .map_or(1.0, |d| d.contribution.abs())
        .max(1e-9);
    html! {
        p.hint { "Contributions to the score's log-odds (" (drivers.method) "); they add up to a probability of "
            span #driver-total { (format!("{:.4}", drivers.probability)) } "." }
        div.scroll { table #drivers {
            thead { tr { th scope="col" { "Feature" } th scope="col" { "Value" } th scope="col" { "Contribution" } th scope="col" { span.visually-hidden { "Size" } } } }
            tbody {
                @for d in drivers.drivers.iter().take(DRIVERS) {
                    tr data-feature=(d.name) {
                        th scope="row" { (d.name) }
                        td { (d.value) }
                        td.num { (format!("{:+.4}", d.contribution)) }
                        td.bar {
                            span class=(if d.contribution > 0.0 { "bar up" } else { "bar down" })
                                style=(format!("width: {:.0}%", d.contribution.abs() / largest * 100.0)) {}
                        }
                    }
                }
            }
        } }
    }
}

#[derive(Debug)]
struct RankingQuery {
    region: Option<String>,
    plan: Option<String>,
    limit: usize,
}

fn parse(query: Option<&str>) -> Result<RankingQuery, String> {
    let mut parsed = RankingQuery {
        region: None,
        plan: None,
        limit: DEFAULT_ROWS,
    };
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let value = value.trim().to_owned();
        match key.as_ref() {
            "region" => parsed.region = Some(value).filter(|v| !v.is_empty()),
            "plan" => parsed.plan = Some(value).filter(|v| !v.is_empty()),
            "limit" => {
                parsed.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_ROWS).contains(n))
                    .ok_or_else(|| {
                        format!("limit={value:?} is not a whole number from 1 to {MAX_ROWS}")
                    })?;
            }
            other => {
                return Err(format!(
                    "unknown parameter {other:?}: expected region, plan or limit"
                ));
            }
        }
    }
    Ok(parsed)
}

/// `GET /churn`: the at-risk ranking.
pub async fn ranking(
    user: CurrentUser,
    State(state): State<PortalState>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = match parse(query.as_deref()) {
        Ok(query) => query,
        Err(message) => return failure(&user, "Churn risk", &ApiError::bad_request(message)),
    };
    let ranked = (|| {
        let table = state.api.table()?;
        let loaded = state.api.champion()?;
        let ranking = state.api.rankings.get(&loaded, &table)?;
        Ok::<_, ApiError>((table, loaded, ranking))
    })();
    let (table, loaded, ranking) = match ranked {
        Ok(ranked) => ranked,
        Err(error) => return failure(&user, "Churn risk", &error),
    };
    let values = |pick: fn(&FeatureRow) -> Option<&String>| -> BTreeSet<String> {
        table.rows.iter().filter_map(|r| pick(r).cloned()).collect()
    };
    let (regions, plans) = (values(|r| r.region.as_ref()), values(|r| r.plan.as_ref()));
    let matching: Vec<(usize, &FeatureRow, f32)> = ranking
        .ranked
        .iter()
        .map(|&(i, score)| (&table.rows[i], score))
        .filter(|(r, _)| {
            query
                .region
                .as_ref()
                .is_none_or(|q| r.region.as_ref() == Some(q))
        })
        .filter(|(r, _)| {
            query
                .plan
                .as_ref()
                .is_none_or(|q| r.plan.as_ref() == Some(q))
        })
        .enumerate()
        .map(|(rank, (r, s))| (rank + 1, r, s))
        .collect();
    let select = |id: &str, label: &str, options: &BTreeSet<String>, chosen: &Option<String>| {
        html! {
            div {
                label for=(id) { (label) }
                select id=(id) name=(id) {
                    option value="" { "All" }
                    @for o in options { option value=(o) selected[chosen.as_ref() == Some(o)] { (o) } }
                }
            }
        }
    };
    let main = html! {
        form.filters method="get" action="/churn" {
            (select("region", "Region", &regions, &query.region))
            (select("plan", "Plan", &plans, &query.plan))
            div {
                label for="limit" { "Rows" }
                input #limit type="number" name="limit" min="1" max=(MAX_ROWS) value=(query.limit);
            }
            button type="submit" { "Apply" }
        }
        p.hint #ranking-summary {
            (matching.len()) " current subscribers match, ranked by " (loaded.model_name) " version "
            strong #ranking-version { (loaded.version) } " on online features version " (table.version) "."
        }
        div.scroll { table #ranking {
            thead { tr { th scope="col" { "Rank" } th scope="col" { "Subscriber" } th scope="col" { "Churn probability" } th scope="col" { "Region" } th scope="col" { "Plan" } th scope="col" { "As of" } } }
            tbody {
                @for (rank, row, score) in matching.iter().take(query.limit) {
                    tr {
                        td.num { (rank) }
                        td { a href={ "/churn/subscribers/" (url_encode(&row.subscriber_id)) } { (row.subscriber_id) } }
                        td.num { (format!("{score:.4}")) }
                        td { (row.region.as_deref().unwrap_or("unknown")) }
                        td { (row.plan.as_deref().unwrap_or("unknown")) }
                        td { (row.as_of_date) }
                    }
                }
            }
        } }
    };
    pages::page(&user, "Churn risk", main)
}

/// A subscriber id as the lake writes them: letters, digits, `-`, `_`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `GET /churn/subscribers/{id}`: the drill-down.
pub async fn subscriber(
    user: CurrentUser,
    State(state): State<PortalState>,
    Path(id): Path<String>,
) -> Response {
    let title = format!("Subscriber {id}");
    let found = (|| {
        if !valid_id(&id) {
            return Err(ApiError::bad_request(format!(
                "{id:?} is not a subscriber id"
            )));
        }
        let table = state.api.table()?;
        let loaded = state.api.champion()?;
        let row = table.get(&id).cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("unknown subscriber {id:?}: the online features have no row for it"),
            )
        })?;
        let score = churn::score(&loaded, &[&row])?
            .first()
            .copied()
            .unwrap_or(f32::NAN);
        let layout = churn::input_layout(&loaded)?;
        let drivers = drivers(&loaded, &layout, &table, &row, &state.backgrounds);
        Ok((table, loaded, row, score, drivers))
    })();
    let (table, loaded, row, score, drivers) = match found {
        Ok(found) => found,
        Err(error) => return failure(&user, &title, &error),
    };
    let columns: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
    // The date bound prunes the table to the 30 partitions needed.
    let since = row.as_of_date - chrono::Duration::days(30);
    let sql = format!(
        "SELECT as_of_date, {} FROM gold.subscriber_features_daily WHERE subscriber_id = '{id}' \
         AND as_of_date > DATE '{since}' ORDER BY as_of_date DESC LIMIT 30",
        columns.join(", ")
    );
    let history = state.sql.run(&sql, Scope::Gold).await;
    let main = html! {
        dl.facts {
            dt { "Churn probability" } dd { strong #score { (format!("{score:.4}")) } " by " (loaded.model_name) " version " (loaded.version) }
            dt { "Region, plan" } dd { (row.region.as_deref().unwrap_or("unknown")) ", " (row.plan.as_deref().unwrap_or("unknown")) }
            dt { "Features as of" } dd { (row.as_of_date) " (online features version " (table.version) ")" }
            dt { "Score history" } dd { "Every served score is logged to Kafka (predictions.v1); the portal does not keep it." }
        }
        p { a href={ "/predict?subscriber=" (url_encode(&row.subscriber_id)) } { "What if…? Edit this subscriber's features and score again" } }
        section aria-labelledby="why" {
            h2 #why { "Main drivers" }
            @match &drivers {
                Some(d) => { (drivers_table(d)) }
                None => { p { "Version " (loaded.version) "'s graph is not one the portal can explain (only the trainer's linear and tree models are)." } }
            }
        }
        section aria-labelledby="last-30" {
            h2 #last-30 { "The last 30 days" }
            @match &history {
                Ok(result) => {
                    div.scroll { table #history {
                        thead { tr { @for c in &result.columns { th scope="col" { (c) } } } }
                        tbody { @for r in &result.rows { tr { @for v in r { td { (v.as_deref().unwrap_or("unknown")) } } } } }
                    } }
                }
                Err(error) => { p.error role="alert" { "gold/subscriber_features_daily could not be read: " (error) } }
            }
        }
    };
    pages::page(&user, &title, main)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_queries_and_ids_are_checked() {
        let q = parse(Some("region=north&plan=&limit=5")).expect("query");
        assert_eq!(
            (q.region.as_deref(), q.plan, q.limit),
            (Some("north"), None, 5)
        );
        assert!(
            parse(Some("limit=0"))
                .expect_err("refused")
                .contains("from 1 to 1000")
        );
        assert!(
            parse(Some("sort=x"))
                .expect_err("refused")
                .contains("unknown parameter")
        );
        assert!(valid_id("sub-000123") && !valid_id("x' OR '1'='1") && !valid_id(""));
    }
}
