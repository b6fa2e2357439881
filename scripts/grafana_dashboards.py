"""Writes the Grafana dashboards under helm/mlops-platform/dashboards/ (the
chart ships them as ConfigMaps for Grafana's sidecar; deploy/grafana links
to them). Edit the panels here and rerun:

    python3 scripts/grafana_dashboards.py

Every query is scoped to the dashboard's `namespace` variable and names only
metrics the services export (the deploy checks verify both)."""

import json
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "helm" / "mlops-platform" / "dashboards"
NS = 'namespace="$namespace"'


def panel(title: str, exprs: list[tuple[str, str]], unit: str = "short", kind: str = "timeseries") -> dict:
    return {
        "type": kind,
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(65 + i), "expr": e, "legendFormat": legend} for i, (e, legend) in enumerate(exprs)],
    }


def dashboard(uid: str, title: str, panels: list[dict]) -> dict:
    for i, p in enumerate(panels):
        p["id"] = i + 1
        p["gridPos"] = {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)}
    return {
        "uid": uid,
        "title": title,
        "tags": ["mlops-platform"],
        "timezone": "utc",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
                {
                    "name": "namespace",
                    "type": "query",
                    "label": "Namespace",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": "label_values(gateway_inference_requests_total, namespace)",
                    "refresh": 2,
                },
            ]
        },
        "panels": panels,
    }


PIPELINE = dashboard("mlops-pipeline", "mlops-platform / pipeline", [
    panel("Ingest: records per second", [
        (f"sum(rate(ingest_records_consumed_total{{{NS}}}[5m]))", "consumed"),
        (f"sum(rate(ingest_records_written_total{{{NS}}}[5m]))", "written to bronze"),
        (f"sum(rate(ingest_records_dead_lettered_total{{{NS}}}[5m]))", "dead-lettered"),
    ], "ops"),
    panel("Ingest: consumer lag (records)", [(f"sum by (partition) (ingest_consumer_lag{{{NS}}})", "partition {{partition}}")]),
    panel("Ingest: commit latency", [
        (f"histogram_quantile(0.5, sum by (le) (rate(ingest_commit_seconds_bucket{{{NS}}}[5m])))", "p50"),
        (f"histogram_quantile(0.99, sum by (le) (rate(ingest_commit_seconds_bucket{{{NS}}}[5m])))", "p99"),
    ], "s"),
    panel("Transform: rows per second", [
        (f"sum(rate(transform_rows_in_total{{{NS}}}[15m]))", "in"),
        (f"sum(rate(transform_rows_out_total{{{NS}}}[15m]))", "out"),
        (f"sum(rate(transform_rows_quarantined_total{{{NS}}}[15m]))", "quarantined"),
        (f"sum(rate(transform_rows_duplicate_total{{{NS}}}[15m]))", "duplicates"),
    ], "ops"),
    panel("Transform: since the last successful run", [(f"time() - max(transform_last_success_timestamp_seconds{{{NS}}})", "age")], "s"),
    panel("Transform: bronze versions behind", [(f"max(transform_bronze_lag_versions{{{NS}}})", "versions")]),
    panel("Trainer: runs", [(f"sum by (outcome) (increase(trainer_runs_total{{{NS}}}[1d]))", "{{outcome}}")]),
    panel("Trainer: champion AUC and age", [
        (f"max by (model_type) (trainer_last_auc{{{NS}}})", "AUC {{model_type}}"),
        (f"(time() - max(trainer_last_success_timestamp_seconds{{{NS}}})) / 3600", "hours since success"),
    ]),
])

REGISTRY = dashboard("mlops-registry", "mlops-platform / model registry", [
    panel("Calls per second by method", [(f"sum by (method) (rate(registry_requests_total{{{NS}}}[5m]))", "{{method}}")], "reqps"),
    panel("Errors per second by code", [(f'sum by (code) (rate(registry_requests_total{{{NS}, code!="ok"}}[5m]))', "{{code}}")], "reqps"),
    panel("Call latency p99 by method", [
        (f"histogram_quantile(0.99, sum by (le, method) (rate(registry_request_duration_seconds_bucket{{{NS}}}[5m])))", "{{method}}"),
    ], "s"),
    panel("Outbox", [
        (f"max(registry_outbox_pending_events{{{NS}}})", "pending events"),
        (f"sum(rate(registry_events_published_total{{{NS}}}[5m]))", "published per second"),
        (f"max(registry_outbox_relay_leader{{{NS}}})", "relay leader held"),
    ]),
    panel("Artifact bytes per second", [
        (f"sum(rate(registry_artifact_uploaded_bytes_total{{{NS}}}[5m]))", "uploaded"),
        (f"sum(rate(registry_artifact_downloaded_bytes_total{{{NS}}}[5m]))", "downloaded"),
    ], "Bps"),
])

SERVING = dashboard("mlops-serving", "mlops-platform / serving", [
    panel("Requests per second by status", [
        (f"sum by (protocol, status) (rate(gateway_inference_requests_total{{{NS}}}[5m]))", "{{protocol}} {{status}}"),
    ], "reqps"),
    panel("Inference latency", [
        (f"histogram_quantile(0.5, sum by (le) (rate(gateway_inference_seconds_bucket{{{NS}}}[5m])))", "p50"),
        (f"histogram_quantile(0.99, sum by (le) (rate(gateway_inference_seconds_bucket{{{NS}}}[5m])))", "p99"),
    ], "s"),
    panel("Served version by alias", [(f"max by (model, alias) (gateway_model_serving_version{{{NS}}})", "{{model}}@{{alias}}")]),
    panel("Model loads and swaps", [
        (f"sum by (outcome) (increase(gateway_model_loads_total{{{NS}}}[1h]))", "loads {{outcome}}"),
        (f"sum by (alias) (increase(gateway_model_swaps_total{{{NS}}}[1h]))", "swaps @{{alias}}"),
    ]),
    panel("Score drift (PSI)", [(f"max by (model, version) (gateway_drift_score_psi{{{NS}}})", "{{model}} v{{version}}")]),
    panel("Feature drift (PSI), top 10", [(f"topk(10, max by (feature) (gateway_drift_feature_psi{{{NS}}}))", "{{feature}}")]),
    panel("Score distribution", [(f"sum by (le) (rate(gateway_prediction_score_bucket{{{NS}}}[15m]))", "{{le}}")], "short", "heatmap"),
    panel("Prediction log and online features", [
        (f"sum(rate(gateway_prediction_log_sent_total{{{NS}}}[5m]))", "logged per second"),
        (f"sum(rate(gateway_prediction_log_dropped_total{{{NS}}}[5m]))", "dropped per second"),
        (f"max(gateway_online_features_age_seconds{{{NS}}})", "online features age (s)"),
    ]),
])

if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, board in [("pipeline", PIPELINE), ("registry", REGISTRY), ("serving", SERVING)]:
        (OUT / f"{name}.json").write_text(json.dumps(board, indent=2) + "\n")
        print(f"wrote {OUT / name}.json")
