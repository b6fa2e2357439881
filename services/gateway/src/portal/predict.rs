//! Predictions (every role): score a subscriber by id with the champion,
//! or a what-if: the same subscriber with edited feature values, scored
//! beside the original with the drivers of both. What-ifs are not served
//! predictions: they are neither logged nor counted in drift.

use std::collections::BTreeSet;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use mlops_features::{FEATURES, FeatureKind, FeatureRow, input::Source};
use serde::Deserialize;

use super::PortalState;
use super::pages::{self, url_encode};
use super::risk::{self, drivers, drivers_table, valid_id};
use super::session::CurrentUser;
use crate::api::churn;
use crate::serving::ApiError;

const TITLE: &str = "Predictions";

#[derive(Deserialize)]
pub struct PageQuery {
    subscriber: Option<String>,
}

fn lookup(
    state: &PortalState,
    id: &str,
) -> Result<(std::sync::Arc<crate::online::FeatureTable>, FeatureRow), ApiError> {
    let id = id.trim();
    if !valid_id(id) {
        return Err(ApiError::bad_request(format!(
            "{id:?} is not a subscriber id"
        )));
    }
    let table = state.api.table()?;
    let row = table.get(id).cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown subscriber {id:?}: the online features have no row for it"),
        )
    })?;
    Ok((table, row))
}

/// `GET /predict[?subscriber=id]`: the lookup form, and the subscriber's
/// score with the what-if form prefilled.
pub async fn page(
    user: CurrentUser,
    State(state): State<PortalState>,
    Query(query): Query<PageQuery>,
) -> Response {
    let Some(id) = query.subscriber.filter(|s| !s.trim().is_empty()) else {
        return pages::page(&user, TITLE, lookup_form(""));
    };
    match lookup(&state, &id).and_then(|(table, row)| Ok((scored(&state, &table, &row)?, row))) {
        Ok((outcome, row)) => render(&user, &row, &outcome, None, None),
        Err(error) => {
            let mut response = pages::page(
                &user,
                TITLE,
                html! { (lookup_form(&id)) p.error role="alert" { (error.message) } },
            );
            *response.status_mut() = error.status;
            response
        }
    }
}

/// A row's score and drivers by the champion.
pub struct Scored {
    pub model: String,
    pub version: i64,
    pub score: f32,
    pub drivers: Option<risk::Drivers>,
    /// The model's region and plan vocabularies (its one-hot columns).
    pub regions: BTreeSet<String>,
    pub plans: BTreeSet<String>,
}

fn scored(
    state: &PortalState,
    table: &crate::online::FeatureTable,
    row: &FeatureRow,
) -> Result<Scored, ApiError> {
    let loaded = state.api.champion()?;
    let layout = churn::input_layout(&loaded)?;
    let score = churn::score(&loaded, &[row])?
        .first()
        .copied()
        .unwrap_or(f32::NAN);
    let mut regions = BTreeSet::new();
    let mut plans = BTreeSet::new();
    for source in layout.sources() {
        match source {
            Source::Region(r) => {
                regions.insert(r.clone());
            }
            Source::Plan(p) => {
                plans.insert(p.clone());
            }
            Source::Feature(_) => {}
        }
    }
    Ok(Scored {
        model: loaded.model_name.clone(),
        version: loaded.version,
        score,
        drivers: drivers(&loaded, &layout, table, row, &state.backgrounds),
        regions,
        plans,
    })
}

