//! The KPI dashboard at `/kpis` (every role): `gold/kpi_daily` per region
//! over a date range, as charts drawn in the browser by the bundled uPlot
//! and as tables that need no JavaScript.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDate;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::PortalState;
use super::kpi::{KpiRow, KpiTable, RegionTotals, totals};
use super::pages;
use super::session::CurrentUser;

/// The default range: this many days up to the newest one.
const DEFAULT_DAYS: i64 = 30;

const SCRIPTS: [&str; 2] = ["/static/vendor/uplot.js", "/static/portal.js"];

/// The filter as the request gave it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub regions: Vec<String>,
}

/// Parses `from`, `to` and repeated `region` parameters.
pub fn parse_filter(query: Option<&str>) -> Result<Filter, String> {
    let mut filter = Filter::default();
    let date = |name: &str, value: &str| {
        NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map_err(|_| format!("{name}={value:?} is not a date (YYYY-MM-DD)"))
    };
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "from" if !value.is_empty() => filter.from = Some(date("from", &value)?),
            "to" if !value.is_empty() => filter.to = Some(date("to", &value)?),
            "region" if !value.is_empty() => filter.regions.push(value.into_owned()),
            "from" | "to" | "region" => {}
            other => {
                return Err(format!(
                    "unknown parameter {other:?}: expected from, to or region"
                ));
            }
        }
    }
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from > to
    {
        return Err(format!("from ({from}) is after to ({to})"));
    }
    Ok(filter)
}

pub async fn page(
    user: CurrentUser,
    State(state): State<PortalState>,
    RawQuery(query): RawQuery,
) -> Response {
    let filter = match parse_filter(query.as_deref()) {
        Ok(filter) => filter,
        Err(error) => return failure(&user, StatusCode::BAD_REQUEST, &error),
    };
    let table = match state.kpis.current().await {
        Ok(Some(table)) => table,
        Ok(None) => {
            return failure(
                &user,
                StatusCode::OK,
                "gold/kpi_daily has no data yet: the transform has not written it.",
            );
        }
        Err(error) => {
            tracing::warn!(%error, "reading gold/kpi_daily failed");
            return failure(
                &user,
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("gold/kpi_daily could not be read: {error}"),
            );
        }
    };
    let known = table.regions();
    if let Some(unknown) = filter.regions.iter().find(|r| !known.contains(r.as_str())) {
        let known: Vec<&str> = known.into_iter().collect();
        return failure(
            &user,
            StatusCode::BAD_REQUEST,
            &format!(
                "unknown region {unknown:?}; gold/kpi_daily has {}",
                known.join(", ")
            ),
        );
    }
    let (Some(first), Some(last)) = (table.first_day(), table.last_day()) else {
        return failure(&user, StatusCode::OK, "gold/kpi_daily is empty.");
    };
    let to = filter.to.unwrap_or(last);
    let from = filter
        .from
        .unwrap_or_else(|| (to - chrono::Duration::days(DEFAULT_DAYS - 1)).max(first));
    let rows = table.select(from, to, &filter.regions);
    render(&user, &table, &filter, from, to, &rows)
}

fn failure(user: &CurrentUser, status: StatusCode, text: &str) -> Response {
    let class = if status.is_success() {
        "status amber"
    } else {
        "error"
    };
    let mut response = pages::page(
        user,
        "KPIs",
        html! { p class=(class) role="alert" { (text) } },
    );
    *response.status_mut() = status;
    response
}

/// A chart's description for `portal.js`: x values (days, as Unix
/// seconds) and one series per label.
fn chart(title: &str, kind: &str, x: &[i64], series: Vec<(String, Vec<Option<f64>>)>) -> Value {
    json!({
        "title": title,
        "kind": kind,
        "x": x,
        "series": series.into_iter().map(|(label, values)| json!({"label": label, "values": values})).collect::<Vec<_>>(),
    })
}

