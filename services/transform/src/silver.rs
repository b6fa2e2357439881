//! Bronze → silver and quarantine.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use chrono::{Duration, NaiveDate};
use deltalake::DeltaTable;
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::SaveMode;
use mlops_lake::changes::{self, NewData};
use mlops_lake::{LakeLocation, bronze, quarantine, query, silver};
use tracing::info;

use crate::metrics::{TransformMetrics, label};
use crate::{APP_BRONZE, Result, delta};

/// The semantic checks, in the order they are applied: a row is quarantined
/// with the first rule it fails.
pub struct Rule {
    /// The `reason` column of the quarantine table.
    pub reason: &'static str,
    /// SQL condition over bronze columns that marks a row as invalid.
    pub condition: String,
    /// SQL expression explaining the failure for one row.
    pub detail: String,
}

/// What the rules depend on besides the row itself.
#[derive(Clone, Copy, Debug)]
pub struct RuleParams {
    pub max_clock_skew_seconds: u32,
    /// Events dated before this day are `too_late` (`None`: silver is empty).
    pub late_cutoff: Option<NaiveDate>,
}

/// Largest plausible monetary amount (top-up, monthly price) in cents.
pub const MAX_AMOUNT_CENTS: i64 = 100_000;
/// Longest plausible call or data session.
pub const MAX_DURATION_SECONDS: i64 = 86_400;
/// Largest plausible data volume of one session (up plus down).
pub const MAX_SESSION_BYTES: i64 = 1_000_000_000_000;

const REQUIRED: &[(&str, &[&str])] = &[
    ("call", &["call_duration_seconds", "call_dropped"]),
    (
        "data_session",
        &["data_bytes_up", "data_bytes_down", "data_duration_seconds"],
    ),
    ("top_up", &["top_up_amount_cents"]),
    (
        "plan_change",
        &["plan_old_price_cents", "plan_new_price_cents"],
    ),
    ("support_ticket", &["ticket_id", "ticket_resolution"]),
    (
        "activation",
        &["activation_monthly_price_cents", "activation_activated_at"],
    ),
];

const ENUM_COLUMNS: &[(&str, &str)] = &[
    ("data_session", "data_network_type"),
    ("support_ticket", "ticket_category"),
    ("support_ticket", "ticket_resolution"),
    ("churn", "churn_reason"),
];

