//! The portal's SQL console over a lake written by the real transform:
//! answers equal what the Delta tables hold, nothing but queries runs,
//! roles decide what is readable, limits cut long results, history is
//! per user.

use std::collections::BTreeMap;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use mlops_lake::{TableSpec, kpi_daily, silver};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::lake_support::TestLake;
use crate::portal_client::Browser;
use crate::support::{ADMIN_PASSWORD, World};
use crate::trainer_support;

async fn batches(lake: &TestLake, spec: TableSpec) -> (u64, Vec<RecordBatch>) {
    let table = spec.open(&lake.location).await.expect("open");
    let version = table.version().expect("version");
    (
        version,
        mlops_lake::read::read_all(&table).await.expect("read"),
    )
}

fn rows(response: &Value) -> Vec<Vec<Value>> {
    serde_json::from_value(response["rows"].clone()).expect("rows")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_console_reads_the_lake_and_nothing_else() {
    let (lake, _) = trainer_support::world(7, 40, 20).await;
    let world = World::new().await;
    let root = lake.location.root().to_string();
    let gateway = world
        .gateway(&[("LAKE_URL", &root), ("GATEWAY_SQL_MAX_ROWS", "25")])
        .await;

    let mut admin = Browser::new(&gateway);
    let csrf = admin.logged_in("admin", ADMIN_PASSWORD).await;
    for (name, role) in [
        ("vic", "viewer"),
        ("ana", "analyst"),
        ("dana", "data-scientist"),
    ] {
        let created = admin
            .create_account(&csrf, name, role, "console-password-1")
            .await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    }

    // A viewer is refused the page and its API, on the server.
    let mut vic = Browser::new(&gateway);
    let vic_csrf = vic.logged_in("vic", "console-password-1").await;
    assert!(!vic.get("/").await.body.contains("href=\"/sql\""));
    let page = vic.get("/sql").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        page.body
            .contains("needs the <strong>analyst</strong> role"),
        "{}",
        page.body
    );
    let api = vic
        .post_json("/sql/api", &vic_csrf, &json!({"sql": "SELECT 1"}))
        .await;
    assert_eq!(api.status, StatusCode::FORBIDDEN);
    assert!(
        api.body
            .contains("needs the analyst role; vic has the viewer role"),
        "{}",
        api.body
    );

    // An analyst's answer equals the table's contents.
    let mut ana = Browser::new(&gateway);
    let ana_csrf = ana.logged_in("ana", "console-password-1").await;
    let sql = "SELECT region, sum(calls) AS calls, sum(churn_events) AS churn \
               FROM gold.kpi_daily GROUP BY region ORDER BY region";
    let answer = ana
        .post_json("/sql/api", &ana_csrf, &json!({ "sql": sql }))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let answer: Value = serde_json::from_str(&answer.body).expect("json");
    assert_eq!(answer["columns"], json!(["region", "calls", "churn"]));
    let (kpi_version, kpi) = batches(&lake, kpi_daily::spec()).await;
    let mut expected: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for batch in &kpi {
        let regions = batch
            .column_by_name("region")
            .expect("region")
            .as_string::<i32>();
        let calls = batch
            .column_by_name("calls")
            .expect("calls")
            .as_primitive::<Int64Type>();
        let churn = batch
            .column_by_name("churn_events")
            .expect("churn_events")
            .as_primitive::<Int64Type>();
        for i in 0..batch.num_rows() {
            let entry = expected.entry(regions.value(i).to_owned()).or_default();
            entry.0 += calls.value(i);
            entry.1 += churn.value(i);
        }
    }
    let expected: Vec<Vec<Value>> = expected
        .iter()
        .map(|(r, (c, e))| vec![json!(r), json!(c.to_string()), json!(e.to_string())])
        .collect();
    assert!(expected.len() > 1, "the world has several regions");
    assert_eq!(rows(&answer), expected);
    assert_eq!(answer["versions"]["gold.kpi_daily"], json!(kpi_version));
    assert_eq!(answer["truncated"], json!(false));

    // The same through the page's form, as a table and as CSV.
    let page = ana
        .post(
            "/sql",
            &[("csrf", &ana_csrf), ("sql", sql), ("format", "table")],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains(&format!("{} rows in", expected.len())),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("gold.kpi_daily version {kpi_version}"))
    );
    let csv = ana
        .post(
            "/sql",
            &[("csrf", &ana_csrf), ("sql", sql), ("format", "csv")],
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.content_type, "text/csv; charset=utf-8");
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines[0], "region,calls,churn");
    assert_eq!(lines.len(), expected.len() + 1);
    assert_eq!(
        lines[1],
        format!(
            "{},{},{}",
            expected[0][0].as_str().expect("region"),
            expected[0][1].as_str().expect("calls"),
            expected[0][2].as_str().expect("churn")
        )
    );

    // Nothing but a query runs, and the table is untouched.
    let drop = ana
        .post(
            "/sql",
            &[
                ("csrf", &ana_csrf),
                ("sql", "DROP TABLE gold.kpi_daily"),
                ("format", "table"),
            ],
        )
        .await;
    assert_eq!(drop.status, StatusCode::BAD_REQUEST);
    assert!(
        drop.body
            .contains("only queries are accepted (SELECT, WITH, VALUES): DROP TABLE is refused"),
        "{}",
        drop.body
    );
    for sql in [
        "DELETE FROM gold.kpi_daily",
        "CREATE TABLE gold.copy AS SELECT * FROM gold.kpi_daily",
        "COPY gold.kpi_daily TO '/tmp/kpi.csv'",
    ] {
        let refused = ana
            .post_json("/sql/api", &ana_csrf, &json!({ "sql": sql }))
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{sql}");
        assert!(
            refused.body.contains("only queries are accepted"),
            "{sql}: {}",
            refused.body
        );
    }
    assert_eq!(batches(&lake, kpi_daily::spec()).await.0, kpi_version);

    // Bad SQL is named; the API needs its CSRF header and a session.
    let bad = ana
        .post_json(
            "/sql/api",
            &ana_csrf,
            &json!({"sql": "SELECT nope FROM gold.kpi_daily"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("nope"), "{}", bad.body);
    let forged = ana
        .post_json("/sql/api", "forged", &json!({"sql": "SELECT 1"}))
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let anonymous = Browser::new(&gateway)
        .post_json("/sql/api", "", &json!({"sql": "SELECT 1"}))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(anonymous.body.contains("log in to the portal first"));

    // Silver is for data scientists; long results are cut at the limit.
    let silver_sql = "SELECT count(*) AS events FROM silver.telecom_events";
    let refused = ana
        .post_json("/sql/api", &ana_csrf, &json!({ "sql": silver_sql }))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused
            .body
            .contains("silver.telecom_events is not available to your role"),
        "{}",
        refused.body
    );
    let mut dana = Browser::new(&gateway);
    let dana_csrf = dana.logged_in("dana", "console-password-1").await;
    let counted = dana
        .post_json("/sql/api", &dana_csrf, &json!({ "sql": silver_sql }))
        .await;
    assert_eq!(counted.status, StatusCode::OK, "{}", counted.body);
    let (_, events) = batches(&lake, silver::spec()).await;
    let events: usize = events.iter().map(RecordBatch::num_rows).sum();
    assert!(events > 1000);
    assert_eq!(
        rows(&serde_json::from_str(&counted.body).expect("json")),
        [[json!(events.to_string())]]
    );
    let long = dana
        .post_json(
            "/sql/api",
            &dana_csrf,
            &json!({"sql": "SELECT * FROM gold.subscriber_features_daily"}),
        )
        .await;
    let long: Value = serde_json::from_str(&long.body).expect("json");
    assert_eq!(rows(&long).len(), 25);
    assert_eq!(long["truncated"], json!(true));

    // History: each user sees their own queries, refusals included.
    let page = ana.get("/sql").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("DROP TABLE gold.kpi_daily"),
        "{}",
        page.body
    );
    assert!(page.body.contains("is not available to your role"));
    assert!(page.body.contains(&format!("{} rows", expected.len())));
    let dana_page = dana.get("/sql").await;
    assert!(!dana_page.body.contains("DROP TABLE gold.kpi_daily"));
    // The newest entry first: ana's silver query, refused.
    let newest = page
        .body
        .split("/sql?history=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a history link")
        .to_owned();
    let in_editor = format!(">{silver_sql}</textarea>");
    let own = ana.get(&format!("/sql?history={newest}")).await;
    assert!(own.body.contains(&in_editor), "{}", own.body);
    let others = dana.get(&format!("/sql?history={newest}")).await;
    assert_eq!(others.status, StatusCode::OK);
    assert!(
        !others.body.contains(&in_editor),
        "another user's query is not loaded"
    );
    gateway.stop().await;
}