/// `POST /predict`: the what-if.
pub async fn what_if(
    user: CurrentUser,
    State(state): State<PortalState>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if let Err(denied) = user.check_csrf(field("csrf").unwrap_or_default()) {
        return user.refuse(denied);
    }
    let id = field("subscriber").unwrap_or_default().to_owned();
    let result = (|| {
        let (table, original) = lookup(&state, &id)?;
        let before = scored(&state, &table, &original)?;
        let mut edited = original.clone();
        for (i, def) in FEATURES.iter().enumerate() {
            let Some(raw) = field(def.name) else { continue };
            let raw = raw.trim();
            let value = if raw.is_empty() {
                None
            } else {
                Some(raw.parse::<f64>().map_err(|_| {
                    ApiError::bad_request(format!("{}: {raw:?} is not a number", def.name))
                })?)
            };
            edited
                .features
                .set(i, value)
                .map_err(ApiError::bad_request)?;
        }
        let choice = |name: &str, allowed: &BTreeSet<String>| -> Result<Option<String>, ApiError> {
            match field(name).map(str::trim) {
                None | Some("") => Ok(None),
                Some(v) if allowed.contains(v) => Ok(Some(v.to_owned())),
                Some(v) => Err(ApiError::bad_request(format!(
                    "{name}: {v:?} is not one the model knows ({})",
                    allowed.iter().cloned().collect::<Vec<_>>().join(", ")
                ))),
            }
        };
        edited.region = choice("region", &before.regions)?;
        edited.plan = choice("plan", &before.plans)?;
        let after = scored(&state, &table, &edited)?;
        Ok::<_, ApiError>((original, before, edited, after))
    })();
    match result {
        Ok((original, before, edited, after)) => {
            render(&user, &original, &before, Some(&edited), Some(&after))
        }
        Err(error) => {
            let mut response = pages::page(
                &user,
                TITLE,
                html! { (lookup_form(&id)) p.error role="alert" { (error.message) } },
            );
            *response.status_mut() = error.status;
            response
        }
    }
}

fn lookup_form(id: &str) -> Markup {
    html! {
        form.filters method="get" action="/predict" {
            div {
                label for="subscriber" { "Subscriber id" }
                input #subscriber type="text" name="subscriber" value=(id) required autocomplete="off";
            }
            button type="submit" { "Score" }
        }
    }
}

fn input_value(row: &FeatureRow, index: usize) -> String {
    let v = row.features.as_model_input()[index];
    if v.is_nan() {
        String::new()
    } else {
        format!("{v}")
    }
}

fn render(
    user: &CurrentUser,
    row: &FeatureRow,
    before: &Scored,
    edited: Option<&FeatureRow>,
    after: Option<&Scored>,
) -> Response {
    let shown = edited.unwrap_or(row);
    let main = html! {
        (lookup_form(&row.subscriber_id))
        dl.facts {
            dt { "Subscriber" } dd { a href={ "/churn/subscribers/" (url_encode(&row.subscriber_id)) } { (row.subscriber_id) } }
            dt { "Churn probability" } dd { strong #score { (format!("{:.4}", before.score)) } " by " (before.model) " version " (before.version) }
            @if let Some(after) = after {
                dt { "What-if probability" } dd {
                    strong #what-if-score { (format!("{:.4}", after.score)) }
                    " (" (format!("{:+.4}", after.score - before.score)) ")"
                }
            }
        }
        @if let Some(d) = after.and_then(|a| a.drivers.as_ref()) {
            section aria-labelledby="what-if-drivers" { h2 #what-if-drivers { "Drivers of the what-if" } (drivers_table(d)) }
        } @else if let Some(d) = &before.drivers {
            section aria-labelledby="drivers-now" { h2 #drivers-now { "Drivers" } (drivers_table(d)) }
        }
        section aria-labelledby="edit" {
            h2 #edit { "What if…" }
            form.card.wide #what-if method="post" action="/predict" {
                input type="hidden" name="csrf" value=(user.user.csrf_token);
                input type="hidden" name="subscriber" value=(row.subscriber_id);
                div.grid {
                    @for (i, def) in FEATURES.iter().enumerate() {
                        div {
                            label for={ "f-" (def.name) } { (def.name) }
                            input id={ "f-" (def.name) } name=(def.name) type="number"
                                step=(if def.kind == FeatureKind::Long { "1" } else { "any" })
                                required[!def.nullable] value=(input_value(shown, i)) title=(def.description);
                        }
                    }
                    div {
                        label for="f-region" { "region" }
                        select #f-region name="region" {
                            option value="" { "none of these" }
                            @for r in &before.regions { option value=(r) selected[shown.region.as_ref() == Some(r)] { (r) } }
                        }
                    }
                    div {
                        label for="f-plan" { "plan" }
                        select #f-plan name="plan" {
                            option value="" { "none of these" }
                            @for p in &before.plans { option value=(p) selected[shown.plan.as_ref() == Some(p)] { (p) } }
                        }
                    }
                }
                p.hint { "Empty means unknown (allowed where the feature can be unknown)." }
                button type="submit" { "Score the what-if" }
            }
        }
    };
    pages::page(user, TITLE, main)
}
