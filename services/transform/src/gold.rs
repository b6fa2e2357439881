//! Silver → gold: subscriber features per day, the latest features per
//! subscriber, and KPIs per region per day.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use chrono::{Duration, NaiveDate};
use deltalake::DeltaTable;
use deltalake::datafusion::prelude::{Expr, col, lit};
use deltalake::datafusion::scalar::ScalarValue;
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::SaveMode;
use mlops_features::row as feature_row;
use mlops_features::{DailyActivity, FeatureRow, LONG_WINDOW_DAYS, Profile, activity, profile};
use mlops_lake::{LakeLocation, TableSpec, changes, kpi_daily, query, silver, subscriber_features};
use tracing::info;

use crate::metrics::{TransformMetrics, label};
use crate::{APP_SILVER, Result, delta};

/// What one gold step did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GoldReport {
    /// The silver version the gold tables reflect after the step.
    pub silver_version: u64,
    /// First and last day recomputed, if any.
    pub days: Option<(NaiveDate, NaiveDate)>,
    pub feature_rows: u64,
    pub kpi_rows: u64,
    pub latest_rows: u64,
    pub changed: bool,
}

struct Output {
    spec: TableSpec,
    table: DeltaTable,
    done: Option<i64>,
}

impl Output {
    async fn open(spec: TableSpec, lake: &LakeLocation) -> Result<Self> {
        let table = spec.open_or_create(lake).await?;
        let done = changes::app_version(&table, APP_SILVER).await?;
        Ok(Self { spec, table, done })
    }

    fn behind(&self, target: u64) -> bool {
        self.done.is_none_or(|v| v < target as i64)
    }
}

pub async fn run(lake: &LakeLocation, metrics: &TransformMetrics) -> Result<GoldReport> {
    let silver_table = silver::spec().open_or_create(lake).await?;
    let target = silver_table.version().unwrap_or_default();
    let mut daily = Output::open(subscriber_features::daily_spec(), lake).await?;
    let mut latest = Output::open(subscriber_features::latest_spec(), lake).await?;
    let mut kpi = Output::open(kpi_daily::spec(), lake).await?;
    let mut report = GoldReport {
        silver_version: target,
        ..GoldReport::default()
    };
    let outputs = [&daily, &latest, &kpi];
    if outputs.iter().all(|o| !o.behind(target)) {
        return Ok(report);
    }
    // The most lagging table decides what to recompute; tables already at
    // the target are left alone.
    let from = outputs
        .iter()
        .map(|o| o.done)
        .min()
        .flatten()
        .map(|v| v.max(0) as u64);
    let new = changes::new_data(&silver_table, from).await?;
    let touched = new.partition_dates(silver::EVENT_DATE)?;
    let newest = changes::partition_dates(&silver_table, silver::EVENT_DATE)?
        .last()
        .copied();
    // Days after the last computed one get rows even without events of
    // their own (every subscriber has a row per day).
    let computed_until = changes::partition_dates(&daily.table, subscriber_features::AS_OF_DATE)?
        .last()
        .copied();
    let start = match (touched.first(), computed_until) {
        (Some(first), Some(until)) => Some((*first).min(until + Duration::days(1))),
        (Some(first), None) => Some(*first),
        _ => None,
    };
    let (Some(start), Some(end)) = (start, newest) else {
        // Nothing new in silver (only progress commits): record progress.
        for output in [&mut daily, &mut latest, &mut kpi] {
            if output.behind(target) {
                changes::record_progress(&output.table, APP_SILVER, target as i64).await?;
            }
        }
        report.changed = true;
        return Ok(report);
    };
    report.days = Some((start, end));

    let mut phases = crate::Phases::start();
    let ctx = query::session()?;
    query::register(&ctx, "silver", &silver_table, None).await?;
    let history_start = start - Duration::days(LONG_WINDOW_DAYS - 1);
    let activity_rows = ctx
        .sql(&activity::daily_activity_sql(
            "silver",
            &format!("event_date >= DATE '{history_start}' AND event_date <= DATE '{end}'"),
        ))
        .await?
        .collect()
        .await?;
    let activity = activity::from_batches(&activity_rows)?;
    phases.done("daily activity");
    metrics
        .rows_in
        .get_or_create(&label("table", silver::TABLE))
        .inc_by(new.rows());
    let mut profile_parts = Vec::new();
    for sql in [
        profile::activations_sql("silver"),
        profile::plan_changes_sql("silver"),
        profile::spans_sql("silver"),
    ] {
        profile_parts.push(ctx.sql(&sql).await?.collect().await?);
    }
    let profiles = profile::from_batches(&profile_parts[0], &profile_parts[1], &profile_parts[2])?;
    phases.done("profiles");

    let mut by_subscriber: HashMap<&str, Vec<DailyActivity>> = HashMap::new();
    for (subscriber, day) in &activity {
        by_subscriber
            .entry(subscriber.as_str())
            .or_default()
            .push(*day);
    }
    for days in by_subscriber.values_mut() {
        days.sort_by_key(|d| d.date);
    }
    let rows = feature_rows(&profiles, &by_subscriber, start, end);
    let kpis = kpi_rows(&profiles, &activity, start, end);
    phases.done("features and kpis");

    let range = |column: &str| -> Expr {
        col(column)
            .gt_eq(lit(ScalarValue::Date32(Some(days(start)))))
            .and(col(column).lt_eq(lit(ScalarValue::Date32(Some(days(end))))))
    };
    if daily.behind(target) {
        let batch = feature_row::to_record_batch(Arc::new(daily.spec.arrow_schema()?), &rows)?;
        replace(
            &daily,
            vec![batch],
            Some(range(subscriber_features::AS_OF_DATE)),
            target,
        )
        .await?;
        report.feature_rows = rows.len() as u64;
        metrics
            .rows_out
            .get_or_create(&label("table", subscriber_features::DAILY_TABLE))
            .inc_by(report.feature_rows);
        phases.done("write features");
    }
    if kpi.behind(target) {
        let batch = kpi_batch(&kpi.spec, &kpis)?;
        replace(
            &kpi,
            vec![batch],
            Some(range(kpi_daily::EVENT_DATE)),
            target,
        )
        .await?;
        report.kpi_rows = kpis.len() as u64;
        metrics
            .rows_out
            .get_or_create(&label("table", kpi_daily::TABLE))
            .inc_by(report.kpi_rows);
        phases.done("write kpis");
    }
    if latest.behind(target) {
        let merged = merge_latest(&latest.table, rows).await?;
        let batch = feature_row::to_record_batch(Arc::new(latest.spec.arrow_schema()?), &merged)?;
        replace(&latest, vec![batch], None, target).await?;
        report.latest_rows = merged.len() as u64;
        metrics
            .rows_out
            .get_or_create(&label("table", subscriber_features::LATEST_TABLE))
            .inc_by(report.latest_rows);
        phases.done("write latest");
    }
    report.changed = true;
    info!(
        silver_version = target,
        from = %start,
        to = %end,
        feature_rows = report.feature_rows,
        kpi_rows = report.kpi_rows,
        subscribers = report.latest_rows,
        "gold updated"
    );
    Ok(report)
}