/// The charts of a selection, per region (lines) and in total (bars).
pub fn charts(rows: &[&KpiRow]) -> Vec<(&'static str, Value)> {
    let days: Vec<NaiveDate> = {
        let mut days: Vec<NaiveDate> = rows.iter().map(|r| r.date).collect();
        days.dedup();
        days
    };
    let x: Vec<i64> = days
        .iter()
        .map(|d| {
            d.and_hms_opt(0, 0, 0)
                .map_or(0, |t| t.and_utc().timestamp())
        })
        .collect();
    let position: BTreeMap<NaiveDate, usize> =
        days.iter().enumerate().map(|(i, d)| (*d, i)).collect();
    let regions: Vec<&str> = {
        let set: std::collections::BTreeSet<&str> =
            rows.iter().map(|r| r.region.as_str()).collect();
        set.into_iter().collect()
    };
    let per_region = |value: &dyn Fn(&KpiRow) -> f64| -> Vec<(String, Vec<Option<f64>>)> {
        regions
            .iter()
            .map(|region| {
                let mut values = vec![None; days.len()];
                for r in rows.iter().filter(|r| r.region == *region) {
                    values[position[&r.date]] = Some(value(r));
                }
                ((*region).to_owned(), values)
            })
            .collect()
    };
    let total = |value: &dyn Fn(&KpiRow) -> f64| -> Vec<Option<f64>> {
        let mut values = vec![Some(0.0); days.len()];
        for r in rows {
            if let Some(v) = values[position[&r.date]].as_mut() {
                *v += value(r);
            }
        }
        values
    };
    let rate = |r: &KpiRow| {
        if r.calls == 0 {
            0.0
        } else {
            r.dropped_calls as f64 / r.calls as f64 * 100.0
        }
    };
    vec![
        (
            "chart-active",
            chart(
                "Active subscribers",
                "lines",
                &x,
                per_region(&|r| r.active_subscribers as f64),
            ),
        ),
        (
            "chart-calls",
            chart("Calls", "lines", &x, per_region(&|r| r.calls as f64)),
        ),
        (
            "chart-dropped",
            chart("Dropped-call rate (%)", "lines", &x, per_region(&rate)),
        ),
        (
            "chart-data",
            chart(
                "Data volume (GB)",
                "lines",
                &x,
                per_region(&|r| r.data_bytes as f64 / 1e9),
            ),
        ),
        (
            "chart-revenue",
            chart(
                "Top-up revenue, selected regions",
                "bars",
                &x,
                vec![(
                    "revenue".into(),
                    total(&|r| r.top_up_revenue_cents as f64 / 100.0),
                )],
            ),
        ),
        (
            "chart-care",
            chart(
                "Tickets and churn events, selected regions",
                "bars",
                &x,
                vec![
                    ("tickets".into(), total(&|r| r.tickets as f64)),
                    ("churn events".into(), total(&|r| r.churn_events as f64)),
                ],
            ),
        ),
    ]
}

fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, (cents % 100).abs())
}

fn render(
    user: &CurrentUser,
    table: &KpiTable,
    filter: &Filter,
    from: NaiveDate,
    to: NaiveDate,
    rows: &[&KpiRow],
) -> Response {
    let sums = totals(rows.iter().copied());
    let charts = charts(rows);
    let main = html! {
        form.filters method="get" action="/kpis" {
            div {
                label for="from" { "From" }
                input #from type="date" name="from" value=(from) min=[table.first_day()] max=[table.last_day()];
            }
            div {
                label for="to" { "To" }
                input #to type="date" name="to" value=(to) min=[table.first_day()] max=[table.last_day()];
            }
            fieldset {
                legend { "Regions (none ticked: all)" }
                @for region in table.regions() {
                    label.check {
                        input type="checkbox" name="region" value=(region) checked[filter.regions.iter().any(|r| r == region)];
                        " " (region)
                    }
                }
            }
            button type="submit" { "Apply" }
        }
        p.hint #kpi-summary {
            "gold/kpi_daily version " (table.version) ": " (rows.len()) " region-days from " (from) " to " (to) "."
        }
        (totals_table(&sums))
        div.charts {
            @for (id, spec) in &charts {
                figure.chart id=(id) data-chart=(spec.to_string()) {
                    figcaption { (spec["title"].as_str().unwrap_or_default()) }
                }
            }
        }
        noscript { p.hint { "The charts need JavaScript; the table above holds the same figures." } }
    };
    pages::page_with_scripts(user, "KPIs", main, &SCRIPTS)
}

