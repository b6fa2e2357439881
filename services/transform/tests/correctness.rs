//! Gold values against an independent computation: plain Rust over the
//! producer's decoded events, written from the feature definitions' text,
//! sharing no code with the transform or the features library.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Date32Type, Float64Type, Int64Type};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use mlops_features::FeatureRow;
use mlops_features::row as feature_row;
use mlops_lake::{kpi_daily, subscriber_features};
use mlops_producer::FaultRates;
use mlops_proto::events::v1::{TelecomEvent, TicketResolution, telecom_event::Payload};
use prost::Message;
use support::*;

struct Event {
    subscriber: String,
    time: DateTime<Utc>,
    date: NaiveDate,
    payload: Payload,
}

/// The events as silver should hold them: decodable, first copy of each id.
fn unique_events(days: &[Vec<mlops_producer::Outgoing>]) -> Vec<Event> {
    let mut seen = HashSet::new();
    let mut events = Vec::new();
    for record in days.iter().flatten() {
        let Ok(event) = TelecomEvent::decode(record.payload.as_slice()) else {
            continue;
        };
        let (Some(ts), Some(payload)) = (event.event_time, event.payload) else {
            continue;
        };
        if event.event_id.is_empty() || !seen.insert(event.event_id.clone()) {
            continue;
        }
        let time = DateTime::from_timestamp(ts.seconds, ts.nanos as u32).expect("time");
        events.push(Event {
            subscriber: event.subscriber_id,
            time,
            date: time.date_naive(),
            payload,
        });
    }
    events
}

fn is_usage(payload: &Payload) -> bool {
    matches!(
        payload,
        Payload::Call(_) | Payload::Sms(_) | Payload::DataSession(_) | Payload::TopUp(_)
    )
}

/// Expected feature rows, by (subscriber, day).
fn expected_features(events: &[Event]) -> BTreeMap<(String, NaiveDate), FeatureRow> {
    let last_day = events.iter().map(|e| e.date).max().expect("events");
    let mut by_subscriber: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    for event in events {
        by_subscriber
            .entry(&event.subscriber)
            .or_default()
            .push(event);
    }
    let mut rows = BTreeMap::new();
    for (subscriber, mut own) in by_subscriber {
        own.sort_by_key(|e| e.time);
        let first = own.iter().map(|e| e.date).min().expect("one event");
        let churn = own
            .iter()
            .find(|e| matches!(e.payload, Payload::Churn(_)))
            .map(|e| e.date);
        let activation = own.iter().find_map(|e| match &e.payload {
            Payload::Activation(a) => Some(a.clone()),
            _ => None,
        });
        let changes: Vec<(NaiveDate, i64, i64, String)> = own
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::PlanChange(c) => Some((
                    e.date,
                    c.old_price_cents,
                    c.new_price_cents,
                    c.new_plan.clone(),
                )),
                _ => None,
            })
            .collect();
        let price = |day: NaiveDate| -> Option<i64> {
            if let Some(change) = changes.iter().rev().find(|c| c.0 <= day) {
                return Some(change.2);
            }
            changes
                .first()
                .map(|c| c.1)
                .or(activation.as_ref().map(|a| a.monthly_price_cents))
        };
        let mut day = first;
        while day <= churn.unwrap_or(last_day).min(last_day) {
            let within = |days: i64| {
                own.iter()
                    .filter(move |e| e.date <= day && e.date > day - Duration::days(days))
            };
            let calls = |days| {
                within(days)
                    .filter_map(|e| match &e.payload {
                        Payload::Call(c) => Some(c.dropped),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            };
            let rate = |calls: &[bool]| {
                if calls.is_empty() {
                    0.0
                } else {
                    calls.iter().filter(|d| **d).count() as f64 / calls.len() as f64
                }
            };
            let bytes = |days| -> i64 {
                within(days)
                    .map(|e| match &e.payload {
                        Payload::DataSession(s) => (s.bytes_up + s.bytes_down) as i64,
                        _ => 0,
                    })
                    .sum()
            };
            let count = |days, f: &dyn Fn(&Payload) -> bool| {
                within(days).filter(|e| f(&e.payload)).count() as i64
            };
            let active_days: HashSet<NaiveDate> = within(30)
                .filter(|e| is_usage(&e.payload))
                .map(|e| e.date)
                .collect();
            let (b7, b30) = (bytes(7), bytes(30));
            let features = mlops_features::FeatureVector {
                tenure_days: activation.as_ref().map(|a| {
                    let at = a.activated_at.expect("activated_at");
                    let at = DateTime::from_timestamp(at.seconds, 0).expect("time");
                    (day - at.date_naive()).num_days()
                }),
                plan_price_cents: price(day),
                price_change_30d_cents: price(day)
                    .zip(price(day - Duration::days(30)))
                    .map(|(a, b)| a - b),
                calls_7d: calls(7).len() as i64,
                calls_30d: calls(30).len() as i64,
                dropped_call_rate_7d: rate(&calls(7)),
                dropped_call_rate_30d: rate(&calls(30)),
                sms_30d: count(30, &|p| matches!(p, Payload::Sms(_))),
                data_mb_7d: b7 as f64 / 1e6,
                data_mb_30d: b30 as f64 / 1e6,
                data_trend: if b30 == 0 {
                    0.0
                } else {
                    (b7 as f64 / 7.0) / (b30 as f64 / 30.0)
                },
                top_ups_30d: count(30, &|p| matches!(p, Payload::TopUp(_))),
                top_up_cents_30d: within(30)
                    .map(|e| match &e.payload {
                        Payload::TopUp(t) => t.amount_cents,
                        _ => 0,
                    })
                    .sum(),
                tickets_30d: count(30, &|p| matches!(p, Payload::SupportTicket(_))),
                unresolved_tickets_30d: count(30, &|p| {
                    matches!(p, Payload::SupportTicket(t)
                        if t.resolution == TicketResolution::Unresolved as i32
                            || t.resolution == TicketResolution::Open as i32)
                }),
                active_days_30d: active_days.len() as i64,
                days_since_last_activity: active_days
                    .iter()
                    .max()
                    .map_or(30, |last| (day - *last).num_days()),
            };
            let plan = changes
                .iter()
                .rev()
                .find(|c| c.0 <= day)
                .map(|c| c.3.clone())
                .or(activation.as_ref().map(|a| a.plan.clone()));
            rows.insert(
                (subscriber.to_string(), day),
                FeatureRow {
                    subscriber_id: subscriber.to_string(),
                    as_of_date: day,
                    region: activation.as_ref().map(|a| a.region.clone()),
                    plan,
                    churned: churn == Some(day),
                    features,
                },
            );
            day += Duration::days(1);
        }
    }
    rows
}