fn days(date: NaiveDate) -> i32 {
    (date - NaiveDate::default()).num_days() as i32
}

/// One row per subscriber per day of `start..=end`, from the subscriber's
/// first event to its churn (included).
fn feature_rows(
    profiles: &HashMap<String, Profile>,
    activity: &HashMap<&str, Vec<DailyActivity>>,
    start: NaiveDate,
    end: NaiveDate,
) -> Vec<FeatureRow> {
    let mut subscribers: Vec<&String> = profiles.keys().collect();
    subscribers.sort();
    let mut rows = Vec::new();
    for subscriber in subscribers {
        let profile = &profiles[subscriber];
        let Some(first_seen) = profile.first_seen else {
            continue;
        };
        let history = activity
            .get(subscriber.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let last = profile.churned_on.map_or(end, |churned| churned.min(end));
        let mut day = start.max(first_seen);
        while day <= last {
            // The window ending at `day`, found in the sorted history.
            let window_start = day - Duration::days(LONG_WINDOW_DAYS - 1);
            let lo = history.partition_point(|d| d.date < window_start);
            let hi = history.partition_point(|d| d.date <= day);
            rows.push(FeatureRow {
                subscriber_id: subscriber.clone(),
                as_of_date: day,
                region: profile.region.clone(),
                plan: profile.plan_on(day),
                churned: profile.churned_on == Some(day),
                features: mlops_features::compute(day, profile, &history[lo..hi]),
            });
            day += Duration::days(1);
        }
    }
    rows
}

/// A region's day: its active subscribers and the sum of their activity.
#[derive(Clone, Debug, Default, PartialEq)]
struct Kpi {
    active_subscribers: i64,
    totals: DailyActivity,
}

/// KPIs per (day, home region) over `start..=end`.
fn kpi_rows(
    profiles: &HashMap<String, Profile>,
    activity: &[(String, DailyActivity)],
    start: NaiveDate,
    end: NaiveDate,
) -> BTreeMap<(NaiveDate, String), Kpi> {
    let mut kpis: BTreeMap<(NaiveDate, String), Kpi> = BTreeMap::new();
    for (subscriber, day) in activity {
        if day.date < start || day.date > end {
            continue;
        }
        let region = profiles
            .get(subscriber)
            .and_then(|p| p.region.clone())
            .unwrap_or_else(|| kpi_daily::UNKNOWN_REGION.to_string());
        let kpi = kpis.entry((day.date, region)).or_default();
        kpi.active_subscribers += i64::from(day.is_active());
        kpi.totals.add(day);
    }
    kpis
}

fn kpi_batch(spec: &TableSpec, kpis: &BTreeMap<(NaiveDate, String), Kpi>) -> Result<RecordBatch> {
    let long = |f: &dyn Fn(&Kpi) -> i64| -> ArrayRef {
        Arc::new(kpis.values().map(|k| Some(f(k))).collect::<Int64Array>())
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            kpis.keys()
                .map(|(date, _)| Some(days(*date)))
                .collect::<Date32Array>(),
        ),
        Arc::new(
            kpis.keys()
                .map(|(_, region)| Some(region.as_str()))
                .collect::<StringArray>(),
        ),
        long(&|k| k.active_subscribers),
        long(&|k| k.totals.calls),
        long(&|k| k.totals.dropped_calls),
        Arc::new(
            kpis.values()
                .map(|k| {
                    Some(if k.totals.calls == 0 {
                        0.0
                    } else {
                        k.totals.dropped_calls as f64 / k.totals.calls as f64
                    })
                })
                .collect::<Float64Array>(),
        ),
        long(&|k| k.totals.data_bytes),
        long(&|k| k.totals.top_up_cents),
        long(&|k| k.totals.tickets),
        long(&|k| k.totals.unresolved_tickets),
        long(&|k| k.totals.churn_events),
    ];
    Ok(RecordBatch::try_new(
        Arc::new(spec.arrow_schema()?),
        columns,
    )?)
}