fn totals_table(sums: &BTreeMap<String, RegionTotals>) -> Markup {
    html! {
        div.scroll { table #kpi-totals {
            thead { tr {
                th scope="col" { "Region" } th scope="col" { "Active subscribers (last day)" } th scope="col" { "Calls" }
                th scope="col" { "Dropped-call rate" } th scope="col" { "Data (GB)" } th scope="col" { "Top-up revenue" }
                th scope="col" { "Tickets" } th scope="col" { "Churn events" }
            } }
            tbody {
                @for (region, t) in sums {
                    tr data-region=(region) {
                        th scope="row" { (region) }
                        td.num { (t.active_subscribers) }
                        td.num { (t.calls) }
                        td.num { (format!("{:.2}%", t.dropped_call_rate() * 100.0)) }
                        td.num { (format!("{:.2}", t.data_bytes as f64 / 1e9)) }
                        td.num { (money(t.top_up_revenue_cents)) }
                        td.num { (t.tickets) }
                        td.num { (t.churn_events) }
                    }
                }
            }
        } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_bad_ones_are_named() {
        let filter = parse_filter(Some(
            "from=2026-11-01&to=2026-11-30&region=north&region=south",
        ))
        .expect("filter");
        assert_eq!(filter.regions, ["north", "south"]);
        assert_eq!(filter.from, NaiveDate::from_ymd_opt(2026, 11, 1));
        assert_eq!(
            parse_filter(Some("from=&to=")).expect("empty"),
            Filter::default()
        );
        assert_eq!(
            parse_filter(Some("from=2026-13-01")).expect_err("refused"),
            "from=\"2026-13-01\" is not a date (YYYY-MM-DD)"
        );
        assert_eq!(
            parse_filter(Some("from=2026-11-02&to=2026-11-01")).expect_err("refused"),
            "from (2026-11-02) is after to (2026-11-01)"
        );
        assert!(
            parse_filter(Some("limit=3"))
                .expect_err("refused")
                .contains("unknown parameter")
        );
    }

    #[test]
    fn charts_have_a_series_per_region_aligned_on_days() {
        let row = |day: u32, region: &str, calls: i64| KpiRow {
            date: NaiveDate::from_ymd_opt(2026, 11, day).expect("date"),
            region: region.into(),
            active_subscribers: 1,
            calls,
            dropped_calls: 1,
            data_bytes: 0,
            top_up_revenue_cents: 250,
            tickets: 2,
            churn_events: 1,
        };
        let rows = [row(1, "north", 10), row(1, "south", 20), row(2, "north", 4)];
        let refs: Vec<&KpiRow> = rows.iter().collect();
        let charts = charts(&refs);
        let calls = &charts
            .iter()
            .find(|(id, _)| *id == "chart-calls")
            .expect("calls")
            .1;
        assert_eq!(calls["x"].as_array().expect("x").len(), 2);
        assert_eq!(calls["series"][0]["values"], json!([10.0, 4.0]));
        assert_eq!(calls["series"][1]["values"], json!([20.0, null]));
        let revenue = &charts
            .iter()
            .find(|(id, _)| *id == "chart-revenue")
            .expect("revenue")
            .1;
        assert_eq!(revenue["series"][0]["values"], json!([5.0, 2.5]));
        assert_eq!(money(-1205), "-12.05");
    }
}