/// Expected KPIs by (day, region): [active, calls, dropped, bytes, top-up
/// cents, tickets, unresolved, churns].
fn expected_kpis(events: &[Event]) -> BTreeMap<(NaiveDate, String), [i64; 8]> {
    let region: HashMap<&str, String> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Activation(a) => Some((e.subscriber.as_str(), a.region.clone())),
            _ => None,
        })
        .collect();
    let mut kpis: BTreeMap<(NaiveDate, String), [i64; 8]> = BTreeMap::new();
    let mut active: HashSet<(NaiveDate, &str)> = HashSet::new();
    for event in events {
        let region = region
            .get(event.subscriber.as_str())
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        let kpi = kpis.entry((event.date, region)).or_default();
        if is_usage(&event.payload) && active.insert((event.date, &event.subscriber)) {
            kpi[0] += 1;
        }
        match &event.payload {
            Payload::Call(c) => {
                kpi[1] += 1;
                kpi[2] += i64::from(c.dropped);
            }
            Payload::DataSession(s) => kpi[3] += (s.bytes_up + s.bytes_down) as i64,
            Payload::TopUp(t) => kpi[4] += t.amount_cents,
            Payload::SupportTicket(t) => {
                kpi[5] += 1;
                if t.resolution == TicketResolution::Unresolved as i32
                    || t.resolution == TicketResolution::Open as i32
                {
                    kpi[6] += 1;
                }
            }
            Payload::Churn(_) => kpi[7] += 1,
            _ => {}
        }
    }
    kpis
}

