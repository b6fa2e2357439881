//! Shared helpers of the transform tests: bronze tables written through the
//! ingest service's own writer from the producer's deterministic events, and
//! table contents read back for comparison.
#![allow(dead_code)]

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono::{DateTime, NaiveDate, Utc};
use mlops_ingest::batch::Batch;
use mlops_ingest::decode::decode;
use mlops_ingest::writer::{BronzeWriter, CommitOutcome};
use mlops_lake::{LakeLocation, TableSpec, query};
use mlops_producer::sim::{SimConfig, Truth, midnight};
use mlops_producer::{Emitter, FaultRates, Outgoing};
use mlops_runtime::EnvReader;
pub use mlops_testkit::*;
use mlops_transform::metrics::TransformMetrics;
use mlops_transform::{RunReport, TransformConfig};

pub const TOPIC: &str = "telecom.events.v1";

pub fn start_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 1).expect("date")
}

/// The producer's records, one `Vec` per simulated day (faults included;
/// duplicates still waiting at the end are released on the last day).
pub fn producer_days(
    seed: u64,
    subscribers: u32,
    days: u32,
    faults: FaultRates,
) -> Vec<Vec<Outgoing>> {
    simulate(seed, subscribers, days, faults).0
}

/// Every record of the simulated days and the producer's ground truth (what
/// `--truth-out` writes).
pub fn producer_world(
    seed: u64,
    subscribers: u32,
    days: u32,
    faults: FaultRates,
) -> (Vec<Outgoing>, Vec<Truth>) {
    let (days, truth) = simulate(seed, subscribers, days, faults);
    (days.concat(), truth)
}

fn simulate(
    seed: u64,
    subscribers: u32,
    days: u32,
    faults: FaultRates,
) -> (Vec<Vec<Outgoing>>, Vec<Truth>) {
    let mut emitter = Emitter::new(
        &SimConfig {
            seed,
            subscribers,
            start: midnight(start_date()),
        },
        faults,
    );
    let mut out: Vec<Vec<Outgoing>> = (0..days).map(|_| emitter.next_day()).collect();
    if let Some(last) = out.last_mut() {
        last.extend(emitter.drain_delayed());
    }
    let truth = emitter.truth();
    (out, truth)
}

/// Appends records to bronze the way ingest does (one Kafka partition,
/// offsets continuing from what the table holds), `per_commit` at a time.
/// Records ingest would dead-letter are skipped. Returns the rows written.
pub async fn write_bronze(
    lake: &LakeLocation,
    records: &[Outgoing],
    per_commit: usize,
    ingested_at: DateTime<Utc>,
) -> u64 {
    let mut writer = BronzeWriter::open(lake).await.expect("bronze");
    let app_id = |partition: i32| mlops_lake::lineage::ingest_app_id(TOPIC, partition);
    let topic: Arc<str> = Arc::from(TOPIC);
    let mut written = 0;
    for chunk in records.chunks(per_commit.max(1)) {
        let base = writer.committed_offset(&app_id(0)).await.expect("offset");
        let mut offset = base.unwrap_or(-1);
        let mut batch = Batch::default();
        for record in chunk {
            offset += 1;
            batch.cover(0, base, offset);
            match decode(Some(&record.payload), None) {
                Ok(event) => batch.push(event, topic.clone(), 0, offset, ingested_at),
                Err(_) => batch.dead_lettered += 1,
            }
        }
        written += batch.rows() as u64;
        let outcome = writer.commit(&batch, app_id).await.expect("commit");
        assert!(
            matches!(outcome, CommitOutcome::Committed { .. }),
            "{outcome:?}"
        );
    }
    written
}

/// The time every test record was ingested: after the simulated days.
pub fn ingested_at(days: u32) -> DateTime<Utc> {
    midnight(start_date() + chrono::Duration::days(i64::from(days) + 1))
}

pub fn config(lake: &TestLake) -> TransformConfig {
    let mut config = TransformConfig::from_env(&mut EnvReader::from_pairs(&[
        ("ADMIN_ADDR", "127.0.0.1:0"),
        ("LAKE_URL", lake.location.root().as_str()),
    ]))
    .expect("config");
    config.lake = lake.location.clone();
    config
}

/// One run of the pipeline in this process.
pub async fn run_once(lake: &TestLake) -> RunReport {
    mlops_transform::app::run_pipeline(&config(lake), &TransformMetrics::default())
        .await
        .expect("transform run")
}

/// Every row of a table as text, sorted: equal vectors mean equal tables.
pub async fn table_rows(lake: &LakeLocation, spec: &TableSpec) -> Vec<String> {
    let batches = query_table(lake, spec, "SELECT * FROM t").await;
    let mut rows = Vec::new();
    for batch in &batches {
        rows.extend(format_rows(batch));
    }
    rows.sort();
    rows
}

pub async fn query_table(lake: &LakeLocation, spec: &TableSpec, sql: &str) -> Vec<RecordBatch> {
    let table = spec.open(lake).await.expect("table");
    let ctx = query::session().expect("session");
    query::register(&ctx, "t", &table, None)
        .await
        .expect("register");
    ctx.sql(sql)
        .await
        .expect("sql")
        .collect()
        .await
        .expect("collect")
}

pub fn format_rows(batch: &RecordBatch) -> Vec<String> {
    let options = FormatOptions::default().with_null("∅");
    let formatters: Vec<_> = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
        .collect();
    let names: Vec<_> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    (0..batch.num_rows())
        .map(|row| {
            let mut cells: Vec<String> = formatters
                .iter()
                .zip(&names)
                .map(|(f, name)| format!("{name}={}", f.value(row)))
                .collect();
            // Column order may differ between providers (partition columns last).
            cells.sort();
            cells.join("|")
        })
        .collect()
}

/// Table versions of every transform output, to prove a run changed nothing.
pub async fn output_versions(lake: &LakeLocation) -> Vec<Option<u64>> {
    let mut versions = Vec::new();
    for spec in output_specs() {
        versions.push(spec.open(lake).await.expect("table").version());
    }
    versions
}

pub fn output_specs() -> Vec<TableSpec> {
    vec![
        mlops_lake::silver::spec(),
        mlops_lake::quarantine::spec(),
        mlops_lake::subscriber_features::daily_spec(),
        mlops_lake::subscriber_features::latest_spec(),
        mlops_lake::kpi_daily::spec(),
    ]
}
