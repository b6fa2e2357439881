//! Bronze on every supported store — local filesystem, an S3-protocol server
//! (moto, with conditional writes) and Azure Blob (Azurite) — and readable by
//! an independent Delta reader (the `deltalake` Python package).

mod support;

use std::collections::HashMap;
use std::time::Duration;

use support::*;

/// Produces a small backfill, ingests it and returns the number of records.
async fn ingest_into(lake: &TestLake) -> u64 {
    let topic = unique("events");
    let sent = produce(&topic, 2, &["--subscribers", "60", "--days", "2"]).await;
    let env = ingest_env(&topic, &unique("group"), lake, &[]);
    let ingest = RunningIngest::start(ingest_config(&env, lake)).await;
    eventually(Duration::from_secs(90), "bronze complete", || async {
        bronze_offsets(&lake.location).await.len() as u64 >= sent.total
    })
    .await;
    ingest.stop().await;
    let offsets = bronze_offsets(&lake.location).await;
    assert_no_duplicates(&offsets);
    assert_eq!(offsets.len() as u64, sent.total);
    sent.total
}

/// What the `deltalake` Python package reads from the bronze table.
fn python_reader(table_uri: &str, storage_options: &HashMap<String, String>) -> serde_json::Value {
    let script = r#"
import json, os, sys
from deltalake import DeltaTable
uri, options = sys.argv[1], json.loads(sys.argv[2])
table = DeltaTable(uri, storage_options=options or None)
data = table.to_pyarrow_table(columns=["kafka_partition", "kafka_offset", "event_date", "event_kind"])
keys = set(zip(data.column("kafka_partition").to_pylist(), data.column("kafka_offset").to_pylist()))
print(json.dumps({
    "rows": data.num_rows,
    "distinct_offsets": len(keys),
    "partition_columns": table.metadata().partition_columns,
    "kinds": sorted(set(data.column("event_kind").to_pylist())),
    "dates": len(set(data.column("event_date").to_pylist())),
}))
# The package's native threads sometimes abort the interpreter's normal
# teardown (exit status 134 after all output); the report is complete here.
sys.stdout.flush()
os._exit(0)
"#;
    let options = serde_json::to_string(storage_options).expect("json");
    let output = run_python(script, &[table_uri, &options]);
    serde_json::from_str(&output).expect("reader output")
}

fn assert_reader_agrees(report: &serde_json::Value, rows: u64) {
    assert_eq!(report["rows"], rows, "{report}");
    assert_eq!(report["distinct_offsets"], rows, "{report}");
    assert_eq!(
        report["partition_columns"],
        serde_json::json!(["event_date"]),
        "{report}"
    );
    assert!(report["dates"].as_u64().expect("dates") >= 2, "{report}");
    for kind in ["activation", "call", "data_session", "sms"] {
        assert!(
            report["kinds"]
                .as_array()
                .expect("kinds")
                .iter()
                .any(|k| k == kind),
            "{kind}: {report}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bronze_on_the_local_filesystem_is_read_by_python_deltalake() {
    let lake = TestLake::new(Store::Local);
    let rows = ingest_into(&lake).await;
    let uri = lake.location.table_url(mlops_lake::bronze::TABLE);
    let path = uri.to_file_path().expect("local");
    let report = python_reader(path.to_str().expect("utf-8"), &HashMap::new());
    assert_reader_agrees(&report, rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bronze_on_s3_is_read_by_python_deltalake() {
    let lake = TestLake::new(Store::S3);
    let rows = ingest_into(&lake).await;
    let options = HashMap::from([
        (
            "AWS_ENDPOINT_URL".to_string(),
            required_env("TEST_S3_ENDPOINT"),
        ),
        ("AWS_ALLOW_HTTP".to_string(), "true".to_string()),
        ("AWS_ACCESS_KEY_ID".to_string(), "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), "test".to_string()),
        ("AWS_REGION".to_string(), "us-east-1".to_string()),
    ]);
    let uri = lake.location.table_url(mlops_lake::bronze::TABLE);
    assert_reader_agrees(&python_reader(uri.as_str(), &options), rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bronze_on_azure_blob() {
    let lake = TestLake::new(Store::Azure);
    ingest_into(&lake).await;
}
