//! Bronze → gold throughput beside DuckDB doing the same job on the same
//! bronze table in the same run (`scripts/bench_transform_duckdb.py`).
//!
//! `./scripts/bench.sh transform`; size with `BENCH_SUBSCRIBERS` (default
//! 20000) and `BENCH_DAYS` (default 30): about 10 events per subscriber-day.
//! Prints rows per second for both and the time ratio (target ≤ 1.5).

#![allow(clippy::print_stdout)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use mlops_producer::FaultRates;
use support::*;

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let subscribers = env_number("BENCH_SUBSCRIBERS", 20_000);
    let days = env_number("BENCH_DAYS", 30);
    let telemetry = mlops_runtime::telemetry::init(&mlops_runtime::TelemetryConfig::from_env(
        &mut mlops_runtime::EnvReader::from_process(),
        "transform-bench",
    ))
    .expect("telemetry");
    let python = std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/bench_transform_duckdb.py"
    );

    let lake = TestLake::new(Store::Local);
    let generating = Instant::now();
    let faults = FaultRates {
        duplicate: 0.01,
        late: 0.02,
        malformed: 0.0,
    };
    let records: Vec<_> = producer_days(42, subscribers, days, faults).concat();
    let bronze_rows = write_bronze(&lake.location, &records, 250_000, ingested_at(days)).await;
    drop(records);
    println!(
        "bronze: {bronze_rows} rows ({subscribers} subscribers x {days} days) written in {:.1} s",
        generating.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let report = run_once(&lake).await;
    let transform_seconds = started.elapsed().as_secs_f64();

    let out = tempfile::tempdir().expect("temp dir");
    let root = lake.location.root().to_file_path().expect("local lake");
    let output = std::process::Command::new(&python)
        .arg(script)
        .arg(&root)
        .arg(out.path())
        .output()
        .expect("run the DuckDB baseline");
    assert!(
        output.status.success(),
        "DuckDB baseline failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let duckdb: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("baseline output");
    let duckdb_seconds = duckdb["seconds"].as_f64().expect("seconds");

    // Same job, same answers: the row counts must agree.
    assert_eq!(
        duckdb["silver_rows"].as_u64(),
        Some(report.silver.rows_out),
        "silver rows"
    );
    assert_eq!(
        duckdb["feature_rows"].as_u64(),
        Some(report.gold.feature_rows),
        "feature rows"
    );
    assert_eq!(
        duckdb["kpi_rows"].as_u64(),
        Some(report.gold.kpi_rows),
        "kpi rows"
    );

    let rate = |seconds: f64| bronze_rows as f64 / seconds;
    println!(
        "transform: {:.2} s, {:.0} bronze rows/s (silver {}, duplicates {}, feature rows {}, kpi rows {})",
        transform_seconds,
        rate(transform_seconds),
        report.silver.rows_out,
        report.silver.duplicates,
        report.gold.feature_rows,
        report.gold.kpi_rows
    );
    println!(
        "duckdb:    {:.2} s, {:.0} bronze rows/s",
        duckdb_seconds,
        rate(duckdb_seconds)
    );
    println!(
        "ratio: transform takes {:.2}x the DuckDB time (target <= 1.5)",
        transform_seconds / duckdb_seconds
    );
    telemetry.shutdown();
}