pub fn rules(params: RuleParams) -> Vec<Rule> {
    use bronze::kinds::*;
    let known = [
        CALL,
        SMS,
        DATA_SESSION,
        TOP_UP,
        PLAN_CHANGE,
        SUPPORT_TICKET,
        CHURN,
        ACTIVATION,
    ]
    .map(|k| format!("'{k}'"))
    .join(", ");
    let skew = params.max_clock_skew_seconds;
    let mut rules = vec![
        Rule {
            reason: "unknown_kind",
            condition: format!("event_kind NOT IN ({known})"),
            detail: "concat('event_kind ', event_kind, ' is not a known kind')".into(),
        },
        Rule {
            reason: "future_event_time",
            condition: format!("event_time > ingested_at + INTERVAL '{skew} seconds'"),
            detail: format!(
                "concat('event_time ', CAST(event_time AS VARCHAR), ' is more than {skew} s \
                 after its ingestion at ', CAST(ingested_at AS VARCHAR))"
            ),
        },
    ];
    if let Some(cutoff) = params.late_cutoff {
        rules.push(Rule {
            reason: "too_late",
            condition: format!("event_date < DATE '{cutoff}'"),
            detail: format!(
                "concat('event_date ', CAST(event_date AS VARCHAR), ' is before the late-event \
                 cutoff {cutoff}')"
            ),
        });
    }
    for (kind, columns) in REQUIRED {
        let missing = columns
            .iter()
            .map(|c| format!("{c} IS NULL"))
            .collect::<Vec<_>>()
            .join(" OR ");
        rules.push(Rule {
            reason: "missing_value",
            condition: format!("event_kind = '{kind}' AND ({missing})"),
            detail: format!("'a {kind} needs {}'", columns.join(", ")),
        });
    }
    let mut range = |reason, kind: &str, expr: &str, lo: i64, hi: i64| {
        rules.push(Rule {
            reason,
            condition: format!("event_kind = '{kind}' AND ({expr} < {lo} OR {expr} > {hi})"),
            detail: format!(
                "concat('{expr} = ', CAST({expr} AS VARCHAR), ' is outside [{lo}, {hi}]')"
            ),
        });
    };
    range(
        "negative_duration",
        CALL,
        "call_duration_seconds",
        0,
        i64::MAX,
    );
    range(
        "negative_duration",
        DATA_SESSION,
        "data_duration_seconds",
        0,
        i64::MAX,
    );
    range(
        "duration_out_of_range",
        CALL,
        "call_duration_seconds",
        0,
        MAX_DURATION_SECONDS,
    );
    range(
        "duration_out_of_range",
        DATA_SESSION,
        "data_duration_seconds",
        0,
        MAX_DURATION_SECONDS,
    );
    range(
        "volume_out_of_range",
        DATA_SESSION,
        "data_bytes_up",
        0,
        MAX_SESSION_BYTES,
    );
    range(
        "volume_out_of_range",
        DATA_SESSION,
        "data_bytes_down",
        0,
        MAX_SESSION_BYTES,
    );
    range(
        "amount_out_of_range",
        TOP_UP,
        "top_up_amount_cents",
        1,
        MAX_AMOUNT_CENTS,
    );
    range(
        "amount_out_of_range",
        PLAN_CHANGE,
        "plan_old_price_cents",
        0,
        MAX_AMOUNT_CENTS,
    );
    range(
        "amount_out_of_range",
        PLAN_CHANGE,
        "plan_new_price_cents",
        0,
        MAX_AMOUNT_CENTS,
    );
    range(
        "amount_out_of_range",
        ACTIVATION,
        "activation_monthly_price_cents",
        0,
        MAX_AMOUNT_CENTS,
    );
    for (kind, column) in ENUM_COLUMNS {
        rules.push(Rule {
            reason: "unknown_enum_value",
            condition: format!("event_kind = '{kind}' AND {column} LIKE 'unknown%'"),
            detail: format!("concat('{column} = ', {column}, ' is not a known value')"),
        });
    }
    rules
}

/// `CASE` expressions giving each row's failed rule (or NULL) and its detail.
fn classify_columns(rules: &[Rule]) -> (String, String) {
    let reason = rules
        .iter()
        .map(|r| format!("WHEN {} THEN '{}'", r.condition, r.reason))
        .collect::<Vec<_>>()
        .join(" ");
    let detail = rules
        .iter()
        .map(|r| format!("WHEN {} THEN {}", r.condition, r.detail))
        .collect::<Vec<_>>()
        .join(" ");
    (
        format!("CASE {reason} ELSE NULL END"),
        format!("CASE {detail} ELSE NULL END"),
    )
}

/// Settings of the silver step.
#[derive(Clone, Copy, Debug)]
pub struct SilverParams {
    pub late_horizon_days: u32,
    pub dedup_horizon_days: u32,
    pub max_clock_skew_seconds: u32,
}

/// What one silver step did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SilverReport {
    /// The bronze version silver reflects after the step.
    pub bronze_version: u64,
    /// New bronze rows read for silver.
    pub rows_in: u64,
    pub rows_out: u64,
    pub quarantined: u64,
    pub duplicates: u64,
    /// Whether anything was committed.
    pub changed: bool,
}

