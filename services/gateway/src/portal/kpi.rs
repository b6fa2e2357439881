//! The KPI dashboard's data: `gold/kpi_daily` held in memory, re-read when
//! its Delta version moves (checked at most every [`RECHECK`]), filtered by
//! date range and region and rolled up for the page.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Date32Type, Int64Type};
use chrono::NaiveDate;
use mlops_lake::{LakeLocation, OpenTables, kpi_daily};
use tokio::sync::Mutex;

/// How long a read of the table serves before its version is checked again.
pub const RECHECK: Duration = Duration::from_secs(5);

/// One region's KPIs on one day, as `gold/kpi_daily` holds them.
#[derive(Clone, Debug, PartialEq)]
pub struct KpiRow {
    pub date: NaiveDate,
    pub region: String,
    pub active_subscribers: i64,
    pub calls: i64,
    pub dropped_calls: i64,
    pub data_bytes: i64,
    pub top_up_revenue_cents: i64,
    pub tickets: i64,
    pub churn_events: i64,
}

/// One version of the table.
#[derive(Debug, Default)]
pub struct KpiTable {
    pub version: u64,
    /// Sorted by date, then region.
    pub rows: Vec<KpiRow>,
}

impl KpiTable {
    pub fn regions(&self) -> BTreeSet<&str> {
        self.rows.iter().map(|r| r.region.as_str()).collect()
    }

    pub fn first_day(&self) -> Option<NaiveDate> {
        self.rows.first().map(|r| r.date)
    }

    pub fn last_day(&self) -> Option<NaiveDate> {
        self.rows.last().map(|r| r.date)
    }

    /// Rows from `from` to `to` (inclusive) of `regions` (all when empty).
    pub fn select(&self, from: NaiveDate, to: NaiveDate, regions: &[String]) -> Vec<&KpiRow> {
        self.rows
            .iter()
            .filter(|r| r.date >= from && r.date <= to)
            .filter(|r| regions.is_empty() || regions.contains(&r.region))
            .collect()
    }
}

/// Totals of a selection per region.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegionTotals {
    /// Active subscribers on the selection's last day.
    pub active_subscribers: i64,
    pub calls: i64,
    pub dropped_calls: i64,
    pub data_bytes: i64,
    pub top_up_revenue_cents: i64,
    pub tickets: i64,
    pub churn_events: i64,
}

impl RegionTotals {
    /// Dropped calls over calls, as the table defines the daily rate.
    pub fn dropped_call_rate(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.dropped_calls as f64 / self.calls as f64
        }
    }
}

pub fn totals<'a>(rows: impl IntoIterator<Item = &'a KpiRow>) -> BTreeMap<String, RegionTotals> {
    let mut totals: BTreeMap<String, RegionTotals> = BTreeMap::new();
    let mut last_day: BTreeMap<String, NaiveDate> = BTreeMap::new();
    for r in rows {
        let t = totals.entry(r.region.clone()).or_default();
        t.calls += r.calls;
        t.dropped_calls += r.dropped_calls;
        t.data_bytes += r.data_bytes;
        t.top_up_revenue_cents += r.top_up_revenue_cents;
        t.tickets += r.tickets;
        t.churn_events += r.churn_events;
        let day = last_day.entry(r.region.clone()).or_insert(r.date);
        if r.date >= *day {
            *day = r.date;
            t.active_subscribers = r.active_subscribers;
        }
    }
    totals
}

/// `name` of `batch` as `to` (DataFusion may hand strings as views and
/// partition values as dictionaries).
fn column(batch: &RecordBatch, name: &str, to: &DataType) -> Result<ArrayRef, String> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| format!("{} has no column {name}", kpi_daily::TABLE))?;
    arrow::compute::cast(array, to).map_err(|e| format!("{}.{name}: {e}", kpi_daily::TABLE))
}

fn longs(batch: &RecordBatch, name: &str) -> Result<Vec<i64>, String> {
    let array = column(batch, name, &DataType::Int64)?;
    Ok(array
        .as_primitive::<Int64Type>()
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect())
}

