//! The pipeline on the S3-protocol server (moto) and on Azurite, with the
//! gold tables read back by an independent Delta reader (Python `deltalake`).

mod support;

use std::collections::HashMap;

use mlops_producer::FaultRates;
use support::*;

fn python_row_count(table_uri: &str, storage_options: &HashMap<String, String>) -> u64 {
    let script = r#"
import json, os, sys
from deltalake import DeltaTable
uri, options = sys.argv[1], json.loads(sys.argv[2])
print(DeltaTable(uri, storage_options=options or None).to_pyarrow_table().num_rows)
sys.stdout.flush()
os._exit(0)
"#;
    let options = serde_json::to_string(storage_options).expect("json");
    run_python(script, &[table_uri, &options])
        .trim()
        .parse()
        .expect("row count")
}

async fn pipeline_on(store: Store) {
    let lake = TestLake::new(store);
    let days = producer_days(13, 25, 10, FaultRates::default());
    let records: Vec<_> = days.concat();
    write_bronze(&lake.location, &records, 3_000, ingested_at(10)).await;
    let report = run_once(&lake).await;
    assert_eq!(report.silver.rows_out, records.len() as u64);
    assert!(report.gold.feature_rows > 0);

    // Idempotent on this store too.
    assert!(!run_once(&lake).await.changed());

    for spec in [
        mlops_lake::subscriber_features::daily_spec(),
        mlops_lake::kpi_daily::spec(),
    ] {
        let rows = table_rows(&lake.location, &spec).await.len() as u64;
        let uri = lake.location.table_url(spec.name).to_string();
        assert_eq!(
            python_row_count(&uri, lake.location.options()),
            rows,
            "{}",
            spec.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_on_the_s3_protocol_server() {
    pipeline_on(Store::S3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_on_azurite() {
    pipeline_on(Store::Azure).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gold_is_readable_by_python_deltalake_on_the_local_filesystem() {
    pipeline_on(Store::Local).await;
}