/// The latest table's rows with each recomputed subscriber's newest row
/// replacing its old one.
async fn merge_latest(table: &DeltaTable, rows: Vec<FeatureRow>) -> Result<Vec<FeatureRow>> {
    let mut latest: BTreeMap<String, FeatureRow> = BTreeMap::new();
    if table.version().is_some_and(|v| v > 0) {
        let ctx = query::session()?;
        query::register(&ctx, "latest", table, None).await?;
        for batch in ctx.sql("SELECT * FROM latest").await?.collect().await? {
            for row in feature_row::from_record_batch(&batch)? {
                latest.insert(row.subscriber_id.clone(), row);
            }
        }
    }
    let mut newest: HashMap<String, FeatureRow> = HashMap::new();
    for row in rows {
        match newest.get(&row.subscriber_id) {
            Some(kept) if kept.as_of_date >= row.as_of_date => {}
            _ => {
                newest.insert(row.subscriber_id.clone(), row);
            }
        }
    }
    latest.extend(newest);
    Ok(latest.into_values().collect())
}

/// Replaces the rows matching `predicate` (all rows without one) with
/// `batches` and records `silver_version` as the table's progress, in one commit.
async fn replace(
    output: &Output,
    batches: Vec<RecordBatch>,
    predicate: Option<Expr>,
    silver_version: u64,
) -> Result<DeltaTable> {
    let properties = CommitProperties::default()
        .with_application_transaction(Transaction::new(APP_SILVER, silver_version as i64));
    let name = output.spec.name;
    if batches.iter().all(|b| b.num_rows() == 0) {
        // Nothing to write: delete what the range held.
        let mut delete = output
            .table
            .clone()
            .delete()
            .with_commit_properties(properties);
        if let Some(predicate) = predicate {
            delete = delete.with_predicate(predicate);
        }
        let (table, _) = delete.await.map_err(delta(name))?;
        return Ok(table);
    }
    let mut write = output
        .table
        .clone()
        .write(batches)
        .with_save_mode(SaveMode::Overwrite)
        .with_commit_properties(properties);
    if !output.spec.partition_columns.is_empty() {
        write = write.with_partition_columns(output.spec.partition_columns.iter().copied());
    }
    if let Some(predicate) = predicate {
        write = write.with_replace_where(predicate);
    }
    write.await.map_err(delta(name))
}
