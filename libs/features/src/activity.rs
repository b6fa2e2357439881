//! Step one: a subscriber's events of one day, folded into counts and sums.
//!
//! The fold is SQL over rows in the silver schema, so the transform runs it
//! in DataFusion over the lake and the gateway over a request's events.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Date32Type, Int64Type};
use chrono::NaiveDate;

use crate::{Error, Result};

/// One subscriber's activity on one day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DailyActivity {
    pub date: NaiveDate,
    pub calls: i64,
    pub dropped_calls: i64,
    pub call_seconds: i64,
    pub sms: i64,
    pub data_sessions: i64,
    /// Bytes up and down.
    pub data_bytes: i64,
    pub top_ups: i64,
    pub top_up_cents: i64,
    pub tickets: i64,
    /// Tickets opened that day and not resolved (`open` or `unresolved`).
    pub unresolved_tickets: i64,
    pub churn_events: i64,
}

impl DailyActivity {
    /// Whether the subscriber used the service that day (a call, SMS, data
    /// session or top-up; tickets and churn do not count).
    pub fn is_active(&self) -> bool {
        self.calls + self.sms + self.data_sessions + self.top_ups > 0
    }

    /// Adds another day's counts and sums (for windows and KPIs); the date
    /// is kept.
    pub fn add(&mut self, day: &DailyActivity) {
        self.calls += day.calls;
        self.dropped_calls += day.dropped_calls;
        self.call_seconds += day.call_seconds;
        self.sms += day.sms;
        self.data_sessions += day.data_sessions;
        self.data_bytes += day.data_bytes;
        self.top_ups += day.top_ups;
        self.top_up_cents += day.top_up_cents;
        self.tickets += day.tickets;
        self.unresolved_tickets += day.unresolved_tickets;
        self.churn_events += day.churn_events;
    }
}

/// The aggregates, in [`DailyActivity`] field order: (column, SQL expression
/// over silver columns).
pub const AGGREGATES: &[(&str, &str)] = &[
    (
        "calls",
        "sum(CASE WHEN event_kind = 'call' THEN 1 ELSE 0 END)",
    ),
    (
        "dropped_calls",
        "sum(CASE WHEN event_kind = 'call' AND call_dropped THEN 1 ELSE 0 END)",
    ),
    (
        "call_seconds",
        "sum(CASE WHEN event_kind = 'call' THEN call_duration_seconds ELSE 0 END)",
    ),
    ("sms", "sum(CASE WHEN event_kind = 'sms' THEN 1 ELSE 0 END)"),
    (
        "data_sessions",
        "sum(CASE WHEN event_kind = 'data_session' THEN 1 ELSE 0 END)",
    ),
    (
        "data_bytes",
        "sum(CASE WHEN event_kind = 'data_session' THEN data_bytes_up + data_bytes_down ELSE 0 END)",
    ),
    (
        "top_ups",
        "sum(CASE WHEN event_kind = 'top_up' THEN 1 ELSE 0 END)",
    ),
    (
        "top_up_cents",
        "sum(CASE WHEN event_kind = 'top_up' THEN top_up_amount_cents ELSE 0 END)",
    ),
    (
        "tickets",
        "sum(CASE WHEN event_kind = 'support_ticket' THEN 1 ELSE 0 END)",
    ),
    (
        "unresolved_tickets",
        "sum(CASE WHEN event_kind = 'support_ticket' AND ticket_resolution IN ('open', 'unresolved') THEN 1 ELSE 0 END)",
    ),
    (
        "churn_events",
        "sum(CASE WHEN event_kind = 'churn' THEN 1 ELSE 0 END)",
    ),
];

