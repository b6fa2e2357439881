"""The transform's job done by DuckDB, as the benchmark's baseline.

Reads the bronze Delta table's current files, applies the same checks and
deduplication, writes silver, and computes and writes the gold aggregations
(daily activity, subscriber features per day with 7/30-day windows, latest
features, KPIs per region per day) as Parquet. Prints one JSON line with the
elapsed seconds and the row counts, which the benchmark compares with the
transform's own.

usage: bench_transform_duckdb.py LAKE_DIR OUT_DIR
"""

import json
import os
import sys
import time

import duckdb
from deltalake import DeltaTable

lake, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
started = time.perf_counter()
files = DeltaTable(os.path.join(lake, "bronze/telecom_events")).file_uris()
con = duckdb.connect()
con.execute("SET threads TO %d" % (os.cpu_count() or 2))
con.execute("SET TimeZone = 'UTC'")
files = [f.removeprefix("file://") for f in files]
con.read_parquet(files, hive_partitioning=True).create_view("bronze")

kinds = "'call','sms','data_session','top_up','plan_change','support_ticket','churn','activation'"
invalid = f"""
    event_kind NOT IN ({kinds})
    OR event_time > ingested_at + INTERVAL 3600 SECOND
    OR (event_kind = 'call' AND (call_duration_seconds IS NULL OR call_dropped IS NULL
        OR call_duration_seconds < 0 OR call_duration_seconds > 86400))
    OR (event_kind = 'data_session' AND (data_bytes_up IS NULL OR data_bytes_down IS NULL
        OR data_duration_seconds IS NULL OR data_duration_seconds < 0
        OR data_duration_seconds > 86400 OR data_bytes_up < 0 OR data_bytes_down < 0
        OR data_bytes_up > 1000000000000 OR data_bytes_down > 1000000000000
        OR data_network_type LIKE 'unknown%'))
    OR (event_kind = 'top_up' AND (top_up_amount_cents IS NULL
        OR top_up_amount_cents < 1 OR top_up_amount_cents > 100000))
    OR (event_kind = 'plan_change' AND (plan_old_price_cents IS NULL OR plan_new_price_cents IS NULL
        OR plan_old_price_cents NOT BETWEEN 0 AND 100000
        OR plan_new_price_cents NOT BETWEEN 0 AND 100000))
    OR (event_kind = 'support_ticket' AND (ticket_id IS NULL OR ticket_resolution IS NULL
        OR ticket_category LIKE 'unknown%' OR ticket_resolution LIKE 'unknown%'))
    OR (event_kind = 'activation' AND (activation_monthly_price_cents IS NULL
        OR activation_activated_at IS NULL
        OR activation_monthly_price_cents NOT BETWEEN 0 AND 100000))
    OR (event_kind = 'churn' AND churn_reason LIKE 'unknown%')
"""
con.execute(
    f"""
    CREATE TABLE quarantine AS SELECT * FROM bronze WHERE {invalid};
    CREATE TABLE silver AS
    SELECT * EXCLUDE (copy, schema_version) FROM (
        SELECT *, row_number() OVER (
            PARTITION BY event_id ORDER BY kafka_topic, kafka_partition, kafka_offset) AS copy
        FROM bronze WHERE NOT ({invalid})
    ) WHERE copy = 1;
    """
)
con.execute(f"COPY silver TO '{out}/silver' (FORMAT parquet, PARTITION_BY (event_date), OVERWRITE)")