fn assert_features_equal(actual: &FeatureRow, expected: &FeatureRow) {
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    let (a, e) = (&actual.features, &expected.features);
    let key = format!("{} {}", expected.subscriber_id, expected.as_of_date);
    assert_eq!(
        (&actual.region, &actual.plan, actual.churned),
        (&expected.region, &expected.plan, expected.churned),
        "{key}"
    );
    assert_eq!(
        (a.tenure_days, a.plan_price_cents, a.price_change_30d_cents),
        (e.tenure_days, e.plan_price_cents, e.price_change_30d_cents),
        "{key}: profile features"
    );
    assert_eq!(
        [
            a.calls_7d,
            a.calls_30d,
            a.sms_30d,
            a.top_ups_30d,
            a.top_up_cents_30d,
            a.tickets_30d,
            a.unresolved_tickets_30d,
            a.active_days_30d,
            a.days_since_last_activity
        ],
        [
            e.calls_7d,
            e.calls_30d,
            e.sms_30d,
            e.top_ups_30d,
            e.top_up_cents_30d,
            e.tickets_30d,
            e.unresolved_tickets_30d,
            e.active_days_30d,
            e.days_since_last_activity
        ],
        "{key}: counts"
    );
    for (name, x, y) in [
        (
            "dropped_call_rate_7d",
            a.dropped_call_rate_7d,
            e.dropped_call_rate_7d,
        ),
        (
            "dropped_call_rate_30d",
            a.dropped_call_rate_30d,
            e.dropped_call_rate_30d,
        ),
        ("data_mb_7d", a.data_mb_7d, e.data_mb_7d),
        ("data_mb_30d", a.data_mb_30d, e.data_mb_30d),
        ("data_trend", a.data_trend, e.data_trend),
    ] {
        assert!(close(x, y), "{key}: {name} is {x}, expected {y}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gold_matches_an_independent_computation_of_every_value() {
    let lake = TestLake::new(Store::Local);
    let days = producer_days(
        11,
        120,
        45,
        FaultRates {
            duplicate: 0.03,
            late: 0.05,
            malformed: 0.01,
        },
    );
    let records: Vec<_> = days.iter().flatten().cloned().collect();
    write_bronze(&lake.location, &records, 4_000, ingested_at(45)).await;
    let report = run_once(&lake).await;

    let events = unique_events(&days);
    assert_eq!(report.silver.rows_out, events.len() as u64, "{report:?}");
    assert!(
        report.silver.duplicates > 0,
        "the run had duplicates to drop"
    );
    assert_eq!(report.silver.quarantined, 0);

    let expected = expected_features(&events);
    let mut actual = BTreeMap::new();
    for batch in query_table(
        &lake.location,
        &subscriber_features::daily_spec(),
        "SELECT * FROM t",
    )
    .await
    {
        for row in feature_row::from_record_batch(&batch).expect("rows") {
            actual.insert((row.subscriber_id.clone(), row.as_of_date), row);
        }
    }
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "one row per subscriber per day, first event to churn"
    );
    for (key, row) in &expected {
        assert_features_equal(&actual[key], row);
    }
    assert!(
        expected.values().any(|r| r.churned),
        "the run includes churners"
    );
    assert!(
        expected
            .values()
            .any(|r| r.features.price_change_30d_cents != Some(0)),
        "the run includes price changes"
    );

    // The latest table holds each subscriber's last row.
    let mut latest_expected: BTreeMap<&str, &FeatureRow> = BTreeMap::new();
    for row in expected.values() {
        latest_expected.insert(&row.subscriber_id, row);
    }
    let latest: Vec<FeatureRow> = query_table(
        &lake.location,
        &subscriber_features::latest_spec(),
        "SELECT * FROM t ORDER BY subscriber_id",
    )
    .await
    .iter()
    .flat_map(|b| feature_row::from_record_batch(b).expect("rows"))
    .collect();
    assert_eq!(latest.len(), latest_expected.len());
    for row in &latest {
        let expected = latest_expected[row.subscriber_id.as_str()];
        assert_eq!(row.as_of_date, expected.as_of_date, "{}", row.subscriber_id);
        assert_features_equal(row, expected);
    }

    let expected_kpis = expected_kpis(&events);
    let mut actual_kpis = BTreeMap::new();
    for batch in query_table(&lake.location, &kpi_daily::spec(), "SELECT * FROM t").await {
        let date = arrow::compute::cast(
            batch.column_by_name("event_date").expect("date"),
            &arrow::datatypes::DataType::Date32,
        )
        .expect("cast");
        let region = arrow::compute::cast(
            batch.column_by_name("region").expect("region"),
            &arrow::datatypes::DataType::Utf8,
        )
        .expect("cast");
        let long = |name: &str| {
            batch
                .column_by_name(name)
                .expect(name)
                .as_primitive::<Int64Type>()
                .clone()
        };
        let columns = [
            "active_subscribers",
            "calls",
            "dropped_calls",
            "data_bytes",
            "top_up_revenue_cents",
            "tickets",
            "unresolved_tickets",
            "churn_events",
        ]
        .map(long);
        let rate = batch
            .column_by_name("dropped_call_rate")
            .expect("rate")
            .as_primitive::<Float64Type>()
            .clone();
        for row in 0..batch.num_rows() {
            let day = NaiveDate::default()
                + Duration::days(i64::from(date.as_primitive::<Date32Type>().value(row)));
            let values = columns.each_ref().map(|c| c.value(row));
            let expected_rate = if values[1] == 0 {
                0.0
            } else {
                values[2] as f64 / values[1] as f64
            };
            assert!((rate.value(row) - expected_rate).abs() < 1e-12);
            assert!(!region.is_null(row));
            actual_kpis.insert(
                (day, region.as_string::<i32>().value(row).to_string()),
                values,
            );
        }
    }
    assert_eq!(actual_kpis, expected_kpis);
}