pub async fn run(
    lake: &LakeLocation,
    params: SilverParams,
    metrics: &TransformMetrics,
) -> Result<SilverReport> {
    let bronze_table = bronze::spec().open_or_create(lake).await?;
    let silver_table = silver::spec().open_or_create(lake).await?;
    let quarantine_table = quarantine::spec().open_or_create(lake).await?;
    let target = bronze_table.version().unwrap_or_default();
    let silver_done = changes::app_version(&silver_table, APP_BRONZE).await?;
    let quarantine_done = changes::app_version(&quarantine_table, APP_BRONZE).await?;
    metrics
        .bronze_lag_versions
        .set(target as i64 - silver_done.unwrap_or(-1));
    let mut report = SilverReport {
        bronze_version: target,
        ..SilverReport::default()
    };
    let behind = |done: Option<i64>| done.is_none_or(|v| v < target as i64);
    if !behind(silver_done) && !behind(quarantine_done) {
        return Ok(report);
    }
    let newest = changes::partition_dates(&silver_table, silver::EVENT_DATE)?
        .last()
        .copied();
    let rule_params = RuleParams {
        max_clock_skew_seconds: params.max_clock_skew_seconds,
        late_cutoff: newest.map(|d| d - Duration::days(i64::from(params.late_horizon_days))),
    };
    let (reason, detail) = classify_columns(&rules(rule_params));
    let mut phases = crate::Phases::start();
    let from = |done: Option<i64>| done.map(|v| v.max(0) as u64);

    // Quarantine first: if the run dies between the two commits, silver is
    // redone from its own progress and the quarantine rows are not repeated.
    let mut quarantined_in_range = None;
    if behind(quarantine_done) {
        let new = changes::new_data(&bronze_table, from(quarantine_done)).await?;
        let batches = if new.is_empty() {
            Vec::new()
        } else {
            let ctx = query::session()?;
            query::register(&ctx, "bronze_new", &bronze_table, new.files.clone()).await?;
            let columns = quarantine::spec()
                .columns
                .iter()
                .map(|c| match c.name().as_str() {
                    quarantine::REASON => format!("{reason} AS {}", quarantine::REASON),
                    quarantine::DETAIL => format!("{detail} AS {}", quarantine::DETAIL),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT {columns} FROM bronze_new WHERE ({reason}) IS NOT NULL \
                 ORDER BY kafka_topic, kafka_partition, kafka_offset"
            );
            ctx.sql(&sql).await?.collect().await?
        };
        let by_reason = count_reasons(&batches);
        let count: u64 = by_reason.values().sum();
        for (reason, n) in &by_reason {
            metrics
                .quarantined
                .get_or_create(&label("reason", reason))
                .inc_by(*n);
        }
        append(quarantine_table, &quarantine::spec(), batches, None, target).await?;
        phases.done("quarantine");
        if from(quarantine_done) == from(silver_done) {
            quarantined_in_range = Some(count);
        }
        report.quarantined = count;
        report.changed = true;
        if count > 0 {
            info!(rows = count, reasons = ?by_reason, "quarantined invalid bronze rows");
        }
    }

    if behind(silver_done) {
        let new = changes::new_data(&bronze_table, from(silver_done)).await?;
        report.rows_in = new.rows();
        metrics
            .rows_in
            .get_or_create(&label("table", bronze::TABLE))
            .inc_by(report.rows_in);
        let before = silver_table.version();
        let plan = if new.is_empty() {
            None
        } else {
            Some(silver_plan(&bronze_table, &silver_table, &new, &reason, params).await?)
        };
        let updated = append(silver_table, &silver::spec(), Vec::new(), plan, target).await?;
        report.rows_out = changes::new_data(&updated, before).await?.rows();
        phases.done("silver");
        metrics
            .rows_out
            .get_or_create(&label("table", silver::TABLE))
            .inc_by(report.rows_out);
        if let Some(quarantined) = quarantined_in_range {
            report.duplicates = report
                .rows_in
                .saturating_sub(quarantined)
                .saturating_sub(report.rows_out);
            metrics.duplicates.inc_by(report.duplicates);
        }
        report.changed = true;
    }
    metrics.bronze_lag_versions.set(0);
    info!(
        bronze_version = target,
        rows_in = report.rows_in,
        rows_out = report.rows_out,
        quarantined = report.quarantined,
        duplicates = report.duplicates,
        "silver updated"
    );
    Ok(report)
}

/// The new bronze rows that pass every rule, first copy of each `event_id`
/// only, minus events silver already holds within the dedup horizon.
async fn silver_plan(
    bronze_table: &DeltaTable,
    silver_table: &DeltaTable,
    new: &NewData,
    reason: &str,
    params: SilverParams,
) -> Result<(
    deltalake::datafusion::prelude::SessionContext,
    deltalake::datafusion::logical_expr::LogicalPlan,
)> {
    let ctx = query::session()?;
    query::register(&ctx, "bronze_new", bronze_table, new.files.clone()).await?;
    query::register(&ctx, "silver", silver_table, None).await?;
    // Copies of one event share its event time, so only the partitions of
    // the new rows' dates (less the dedup horizon) can hold an earlier copy.
    let dates = new.partition_dates(bronze::EVENT_DATE)?;
    let horizon = match (dates.first(), dates.last()) {
        (Some(first), Some(last)) => {
            let lo = *first - Duration::days(i64::from(params.dedup_horizon_days));
            format!("AND s.event_date >= DATE '{lo}' AND s.event_date <= DATE '{last}'")
        }
        _ => String::new(),
    };
    // Dedup without sorting every row: only ids seen more than once (rare)
    // are grouped to find their first copy, so the rows keep their scan
    // order (by event date, as bronze files are) for the partitioned write.
    let coordinates = |t: &str| {
        format!(
            "concat({t}.kafka_topic, '/', lpad(CAST({t}.kafka_partition AS VARCHAR), 10, '0'), \
             '/', lpad(CAST({t}.kafka_offset AS VARCHAR), 20, '0'))"
        )
    };
    let columns = silver::spec()
        .columns
        .iter()
        .map(|c| format!("v.{}", c.name()))
        .collect::<Vec<_>>()
        .join(", ");
    let (valid_coordinates, first_coordinates) = (coordinates("v"), coordinates("valid"));
    let sql = format!(
        "WITH valid AS (SELECT * FROM bronze_new WHERE ({reason}) IS NULL), \
         repeated AS ( \
           SELECT event_id, min({first_coordinates}) AS first_copy \
           FROM valid GROUP BY event_id HAVING count(*) > 1) \
         SELECT {columns} FROM valid v LEFT JOIN repeated r ON v.event_id = r.event_id \
         WHERE (r.event_id IS NULL OR {valid_coordinates} = r.first_copy) \
           AND NOT EXISTS (SELECT 1 FROM silver s WHERE s.event_id = v.event_id {horizon})"
    );
    let plan = ctx.sql(&sql).await?.into_unoptimized_plan();
    Ok((ctx, plan))
}

/// Appends rows (batches or a plan) to `table` and records `bronze_version`
/// as its progress, in one commit.
async fn append(
    table: DeltaTable,
    spec: &mlops_lake::TableSpec,
    batches: Vec<RecordBatch>,
    plan: Option<(
        deltalake::datafusion::prelude::SessionContext,
        deltalake::datafusion::logical_expr::LogicalPlan,
    )>,
    bronze_version: u64,
) -> Result<DeltaTable> {
    if batches.iter().all(|b| b.num_rows() == 0) && plan.is_none() {
        return Ok(changes::record_progress(&table, APP_BRONZE, bronze_version as i64).await?);
    }
    let txn = Transaction::new(APP_BRONZE, bronze_version as i64);
    let mut builder = table
        .write(batches)
        .with_save_mode(SaveMode::Append)
        .with_commit_properties(CommitProperties::default().with_application_transaction(txn));
    if !spec.partition_columns.is_empty() {
        builder = builder.with_partition_columns(spec.partition_columns.iter().copied());
    }
    if let Some((ctx, plan)) = plan {
        builder = builder
            .with_input_plan(plan)
            .with_session_state(Arc::new(ctx.state()));
    }
    builder.await.map_err(delta(spec.name))
}

fn count_reasons(batches: &[RecordBatch]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for batch in batches {
        let Some(column) = batch.column_by_name(quarantine::REASON) else {
            continue;
        };
        let Ok(reasons) = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8) else {
            continue;
        };
        for reason in reasons.as_string::<i32>().iter().flatten() {
            *counts.entry(reason.to_string()).or_default() += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_late_rule_exists_only_with_a_cutoff() {
        let without = rules(RuleParams {
            max_clock_skew_seconds: 60,
            late_cutoff: None,
        });
        assert!(without.iter().all(|r| r.reason != "too_late"));
        let with = rules(RuleParams {
            max_clock_skew_seconds: 60,
            late_cutoff: NaiveDate::from_ymd_opt(2026, 1, 1),
        });
        let late = with.iter().find(|r| r.reason == "too_late").expect("rule");
        assert_eq!(late.condition, "event_date < DATE '2026-01-01'");
        assert_eq!(with[0].reason, "unknown_kind", "kind is checked first");
    }
}