/// The rows of one record batch of `gold/kpi_daily`.
pub fn rows_of(batch: &RecordBatch) -> Result<Vec<KpiRow>, String> {
    let dates = column(batch, kpi_daily::EVENT_DATE, &DataType::Date32)?;
    let dates = dates.as_primitive::<Date32Type>();
    let regions = column(batch, kpi_daily::REGION, &DataType::Utf8)?;
    let regions = regions.as_string::<i32>();
    let [active, calls, dropped, data, revenue, tickets, churn] = [
        "active_subscribers",
        "calls",
        "dropped_calls",
        "data_bytes",
        "top_up_revenue_cents",
        "tickets",
        "churn_events",
    ]
    .map(|name| longs(batch, name));
    let (active, calls, dropped, data, revenue, tickets, churn) =
        (active?, calls?, dropped?, data?, revenue?, tickets?, churn?);
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).ok_or("epoch")?;
    (0..batch.num_rows())
        .map(|i| {
            Ok(KpiRow {
                date: epoch + chrono::Duration::days(i64::from(dates.value(i))),
                region: regions.value(i).to_owned(),
                active_subscribers: active[i],
                calls: calls[i],
                dropped_calls: dropped[i],
                data_bytes: data[i],
                top_up_revenue_cents: revenue[i],
                tickets: tickets[i],
                churn_events: churn[i],
            })
        })
        .collect()
}

/// The table, read lazily and kept while its version stands.
pub struct KpiSource {
    tables: OpenTables,
    held: Mutex<Option<(Instant, Arc<KpiTable>)>>,
}

impl KpiSource {
    pub fn new(lake: LakeLocation) -> Self {
        Self {
            tables: OpenTables::new(lake),
            held: Mutex::new(None),
        }
    }

    /// The newest version; `None` before the pipeline has written the table.
    pub async fn current(&self) -> Result<Option<Arc<KpiTable>>, String> {
        let mut held = self.held.lock().await;
        if let Some((checked, table)) = held.as_ref()
            && checked.elapsed() < RECHECK
        {
            return Ok(Some(table.clone()));
        }
        let spec = kpi_daily::spec();
        let Some(delta) = self.tables.latest(&spec).await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let version = delta.version().unwrap_or_default();
        if let Some((_, table)) = held.as_ref()
            && table.version == version
        {
            let table = table.clone();
            *held = Some((Instant::now(), table.clone()));
            return Ok(Some(table));
        }
        // Through DataFusion: the date is a partition column, not in the files.
        let ctx = mlops_lake::query::session().map_err(|e| e.to_string())?;
        mlops_lake::query::register(&ctx, "kpi_daily", &delta, None)
            .await
            .map_err(|e| e.to_string())?;
        let batches = ctx
            .sql("SELECT * FROM kpi_daily")
            .await
            .map_err(|e| e.to_string())?
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        let mut rows = Vec::new();
        for batch in &batches {
            rows.extend(rows_of(batch)?);
        }
        rows.sort_by(|a, b| (a.date, &a.region).cmp(&(b.date, &b.region)));
        let table = Arc::new(KpiTable { version, rows });
        *held = Some((Instant::now(), table.clone()));
        Ok(Some(table))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(day: u32, region: &str, active: i64, calls: i64, dropped: i64) -> KpiRow {
        KpiRow {
            date: NaiveDate::from_ymd_opt(2026, 11, day).expect("date"),
            region: region.into(),
            active_subscribers: active,
            calls,
            dropped_calls: dropped,
            data_bytes: 1,
            top_up_revenue_cents: 100,
            tickets: 1,
            churn_events: 0,
        }
    }

    #[test]
    fn totals_sum_counts_and_keep_the_last_days_active_subscribers() {
        let table = KpiTable {
            version: 3,
            rows: vec![
                row(1, "north", 10, 100, 5),
                row(1, "south", 7, 50, 0),
                row(2, "north", 12, 100, 15),
                row(3, "north", 11, 100, 0),
            ],
        };
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).expect("date");
        let picked = table.select(day(1), day(2), &["north".to_owned()]);
        assert_eq!(picked.len(), 2);
        let totals = totals(picked);
        let north = &totals["north"];
        assert_eq!(
            (north.calls, north.dropped_calls, north.active_subscribers),
            (200, 20, 12)
        );
        assert!((north.dropped_call_rate() - 0.1).abs() < 1e-12);
        assert_eq!(totals.len(), 1);
        assert_eq!(
            table.regions().into_iter().collect::<Vec<_>>(),
            ["north", "south"]
        );
        assert_eq!(table.last_day(), Some(day(3)));
    }
}
