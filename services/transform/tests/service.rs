//! The service in continuous mode: picks up new bronze data on its own,
//! reports through `/readyz` and `/metrics`, stops on shutdown.

mod support;

use std::time::Duration;

use mlops_producer::FaultRates;
use mlops_runtime::Shutdown;
use mlops_transform::App;
use support::*;

fn metric(metrics: &str, line_prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuous_mode_follows_bronze_and_reports_metrics() {
    let lake = TestLake::new(Store::Local);
    let days = producer_days(9, 30, 12, FaultRates::default());
    write_bronze(&lake.location, &days[..6].concat(), 5_000, ingested_at(12)).await;

    let mut config = config(&lake);
    config.poll_interval = Duration::from_millis(300);
    let launched = mlops_runtime::service::launch::<App>(config)
        .await
        .expect("launch");
    let admin = format!("http://{}", launched.admin_addr());
    let shutdown = Shutdown::new();
    let running = tokio::spawn(launched.run(shutdown.clone()));

    let silver_rows = r#"transform_rows_out_total{table="silver/telecom_events"}"#;
    let first: u64 = days[..6].iter().map(|d| d.len() as u64).sum();
    eventually(Duration::from_secs(120), "first run", || async {
        let (_, body) = http_get(&format!("{admin}/metrics")).await;
        metric(&body, silver_rows) as u64 == first
    })
    .await;
    eventually(
        Duration::from_secs(60),
        "ready after a successful run",
        || async { http_get(&format!("{admin}/readyz")).await.0 == 200 },
    )
    .await;

    write_bronze(&lake.location, &days[6..].concat(), 5_000, ingested_at(12)).await;
    let total: u64 = days.iter().map(|d| d.len() as u64).sum();
    eventually(Duration::from_secs(120), "second batch", || async {
        let (_, body) = http_get(&format!("{admin}/metrics")).await;
        metric(&body, silver_rows) as u64 == total
    })
    .await;
    let (_, body) = http_get(&format!("{admin}/metrics")).await;
    for line in [
        r#"transform_rows_in_total{table="bronze/telecom_events"}"#,
        r#"transform_rows_out_total{table="gold/subscriber_features_daily"}"#,
        r#"transform_rows_out_total{table="gold/kpi_daily"}"#,
        r#"transform_runs_total{outcome="ok"}"#,
        "transform_bronze_lag_versions 0",
        "transform_run_seconds_count",
    ] {
        assert!(body.contains(line), "missing {line} in:\n{body}");
    }
    assert_eq!(
        metric(
            &body,
            r#"transform_rows_in_total{table="bronze/telecom_events"}"#
        ) as u64,
        total
    );

    shutdown.trigger();
    running.await.expect("join").expect("clean stop");
}
