//! The portal's churn risk, predictions and overview pages over a lake
//! written by the transform, the trainer's two models and a real broker:
//! the ranking is the serving API's, drivers add up to the served score for
//! the linear and the tree model alike, what-ifs score edited rows, and the
//! overview's health reads the lake, Kafka and the registry.

use std::collections::BTreeMap;

use arrow::array::{AsArray, RecordBatch};
use mlops_lake::{bronze, quarantine};
use mlops_registry_client::proto as pb;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use reqwest::StatusCode;
use serde_json::Value;

use crate::portal_client::Browser;
use crate::support::{ADMIN_PASSWORD, MODEL, TestGateway, World};
use crate::trainer_support;

/// The text of the element with `id` (its first text node up to `<`).
fn text_of(body: &str, id: &str) -> String {
    let at = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {body}"));
    let rest = &body[at..];
    let start = rest.find('>').expect("tag end") + 1;
    rest[start..start + rest[start..].find('<').expect("text end")]
        .trim()
        .to_owned()
}

fn number_of(body: &str, id: &str) -> f64 {
    text_of(body, id)
        .parse()
        .unwrap_or_else(|_| panic!("#{id} is not a number"))
}

fn as_pairs(form: &[(String, String)]) -> Vec<(&str, &str)> {
    form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Checks a drill-down against the serving API: same score, drivers that
/// add up to it.
async fn check_drill_down(portal: &mut Browser, gateway: &TestGateway, id: &str, version: i64) {
    let (status, api) = gateway
        .post(
            "/api/v1/churn/score",
            &serde_json::json!({ "subscriber_ids": [id] }),
        )
        .await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(api["model_version"], Value::from(version.to_string()));
    let served = api["scores"][0]["probability"]
        .as_f64()
        .expect("probability");
    let page = portal.get(&format!("/churn/subscribers/{id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!((number_of(&page.body, "score") - served).abs() < 1e-4);
    let total = number_of(&page.body, "driver-total");
    assert!(
        (total - served).abs() < 1e-4,
        "drivers add up to {total}, the score is {served}"
    );
    let drivers = page.body.matches("data-feature=").count();
    assert!((1..=8).contains(&drivers), "{drivers} drivers");
    assert!(page.body.contains(&format!("version {version}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_risk_predictions_and_pipeline_health_show_the_platform() {
    let (lake, _) = trainer_support::world(13, 80, 45).await;
    let mut world = World::new().await;
    let trainer_token = world.registry.token("trainer", pb::Role::Approver).await;
    let config = trainer_support::config(&lake, &world.registry.url, &trainer_token, &[]);
    let summary = trainer_support::train(&config).await.expect("training run");
    let first = summary.best_version;
    let other = *summary
        .versions
        .values()
        .find(|v| **v != first)
        .expect("two candidates");

    // Kafka: 40 events, of which bronze claims the first 25, and 3 dead letters.
    let brokers = crate::registry_support::required_env("TEST_KAFKA_BROKERS");
    let events = crate::registry_support::unique("events");
    let dlq = format!("{events}.dlq");
    let kafka = mlops_bus::KafkaSettings::new(&brokers, "gateway-test");
    kafka
        .ensure_topics(&[
            mlops_bus::TopicSpec {
                name: &events,
                partitions: 1,
            },
            mlops_bus::TopicSpec {
                name: &dlq,
                partitions: 1,
            },
        ])
        .await
        .expect("topics");
    let producer: FutureProducer = kafka.client_config().create().expect("producer");
    for i in 0..40 {
        producer
            .send(
                FutureRecord::<(), _>::to(&events).payload(&format!("event {i}")),
                std::time::Duration::from_secs(10),
            )
            .await
            .expect("send event");
    }
    for reason in ["malformed", "malformed", "unknown_schema_version"] {
        let headers = OwnedHeaders::new().insert(Header {
            key: "dlq-reason",
            value: Some(reason),
        });
        producer
            .send(
                FutureRecord::<(), _>::to(&dlq)
                    .payload("x")
                    .headers(headers),
                std::time::Duration::from_secs(10),
            )
            .await
            .expect("send dead letter");
    }
    let bronze_table = bronze::spec().open(&lake.location).await.expect("bronze");
    mlops_lake::changes::record_progress(
        &bronze_table,
        &mlops_lake::lineage::ingest_app_id(&events, 0),
        24,
    )
    .await
    .expect("progress");

    let root = lake.location.root().to_string();
    let gateway = world
        .gateway(&[
            ("LAKE_URL", &root),
            ("KAFKA_BROKERS", &brokers),
            ("EVENTS_TOPIC", &events),
            ("DLQ_TOPIC", &dlq),
            ("GATEWAY_HEALTH_LAG_RECORDS", "10"),
        ])
        .await;
    gateway.wait_for_champion(first).await;
    gateway
        .wait_until("online features", "/api/v1/churn/at-risk?limit=3", |b| {
            b["subscribers"].as_array().is_some_and(|s| !s.is_empty())
        })
        .await;
    let mut portal = Browser::new(&gateway);
    portal.logged_in("admin", ADMIN_PASSWORD).await;

    // The overview: every area with its reason, and the detail behind them.
    let overview = portal.get("/").await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.body);
    let body = &overview.body;
    assert!(
        body.contains("15 records wait to be ingested (over 10)"),
        "{body}"
    );
    assert!(body.contains("3 records were rejected at ingest"), "{body}");
    assert!(body.contains("promoted"), "the trainer's decision: {body}");
    assert!(body.contains("1 model(s) ready"));
    let bronze_version = bronze::spec()
        .open(&lake.location)
        .await
        .expect("bronze")
        .version()
        .expect("version");
    assert!(body.contains(&format!("data-table=\"bronze/telecom_events\"><th scope=\"row\">bronze/telecom_events</th><td class=\"num\">{bronze_version}</td>")), "{body}");
    assert!(
        body.contains("<td>malformed</td><td class=\"num\">2</td>"),
        "{body}"
    );
    assert!(body.contains("<td>unknown_schema_version</td><td class=\"num\">1</td>"));
    let quarantined = {
        let table = quarantine::spec()
            .open(&lake.location)
            .await
            .expect("quarantine");
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for batch in mlops_lake::read::read_all(&table).await.expect("read") {
            let reasons = batch
                .column_by_name("reason")
                .expect("reason")
                .as_string::<i32>();
            for i in 0..RecordBatch::num_rows(&batch) {
                *counts.entry(reasons.value(i).to_owned()).or_default() += 1;
            }
        }
        counts
    };
    for (reason, n) in &quarantined {
        assert!(
            body.contains(&format!("<td>{reason}</td><td class=\"num\">{n}</td>")),
            "{reason} {n}: {body}"
        );
    }

    // KPIs: per-region totals over the newest 30 days, as gold holds them.
    let kpis = portal.get("/kpis").await;
    assert_eq!(kpis.status, StatusCode::OK, "{}", kpis.body);
    let table = mlops_lake::kpi_daily::spec()
        .open(&lake.location)
        .await
        .expect("kpi");
    let ctx = mlops_lake::query::session().expect("session");
    mlops_lake::query::register(&ctx, "kpi", &table, None)
        .await
        .expect("register");
    let sql = "SELECT event_date, arrow_cast(region, 'Utf8') AS region, calls FROM kpi";
    let batches = ctx
        .sql(sql)
        .await
        .expect("sql")
        .collect()
        .await
        .expect("collect");
    let mut rows: Vec<(i32, String, i64)> = Vec::new();
    for batch in &batches {
        let days = batch
            .column_by_name("event_date")
            .expect("date")
            .as_primitive::<arrow::datatypes::Date32Type>();
        let regions = batch
            .column_by_name("region")
            .expect("region")
            .as_string::<i32>();
        let calls = batch
            .column_by_name("calls")
            .expect("calls")
            .as_primitive::<arrow::datatypes::Int64Type>();
        for i in 0..batch.num_rows() {
            rows.push((days.value(i), regions.value(i).to_owned(), calls.value(i)));
        }
    }
    let last = rows.iter().map(|r| r.0).max().expect("a day");
    let mut calls: BTreeMap<String, i64> = BTreeMap::new();
    for (day, region, n) in &rows {
        if *day > last - 30 {
            *calls.entry(region.clone()).or_default() += n;
        }
    }
    assert!(calls.len() > 1, "several regions");
    for (region, n) in &calls {
        let row = format!("data-region=\"{region}\"><th scope=\"row\">{region}</th>");
        let at = kpis
            .body
            .find(&row)
            .unwrap_or_else(|| panic!("{row} in {}", kpis.body));
        let cells: Vec<&str> = kpis.body[at..]
            .split("<td class=\"num\">")
            .skip(1)
            .take(2)
            .collect();
        assert!(
            cells[1].starts_with(&format!("{n}<")),
            "{region}: calls {n}, row {cells:?}"
        );
    }
    assert_eq!(kpis.body.matches("<figure class=\"chart\"").count(), 6);
    let one = calls.keys().next().expect("a region");
    let filtered = portal.get(&format!("/kpis?region={one}")).await;
    assert_eq!(filtered.body.matches("data-region=").count(), 1);
    let bad = portal.get("/kpis?from=2026-13-01").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("is not a date"));

    // Churn risk: the serving API's ranking, filtered on the server.
    let (_, api) = gateway.get("/api/v1/churn/at-risk?limit=5").await;
    let page = portal.get("/churn?limit=5").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for s in api["subscribers"].as_array().expect("subscribers") {
        let id = s["subscriber_id"].as_str().expect("id");
        let p = s["probability"].as_f64().expect("probability");
        assert!(
            page.body
                .contains(&format!(">{id}</a></td><td class=\"num\">{p:.4}</td>")),
            "{id} {p}: {}",
            page.body
        );
    }
    let region = api["subscribers"][0]["region"]
        .as_str()
        .expect("region")
        .to_owned();
    let filtered = portal
        .get(&format!("/churn?region={region}&limit=1000"))
        .await;
    let (_, api_region) = gateway
        .get(&format!("/api/v1/churn/at-risk?limit=1000&region={region}"))
        .await;
    let listed = api_region["subscribers"]
        .as_array()
        .expect("subscribers")
        .len();
    assert_eq!(filtered.body.matches("/churn/subscribers/").count(), listed);
    assert_eq!(
        portal.get("/churn?limit=0").await.status,
        StatusCode::BAD_REQUEST
    );

    // Drill-down: drivers add up to the served score, for both models.
    let top = api["subscribers"][0]["subscriber_id"]
        .as_str()
        .expect("id")
        .to_owned();
    check_drill_down(&mut portal, &gateway, &top, first).await;
    let page = portal.get(&format!("/churn/subscribers/{top}")).await;
    let shown = page
        .body
        .split("id=\"history\"")
        .nth(1)
        .expect("history")
        .matches("<tr>")
        .count()
        - 1;
    let daily = mlops_lake::subscriber_features::daily_spec()
        .open(&lake.location)
        .await
        .expect("daily");
    let mut days = 0;
    for batch in mlops_lake::read::read_all(&daily).await.expect("read") {
        let ids = batch
            .column_by_name("subscriber_id")
            .expect("id")
            .as_string::<i32>();
        days += (0..batch.num_rows())
            .filter(|&i| ids.value(i) == top)
            .count();
    }
    assert_eq!(shown, days.min(30), "the last 30 of {days} days");
    assert_eq!(
        portal.get("/churn/subscribers/nobody").await.status,
        StatusCode::NOT_FOUND
    );
    world.set_alias(MODEL, "champion", other).await;
    gateway.wait_for_champion(other).await;
    check_drill_down(&mut portal, &gateway, &top, other).await;

    // Predictions: the same values score the same; an edit moves the score.
    let page = portal.get(&format!("/predict?subscriber={top}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = Browser::csrf(&page);
    let original = number_of(&page.body, "score");
    let value = |name: &str| {
        let at = page.body.find(&format!("name=\"{name}\"")).expect(name);
        let rest = &page.body[at..];
        let v = rest.find("value=\"").expect("value") + 7;
        rest[v..v + rest[v..].find('"').expect("quote")].to_owned()
    };
    let mut form: Vec<(String, String)> = vec![
        ("csrf".into(), csrf.clone()),
        ("subscriber".into(), top.clone()),
    ];
    for f in mlops_features::FEATURES {
        form.push((f.name.into(), value(f.name)));
    }
    // The selects as a browser posts them: the subscriber's region and plan.
    for field in ["region", "plan"] {
        let v = api["subscribers"][0][field].as_str().unwrap_or_default();
        form.push((field.into(), v.into()));
    }
    let same = portal.post("/predict", &as_pairs(&form)).await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.body);
    assert!((number_of(&same.body, "what-if-score") - original).abs() < 1e-6);
    for (k, v) in form.iter_mut() {
        match k.as_str() {
            "unresolved_tickets_30d" | "tickets_30d" => *v = "12".into(),
            "days_since_last_activity" => *v = "25".into(),
            "active_days_30d" => *v = "2".into(),
            _ => {}
        }
    }
    let edited = portal.post("/predict", &as_pairs(&form)).await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    let moved = number_of(&edited.body, "what-if-score");
    assert!((moved - original).abs() > 1e-4, "{original} -> {moved}");
    let total = number_of(&edited.body, "driver-total");
    assert!(
        (total - moved).abs() < 1e-4,
        "the what-if's drivers add up to its score"
    );
    for (k, v) in form.iter_mut() {
        if k == "calls_7d" {
            *v = "1.5".into();
        }
    }
    let bad = portal.post("/predict", &as_pairs(&form)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("calls_7d takes whole numbers, not 1.5"),
        "{}",
        bad.body
    );
    gateway.stop().await;
}