/// The query folding `table`'s rows (silver schema) into one row per
/// subscriber and day: `subscriber_id`, `event_date`, then [`AGGREGATES`].
/// `filter` is an SQL condition (e.g. a date range), or `TRUE`.
pub fn daily_activity_sql(table: &str, filter: &str) -> String {
    let aggregates = AGGREGATES
        .iter()
        .map(|(name, expr)| format!("CAST({expr} AS BIGINT) AS {name}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT subscriber_id, event_date, {aggregates} FROM {table} \
         WHERE {filter} GROUP BY subscriber_id, event_date"
    )
}

/// Reads the rows of [`daily_activity_sql`] back, as (subscriber, activity).
pub fn from_batches(batches: &[RecordBatch]) -> Result<Vec<(String, DailyActivity)>> {
    let mut out = Vec::new();
    for batch in batches {
        let ids = strings(batch, "subscriber_id")?;
        let dates = dates(batch, "event_date")?;
        let values = AGGREGATES
            .iter()
            .map(|(name, _)| longs(batch, name))
            .collect::<Result<Vec<_>>>()?;
        for row in 0..batch.num_rows() {
            let v = |i: usize| values[i].get(row).copied().flatten().unwrap_or(0);
            out.push((
                ids[row].clone().unwrap_or_default(),
                DailyActivity {
                    date: dates[row].unwrap_or_default(),
                    calls: v(0),
                    dropped_calls: v(1),
                    call_seconds: v(2),
                    sms: v(3),
                    data_sessions: v(4),
                    data_bytes: v(5),
                    top_ups: v(6),
                    top_up_cents: v(7),
                    tickets: v(8),
                    unresolved_tickets: v(9),
                    churn_events: v(10),
                },
            ));
        }
    }
    Ok(out)
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Arc<dyn Array>> {
    batch.column_by_name(name).ok_or_else(|| Error::Column {
        column: name.to_string(),
        reason: "missing from the query result".into(),
    })
}

/// A string column as owned values, whatever Arrow string type it has.
pub(crate) fn strings(batch: &RecordBatch, name: &str) -> Result<Vec<Option<String>>> {
    let array = cast(column(batch, name)?, &DataType::Utf8)?;
    Ok(array
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect())
}

pub(crate) fn longs(batch: &RecordBatch, name: &str) -> Result<Vec<Option<i64>>> {
    let array = cast(column(batch, name)?, &DataType::Int64)?;
    Ok(array.as_primitive::<Int64Type>().iter().collect())
}

pub(crate) fn dates(batch: &RecordBatch, name: &str) -> Result<Vec<Option<NaiveDate>>> {
    let array = cast(column(batch, name)?, &DataType::Date32)?;
    Ok(array
        .as_primitive::<Date32Type>()
        .iter()
        .map(|v| v.map(date_from_days))
        .collect())
}

/// Microseconds since the epoch (any timestamp unit or zone is cast first).
pub(crate) fn micros(batch: &RecordBatch, name: &str) -> Result<Vec<Option<i64>>> {
    let array = cast(
        column(batch, name)?,
        &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
    )?;
    let array = cast(&array, &DataType::Int64)?;
    Ok(array.as_primitive::<Int64Type>().iter().collect())
}

pub(crate) fn date_from_days(days: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(days + EPOCH_DAYS_FROM_CE).unwrap_or_default()
}

pub(crate) fn days_from_date(date: NaiveDate) -> i32 {
    date.num_days_from_ce() - EPOCH_DAYS_FROM_CE
}

/// `NaiveDate::num_days_from_ce` of 1970-01-01.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

use chrono::Datelike as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_conversions_round_trip() {
        let date = NaiveDate::from_ymd_opt(2026, 3, 1).expect("date");
        assert_eq!(date_from_days(days_from_date(date)), date);
        assert_eq!(
            days_from_date(NaiveDate::from_ymd_opt(1970, 1, 2).expect("date")),
            1
        );
    }

    #[test]
    fn the_query_names_every_aggregate() {
        let sql = daily_activity_sql("silver", "event_date >= DATE '2026-01-01'");
        for (name, _) in AGGREGATES {
            assert!(sql.contains(&format!("AS {name}")), "{name} missing: {sql}");
        }
        assert!(sql.ends_with("GROUP BY subscriber_id, event_date"));
    }
}