con.execute(
    """
    CREATE TABLE activity AS
    SELECT subscriber_id, event_date AS day,
      count(*) FILTER (WHERE event_kind = 'call') AS calls,
      count(*) FILTER (WHERE event_kind = 'call' AND call_dropped) AS dropped,
      count(*) FILTER (WHERE event_kind = 'sms') AS sms,
      count(*) FILTER (WHERE event_kind = 'data_session') AS sessions,
      coalesce(sum(data_bytes_up + data_bytes_down) FILTER (WHERE event_kind = 'data_session'), 0) AS bytes,
      count(*) FILTER (WHERE event_kind = 'top_up') AS top_ups,
      coalesce(sum(top_up_amount_cents) FILTER (WHERE event_kind = 'top_up'), 0) AS top_up_cents,
      count(*) FILTER (WHERE event_kind = 'support_ticket') AS tickets,
      count(*) FILTER (WHERE event_kind = 'support_ticket'
                       AND ticket_resolution IN ('open', 'unresolved')) AS unresolved,
      count(*) FILTER (WHERE event_kind = 'churn') AS churns
    FROM silver GROUP BY ALL;

    CREATE TABLE profile AS
    SELECT subscriber_id,
      min(event_date) AS first_seen,
      min(event_date) FILTER (WHERE event_kind = 'churn') AS churned_on,
      arg_min(activation_region, event_time) FILTER (WHERE event_kind = 'activation') AS region,
      arg_min(activation_plan, event_time) FILTER (WHERE event_kind = 'activation') AS plan,
      arg_min(activation_monthly_price_cents, event_time) FILTER (WHERE event_kind = 'activation') AS price,
      arg_min(activation_activated_at, event_time) FILTER (WHERE event_kind = 'activation') AS activated_at
    FROM silver GROUP BY subscriber_id;

    CREATE TABLE changes AS
    SELECT subscriber_id, event_date AS day, event_time, plan_new,
           plan_old_price_cents AS old_price, plan_new_price_cents AS new_price
    FROM silver WHERE event_kind = 'plan_change';

    CREATE TABLE spine AS
    SELECT p.subscriber_id, CAST(unnest(generate_series(
             CAST(p.first_seen AS TIMESTAMP),
             CAST(least(coalesce(p.churned_on, m.last_day), m.last_day) AS TIMESTAMP),
             INTERVAL 1 DAY)) AS DATE) AS day
    FROM profile p, (SELECT max(event_date) AS last_day FROM silver) m;
    """
)
con.execute(
    """
    CREATE TABLE features AS
    WITH daily AS (
      SELECT s.subscriber_id, s.day,
        coalesce(a.calls, 0) AS calls, coalesce(a.dropped, 0) AS dropped,
        coalesce(a.sms, 0) AS sms, coalesce(a.bytes, 0) AS bytes,
        coalesce(a.top_ups, 0) AS top_ups, coalesce(a.top_up_cents, 0) AS top_up_cents,
        coalesce(a.tickets, 0) AS tickets, coalesce(a.unresolved, 0) AS unresolved,
        CASE WHEN coalesce(a.calls + a.sms + a.sessions + a.top_ups, 0) > 0
             THEN s.day END AS active_day
      FROM spine s LEFT JOIN activity a USING (subscriber_id, day)
    ), windows AS (
      SELECT subscriber_id, day,
        sum(calls) OVER w7 AS calls_7d, sum(calls) OVER w30 AS calls_30d,
        sum(dropped) OVER w7 AS dropped_7d, sum(dropped) OVER w30 AS dropped_30d,
        sum(sms) OVER w30 AS sms_30d,
        sum(bytes) OVER w7 AS bytes_7d, sum(bytes) OVER w30 AS bytes_30d,
        sum(top_ups) OVER w30 AS top_ups_30d, sum(top_up_cents) OVER w30 AS top_up_cents_30d,
        sum(tickets) OVER w30 AS tickets_30d, sum(unresolved) OVER w30 AS unresolved_tickets_30d,
        count(active_day) OVER w30 AS active_days_30d,
        max(active_day) OVER w30 AS last_active
      FROM daily
      WINDOW w7 AS (PARTITION BY subscriber_id ORDER BY day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW),
             w30 AS (PARTITION BY subscriber_id ORDER BY day ROWS BETWEEN 29 PRECEDING AND CURRENT ROW)
    ), priced AS (
      SELECT w.*, p.region, p.churned_on,
        date_diff('day', CAST(p.activated_at AS DATE), w.day) AS tenure_days,
        coalesce(
          (SELECT c.new_price FROM changes c WHERE c.subscriber_id = w.subscriber_id
             AND c.day <= w.day ORDER BY c.day DESC, c.event_time DESC LIMIT 1),
          (SELECT c.old_price FROM changes c WHERE c.subscriber_id = w.subscriber_id
             ORDER BY c.day, c.event_time LIMIT 1),
          p.price) AS plan_price_cents,
        coalesce(
          (SELECT c.new_price FROM changes c WHERE c.subscriber_id = w.subscriber_id
             AND c.day <= w.day - 30 ORDER BY c.day DESC, c.event_time DESC LIMIT 1),
          (SELECT c.old_price FROM changes c WHERE c.subscriber_id = w.subscriber_id
             ORDER BY c.day, c.event_time LIMIT 1),
          p.price) AS price_30d_ago,
        coalesce(
          (SELECT c.plan_new FROM changes c WHERE c.subscriber_id = w.subscriber_id
             AND c.day <= w.day ORDER BY c.day DESC, c.event_time DESC LIMIT 1),
          p.plan) AS plan
      FROM windows w JOIN profile p USING (subscriber_id)
    )
    SELECT subscriber_id, day AS as_of_date, region, plan,
      coalesce(churned_on = day, false) AS churned,
      tenure_days, plan_price_cents, plan_price_cents - price_30d_ago AS price_change_30d_cents,
      calls_7d, calls_30d,
      CASE WHEN calls_7d = 0 THEN 0 ELSE dropped_7d / calls_7d END AS dropped_call_rate_7d,
      CASE WHEN calls_30d = 0 THEN 0 ELSE dropped_30d / calls_30d END AS dropped_call_rate_30d,
      sms_30d, bytes_7d / 1e6 AS data_mb_7d, bytes_30d / 1e6 AS data_mb_30d,
      CASE WHEN bytes_30d = 0 THEN 0 ELSE (bytes_7d / 7) / (bytes_30d / 30) END AS data_trend,
      top_ups_30d, top_up_cents_30d, tickets_30d, unresolved_tickets_30d, active_days_30d,
      coalesce(date_diff('day', last_active, day), 30) AS days_since_last_activity
    FROM priced
    """
)
con.execute(f"COPY features TO '{out}/features_daily' (FORMAT parquet, PARTITION_BY (as_of_date), OVERWRITE)")
con.execute(
    f"""COPY (SELECT * FROM features QUALIFY row_number() OVER (
                PARTITION BY subscriber_id ORDER BY as_of_date DESC) = 1)
        TO '{out}/features_latest.parquet' (FORMAT parquet)"""
)
con.execute(
    """
    CREATE TABLE kpi AS
    SELECT a.day AS event_date, coalesce(p.region, 'unknown') AS region,
      count(*) FILTER (WHERE a.calls + a.sms + a.sessions + a.top_ups > 0) AS active_subscribers,
      sum(a.calls) AS calls, sum(a.dropped) AS dropped_calls,
      CASE WHEN sum(a.calls) = 0 THEN 0 ELSE sum(a.dropped) / sum(a.calls) END AS dropped_call_rate,
      sum(a.bytes) AS data_bytes, sum(a.top_up_cents) AS top_up_revenue_cents,
      sum(a.tickets) AS tickets, sum(a.unresolved) AS unresolved_tickets,
      sum(a.churns) AS churn_events
    FROM activity a LEFT JOIN profile p USING (subscriber_id)
    GROUP BY ALL
    """
)
con.execute(f"COPY kpi TO '{out}/kpi_daily' (FORMAT parquet, PARTITION_BY (event_date), OVERWRITE)")
elapsed = time.perf_counter() - started


def count(table):
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


print(
    json.dumps(
        {
            "seconds": elapsed,
            "bronze_rows": con.execute("SELECT count(*) FROM bronze").fetchone()[0],
            "silver_rows": count("silver"),
            "quarantined": count("quarantine"),
            "feature_rows": count("features"),
            "kpi_rows": count("kpi"),
            "calls_30d_sum": con.execute("SELECT sum(calls_30d) FROM features").fetchone()[0],
        }
    )
)
sys.stdout.flush()
os._exit(0)
