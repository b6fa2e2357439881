"""Offline checks of the deployment artifacts: Helm charts, docker-compose.yml,
deploy/Dockerfile and the GitHub workflows. Run through scripts/check-deploy.sh,
which provides the Python environment.

Each check prints PASS or FAIL with its reasons; the last line counts them.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import re
import shlex
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import yaml
from dockerfile_parse import DockerfileParser

UMBRELLA = "helm/mlops-platform"
LIBRARY = "helm/mlops-common"
SERVICES = {
    "producer": 9101,
    "ingest": 9102,
    "transform": 9103,
    "model-registry": 9104,
    "trainer": 9105,
    "gateway": 9106,
}
REGISTRY, REGISTRY_GRPC_PORT = "model-registry", 50051
REGISTRY_HTTP_PORT = 5000  # the MLflow-compatible REST API
TRANSFORM = "transform"
TRAINER = "trainer"
GATEWAY, GATEWAY_HTTP_PORT, GATEWAY_GRPC_PORT = "gateway", 8080, 8081
# Services that do not use Kafka: no KAFKA_* settings, no dependency on the broker.
NO_KAFKA = {TRANSFORM, TRAINER}
# The trainer's settings with the service's defaults, as the chart passes them.
TRAINER_DEFAULTS = {
    "TRAINER_MODEL_NAME": "churn",
    "TRAINER_HORIZON_DAYS": "30",
    "TRAINER_TEST_DAYS": "30",
    "TRAINER_VALIDATION_FRACTION": "0.2",
    "TRAINER_SEED": "42",
    "TRAINER_CANDIDATES": "logistic_regression,gbdt",
    "TRAINER_MIN_AUC_GAIN": "0.002",
    "TRAINER_MIN_AUC": "0.6",
    "TRAINER_MAX_ECE": "0.05",
    "TRAINER_MIN_NEW_DAYS": "1",
    "TRAINER_INTERVAL_SECONDS": "86400",
    "TRAINER_POLL_SECONDS": "300",
}
# The gateway's settings with the service's defaults, as the chart passes them
# (GATEWAY_SESSIONS_PER_MODEL is left out: the service counts the cores).
GATEWAY_DEFAULTS = {
    "GATEWAY_HTTP_ADDR": f"0.0.0.0:{GATEWAY_HTTP_PORT}",
    "GATEWAY_GRPC_ADDR": f"0.0.0.0:{GATEWAY_GRPC_PORT}",
    "GATEWAY_MODELS": "churn",
    "GATEWAY_POLL_SECONDS": "30",
    "GATEWAY_REGISTRY_EVENTS": "kafka",
    "REGISTRY_EVENTS_TOPIC": "registry.events.v1",
    "GATEWAY_MAX_REQUEST_BYTES": "16777216",
    "GATEWAY_AUTH": "registry",
    "GATEWAY_AUTH_CACHE_SECONDS": "60",
    "GATEWAY_FEATURES_POLL_SECONDS": "10",
    "GATEWAY_PREDICTION_LOG": "kafka",
    "PREDICTIONS_TOPIC": "predictions.v1",
    "PREDICTIONS_TOPIC_PARTITIONS": "-1",
    "GATEWAY_PREDICTION_LOG_TIMEOUT_MS": "30000",
    "GATEWAY_DRIFT_WINDOW_ROWS": "10000",
}
# The lake as global.lake hands it to the services that read it (trainer,
# gateway): plain env, credentials by env -> (Secret, key), or the whole
# Secret by envFrom; per render (umbrella defaults, ci/s3-, ci/azure-values).
DEFAULT_LAKE: dict[str, Any] = {"env": {"LAKE_URL": "s3://lake/"}}
S3_LAKE: dict[str, Any] = {
    "env": {
        "LAKE_URL": "s3://telecom-lake/prod/",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://minio.storage:9000",
        "AWS_ALLOW_HTTP": "true",
    },
    "keys": {
        "AWS_ACCESS_KEY_ID": ("lake-s3-credentials", "access-key"),
        "AWS_SECRET_ACCESS_KEY": ("lake-s3-credentials", "secret-key"),
    },
}
AZURE_LAKE: dict[str, Any] = {
    "env": {"LAKE_URL": "az://telecom-lake/bronze-root/", "AZURE_STORAGE_ACCOUNT_NAME": "telecomlake"},
    "envFrom": [{"secretRef": {"name": "lake-azure-credentials"}}],
}
# The ONNX Runtime library the trainer and gateway images ship, and where.
ORT_DIR = "/usr/local/lib/onnxruntime"
ORT_SERVICES = (TRAINER, GATEWAY)
# KAFKA_CREATE_TOPICS and KAFKA_REPLICATION_FACTOR of the Kafka services, per
# ci/*-values.yaml; the chart defaults for every other render.
TOPIC_SETTINGS = {"managed-topics-values.yaml": ("false", "3")}
DEFAULT_TOPIC_SETTINGS = ("true", "-1")
RELEASE, NAMESPACE = "mlops", "mlops"
NON_ROOT_UID = 65532
# Env var names that hold credentials: they may only come from a Secret. A
# *_FILE variable names a file (a mounted Secret), not the credential.
SECRET_NAME = re.compile(
    r"(SECRET|PASSWORD|PASSWD|TOKEN|ACCOUNT_KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL)(?!.*_FILE$)", re.I
)
# A URL with a literal password in it (postgres://user:password@host/db); a
# $(VAR) reference is fine.
URL_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:([^/@\s$][^/@\s]*)@")


class CheckFailed(Exception):
    pass


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def run(self, name: str, fn: Callable[[], None]) -> None:
        start = time.monotonic()
        try:
            fn()
        except CheckFailed as e:
            self.failed.append(name)
            print(f"FAIL  {name}\n      " + str(e).replace("\n", "\n      "), flush=True)
            return
        except Exception:  # a crash in a check is a failure too, with its trace
            self.failed.append(name)
            print(f"FAIL  {name} (error)\n{traceback.format_exc()}", flush=True)
            return
        self.passed += 1
        print(f"PASS  {name} ({time.monotonic() - start:.1f}s)", flush=True)


def expect(problems: list[str]) -> None:
    if problems:
        raise CheckFailed("\n".join(problems))


# --------------------------------------------------------------------------
# Helm


def load_values(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def render(root: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
    with helm.Chart.load(root / UMBRELLA) as chart:
        out = chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs = []
    for template, text in sorted(out.items()):
        if template.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("metadata", {}).setdefault("annotations", {})
                doc["_template"] = template
                docs.append(doc)
    return docs


def strip(doc: dict[str, Any]) -> dict[str, Any]:
    d = copy.deepcopy(doc)
    d.pop("_template", None)
    if not d["metadata"]["annotations"]:
        del d["metadata"]["annotations"]
    return d


def ident(doc: dict[str, Any]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']} ({doc['_template']})"


def workloads(docs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    return (d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"))


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def by_name(docs: list[dict[str, Any]], kind: str, component: str) -> dict[str, Any] | None:
    for d in docs:
        labels = d["metadata"].get("labels", {})
        if d["kind"] == kind and labels.get("app.kubernetes.io/name") == component:
            return d
    return None


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def uses_kafka(service: str, env: dict[str, dict[str, Any]]) -> bool:
    """Whether a service's container is set up for Kafka: never for NO_KAFKA,
    the gateway only while it follows the registry's events or logs its
    predictions."""
    if service in NO_KAFKA:
        return False
    if service == GATEWAY:
        return any(env.get(k, {}).get("value") != "off" for k in ("GATEWAY_REGISTRY_EVENTS", "GATEWAY_PREDICTION_LOG"))
    return True


def platform_rules(docs: list[dict[str, Any]]) -> list[str]:
    """What a platform team relies on, for every workload and Service."""
    problems = []
    for d in docs:
        if d["kind"] == "Secret":
            problems.append(f"{ident(d)}: the chart must not create Secrets (reference existing ones)")
        if d["kind"] == "ConfigMap":
            for key in d.get("data", {}):
                if SECRET_NAME.search(key):
                    problems.append(f"{ident(d)}: key {key} looks like a credential in a ConfigMap")
    for w in workloads(docs):
        who = ident(w)
        spec = pod_spec(w)
        psc = spec.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            problems.append(f"{who}: pod securityContext.runAsNonRoot is not true")
        if psc.get("runAsUser") != NON_ROOT_UID:
            problems.append(f"{who}: pod securityContext.runAsUser is not {NON_ROOT_UID}")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{who}: pod seccompProfile is not RuntimeDefault")
        if spec.get("terminationGracePeriodSeconds") != 30:
            problems.append(f"{who}: terminationGracePeriodSeconds is not 30")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{who}: the service account token is mounted")
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(key):
                problems.append(f"{who}: {key} is set")
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec.get("initContainers", []) + spec["containers"]:
            cw = f"{who} container {c['name']}"
            sc = c.get("securityContext", {})
            if sc.get("runAsNonRoot") is not True:
                problems.append(f"{cw}: runAsNonRoot is not true")
            if sc.get("runAsUser", psc.get("runAsUser")) in (None, 0):
                problems.append(f"{cw}: may run as root")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{cw}: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{cw}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                problems.append(f"{cw}: privileged")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{cw}: capabilities do not drop ALL")
            if sc.get("capabilities", {}).get("add"):
                problems.append(f"{cw}: adds capabilities")
            image = c.get("image", "")
            if image.endswith(":latest") or (":" not in image.rsplit("/", 1)[-1] and "@" not in image):
                problems.append(f"{cw}: image {image!r} is not pinned to a tag or digest")
            res = c.get("resources", {})
            if not res.get("requests", {}).get("memory") or not res.get("limits", {}).get("memory"):
                problems.append(f"{cw}: memory request and limit are required")
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            if "emptyDir" not in volumes.get(mounts.get("/tmp", ""), {}):
                problems.append(f"{cw}: /tmp is not a writable emptyDir")
            for e in c.get("env", []):
                if SECRET_NAME.search(e["name"]) and "value" in e:
                    problems.append(f"{cw}: env {e['name']} has an inline value (use a secretKeyRef)")
                if URL_PASSWORD.match(str(e.get("value", ""))):
                    problems.append(f"{cw}: env {e['name']} has a password in its URL (use a secretKeyRef)")
            if c["name"] not in SERVICES:
                continue
            port = SERVICES[c["name"]]
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            if ports.get("admin") != port:
                problems.append(f"{cw}: admin port is not {port}")
            for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz"), ("startupProbe", "/livez")):
                got = c.get(probe, {}).get("httpGet", {})
                if got.get("path") != path or got.get("port") not in ("admin", port):
                    problems.append(f"{cw}: {probe} is not GET {path} on the admin port")
            env = env_of(c)
            kafka = uses_kafka(c["name"], env)
            required = ["RUST_LOG", "LOG_FORMAT", "ADMIN_ADDR", "OTEL_SERVICE_NAME"]
            for name in required + (["KAFKA_BROKERS"] if kafka else []):
                if name not in env:
                    problems.append(f"{cw}: env {name} is missing")
            if not kafka and any(name.startswith("KAFKA_") for name in env):
                kafka_env = sorted(name for name in env if name.startswith("KAFKA_"))
                problems.append(f"{cw}: env {', '.join(kafka_env)} set, but {c['name']} does not use Kafka")
            if env.get("ADMIN_ADDR", {}).get("value") != f"0.0.0.0:{port}":
                problems.append(f"{cw}: ADMIN_ADDR does not match the admin port")
    # Every Service must select pods that exist and expose the named port.
    pods = [(pod_labels(w), pod_spec(w)) for w in workloads(docs)]
    for s in (d for d in docs if d["kind"] == "Service"):
        sel = s["spec"].get("selector", {})
        match = [spec for labels, spec in pods if sel and sel.items() <= labels.items()]
        if not match:
            problems.append(f"{ident(s)}: selects no pod of this release")
            continue
        names = {p.get("name") for c in match[0]["containers"] for p in c.get("ports", [])}
        for p in s["spec"]["ports"]:
            if isinstance(p.get("targetPort"), str) and p["targetPort"] not in names:
                problems.append(f"{ident(s)}: targetPort {p['targetPort']} is not a container port")
    # ServiceMonitors (a CRD, so not in the Kubernetes schemas): must match a Service and its port.
    services = [d for d in docs if d["kind"] == "Service"]
    for m in (d for d in docs if d["kind"] == "ServiceMonitor"):
        if m.get("apiVersion") != "monitoring.coreos.com/v1":
            problems.append(f"{ident(m)}: apiVersion is not monitoring.coreos.com/v1")
        sel = m["spec"]["selector"].get("matchLabels", {})
        target = [s for s in services if sel and sel.items() <= s["metadata"].get("labels", {}).items()]
        if len(target) != 1:
            problems.append(f"{ident(m)}: selects {len(target)} Services, expected 1")
            continue
        ports = {p["name"] for p in target[0]["spec"]["ports"]}
        for ep in m["spec"].get("endpoints", []):
            if ep.get("port") not in ports or ep.get("path") != "/metrics":
                problems.append(f"{ident(m)}: endpoint {ep} does not scrape /metrics on a Service port")
    return problems


def topic_settings_rules(docs: list[dict[str, Any]], create: str, replication: str) -> list[str]:
    """Every Kafka service that is rendered gets the global topic settings:
    whether it creates missing topics and their replication factor."""
    problems = []
    for s in SERVICES:
        if s in NO_KAFKA or by_name(docs, "Deployment", s) is None:
            continue
        env = env_of(container(docs, s))
        if not uses_kafka(s, env):
            continue
        for name, want in (("KAFKA_CREATE_TOPICS", create), ("KAFKA_REPLICATION_FACTOR", replication)):
            if env.get(name, {}).get("value") != want:
                problems.append(f"{s}: env {name} is {env.get(name)!r}, expected {want!r}")
    return problems


def pod_labels(w: dict[str, Any]) -> dict[str, str]:
    if w["kind"] == "CronJob":
        return w["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels", {})
    return w["spec"]["template"]["metadata"].get("labels", {})


def container(docs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    d = by_name(docs, "Deployment", component)
    if d is None:
        raise CheckFailed(f"no Deployment for {component}")
    return pod_spec(d)["containers"][0]


def workload(docs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    """A service's Deployment, else its CronJob (the trainer's default)."""
    d = by_name(docs, "Deployment", component) or by_name(docs, "CronJob", component)
    if d is None:
        raise CheckFailed(f"no Deployment or CronJob for {component}")
    return d


def served_port_rules(
    t: str, c: dict[str, Any], svc: dict[str, Any] | None, *served: tuple[str, int, str]
) -> list[str]:
    """Each served (name, port, env var), name http or grpc: the port on
    container c and, with appProtocol `name`, on Service svc, with the env var
    listening on it on every address; the Service also has `admin`."""
    problems = []
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    env = env_of(c)
    svc_ports = {p["name"]: p for p in (svc or {"spec": {"ports": []}})["spec"]["ports"]}
    for name, port, var in served:
        if ports.get(name) != port:
            problems.append(f"{t}: container port {name} is not {port}: {c.get('ports')!r}")
        if env.get(var, {}).get("value") != f"0.0.0.0:{port}":
            problems.append(f"{t}: {var} does not match the {name} port: {env.get(var)!r}")
        sp = svc_ports.get(name, {})
        if sp.get("port") != port or sp.get("targetPort") not in (name, port) or sp.get("appProtocol") != name:
            problems.append(f"{t}: Service has no port {name} {port} (appProtocol {name}): {sp!r}")
    if "admin" not in svc_ports:
        problems.append(f"{t}: Service lacks the admin port")
    return problems


def registry_rules(docs: list[dict[str, Any]], migration_job: bool = True) -> list[str]:
    """The model registry: gRPC and MLflow REST on the pod and the Service, the database URL
    from a Secret, and the migrations run by a hook Job before the Deployment
    changes (or by the pods at start when the Job is off)."""
    c = container(docs, REGISTRY)
    env = env_of(c)
    svc = by_name(docs, "Service", REGISTRY)
    problems = served_port_rules(
        REGISTRY, c, svc, ("grpc", REGISTRY_GRPC_PORT, "REGISTRY_GRPC_ADDR"), ("http", REGISTRY_HTTP_PORT, "REGISTRY_HTTP_ADDR")
    )
    db = env.get("DATABASE_URL", {})
    db_ref = db.get("valueFrom", {}).get("secretKeyRef", {})
    if "value" in db or not db_ref.get("name") or not db_ref.get("key"):
        problems.append(f"{REGISTRY}: DATABASE_URL does not come from a secretKeyRef: {db!r}")
    if not env.get("ARTIFACTS_URL", {}).get("value"):
        problems.append(f"{REGISTRY}: ARTIFACTS_URL is not set")
    if "LAKE_URL" in env:
        problems.append(f"{REGISTRY}: LAKE_URL is set (the registry stores artifacts under ARTIFACTS_URL)")
    job = by_name(docs, "Job", f"{REGISTRY}-migrate")
    migrate = env.get("REGISTRY_MIGRATE", {}).get("value")
    if not migration_job:
        if job is not None:
            problems.append(f"{REGISTRY}: migration Job rendered although migrations.job=false")
        if migrate != "true":
            problems.append(f"{REGISTRY}: REGISTRY_MIGRATE is {migrate!r} without a migration Job, expected 'true'")
        return problems
    if migrate != "false":
        problems.append(f"{REGISTRY}: REGISTRY_MIGRATE is {migrate!r} although a Job migrates, expected 'false'")
    if job is None:
        return problems + [f"{REGISTRY}: no migration Job"]
    who = ident(job)
    notes = job["metadata"]["annotations"]
    if set(notes.get("helm.sh/hook", "").split(",")) != {"pre-install", "pre-upgrade"}:
        problems.append(f"{who}: helm.sh/hook is {notes.get('helm.sh/hook')!r}, expected pre-install,pre-upgrade")
    policy = set(notes.get("helm.sh/hook-delete-policy", "").split(","))
    if not {"before-hook-creation", "hook-succeeded"} <= policy:
        problems.append(f"{who}: hook-delete-policy lacks before-hook-creation,hook-succeeded: {policy}")
    spec = job["spec"]
    for key in ("backoffLimit", "ttlSecondsAfterFinished"):
        if not isinstance(spec.get(key), int):
            problems.append(f"{who}: {key} is not set")
    pod = pod_spec(job)
    if pod.get("restartPolicy") not in ("Never", "OnFailure"):
        problems.append(f"{who}: restartPolicy is {pod.get('restartPolicy')!r}")
    jc = pod["containers"][0]
    if jc.get("args") != ["migrate"] or jc.get("command"):
        run = f"command {jc.get('command')!r} args {jc.get('args')!r}"
        problems.append(f"{who}: does not run `{REGISTRY} migrate`: {run}")
    if jc.get("image") != c["image"]:
        problems.append(f"{who}: image {jc.get('image')} differs from the Deployment's {c['image']}")
    jenv = env_of(jc)
    for name in ("DATABASE_URL", "DATABASE_WAIT_SECONDS", "DATABASE_MAX_CONNECTIONS"):
        if jenv.get(name) != env.get(name):
            problems.append(f"{who}: env {name} differs from the Deployment's: {jenv.get(name)!r}")
    sel = (svc or {"spec": {}})["spec"].get("selector", {})
    if sel and sel.items() <= pod_labels(job).items():
        problems.append(f"{who}: the Service selects the migration pod")
    return problems


def transform_rules(docs: list[dict[str, Any]], deployment: bool = True, cron: bool = False) -> list[str]:
    """Transform is a single writer: one replica that is stopped before its
    successor starts, or a CronJob running `--once` that never overlaps
    itself. Its scheduled pods stay out of the Deployment's and the Service's
    selectors."""
    problems = []
    t = TRANSFORM
    deploy = by_name(docs, "Deployment", t)
    cronjob = by_name(docs, "CronJob", f"{t}-cron")
    if by_name(docs, "PodDisruptionBudget", t) is not None:
        problems.append(f"{t}: PodDisruptionBudget for a single replica")
    if not deployment:
        for kind in ("Deployment", "Service", "ServiceMonitor"):
            if by_name(docs, kind, t) is not None:
                problems.append(f"{t}: {kind} rendered although deployment.enabled=false")
    elif deploy is None:
        problems.append(f"{t}: no Deployment")
    else:
        replicas, strategy = deploy["spec"].get("replicas"), deploy["spec"].get("strategy")
        if replicas != 1:
            problems.append(f"{t}: Deployment replicas is {replicas!r}, expected 1 (single writer)")
        if strategy != {"type": "Recreate"}:
            problems.append(f"{t}: Deployment strategy is {strategy!r}, expected Recreate")
        c = pod_spec(deploy)["containers"][0]
        if "--once" in c.get("args", []):
            problems.append(f"{t}: the Deployment runs --once")
        env = env_of(c)
        if not env.get("LAKE_URL", {}).get("value"):
            problems.append(f"{t}: LAKE_URL is not set")
        for name in (
            "TRANSFORM_POLL_INTERVAL_SECONDS",
            "TRANSFORM_LATE_HORIZON_DAYS",
            "TRANSFORM_DEDUP_HORIZON_DAYS",
            "TRANSFORM_MAX_CLOCK_SKEW_SECONDS",
        ):
            if not env.get(name, {}).get("value", "").isdigit():
                problems.append(f"{t}: env {name} is {env.get(name)!r}, expected a number")
    if not cron:
        if cronjob is not None:
            problems.append(f"{t}: CronJob rendered although cronJob.enabled=false")
        return problems
    if cronjob is None:
        return problems + [f"{t}: no CronJob although cronJob.enabled=true"]
    who = ident(cronjob)
    spec = cronjob["spec"]
    if spec.get("concurrencyPolicy") != "Forbid":
        problems.append(f"{who}: concurrencyPolicy is {spec.get('concurrencyPolicy')!r}, expected Forbid")
    if not spec.get("schedule"):
        problems.append(f"{who}: no schedule")
    for key in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        if not isinstance(spec.get(key), int):
            problems.append(f"{who}: {key} is not set")
    pod = pod_spec(cronjob)
    if pod.get("restartPolicy") not in ("Never", "OnFailure"):
        problems.append(f"{who}: restartPolicy is {pod.get('restartPolicy')!r}")
    c = pod["containers"][0]
    if c.get("args", [None])[0] != "--once":
        problems.append(f"{who}: container args are {c.get('args')!r}, expected --once first")
    if len(pod["containers"]) != 1 or c["name"] != t:
        problems.append(f"{who}: expected the single container {t}")
    labels = pod_labels(cronjob)
    for other in ("Deployment", "Service"):
        d = by_name(docs, other, t)
        if d is None:
            continue
        sel = d["spec"]["selector"]
        sel = sel.get("matchLabels", {}) if other == "Deployment" else sel
        if sel.items() <= labels.items():
            problems.append(f"{who}: the {other}'s selector matches the scheduled pods")
    if deploy is not None:
        # The scheduled run is the same container as the service.
        d_pod = pod_spec(deploy)
        d_c = d_pod["containers"][0]
        for key in ("image", "env", "envFrom", "securityContext", "resources", "volumeMounts", "ports"):
            if c.get(key) != d_c.get(key):
                problems.append(f"{who}: container {key} differs from the Deployment's")
        for key in ("securityContext", "volumes", "serviceAccountName", "imagePullSecrets", "nodeSelector"):
            if pod.get(key) != d_pod.get(key):
                problems.append(f"{who}: pod {key} differs from the Deployment's")
    return problems


def trainer_rules(
    docs: list[dict[str, Any]], mode: str = "cronjob", secret: str = "trainer-registry-token", key: str = "token"
) -> list[str]:
    """The trainer: one instance, either a CronJob running `trainer run` that
    never overlaps itself (mode cronjob, the default) or a single-replica
    Recreate Deployment running `trainer watch` behind a Service (mode
    watch). Its registry token is a file from a Secret, never an env value;
    TRAINER_WORK_DIR and /tmp are emptyDirs; no Kafka."""
    problems = []
    t = TRAINER
    deploy = by_name(docs, "Deployment", t)
    cronjob = by_name(docs, "CronJob", t)
    if by_name(docs, "PodDisruptionBudget", t) is not None:
        problems.append(f"{t}: PodDisruptionBudget for a single instance")
    if mode == "cronjob":
        for kind in ("Deployment", "Service", "ServiceMonitor"):
            if by_name(docs, kind, t) is not None:
                problems.append(f"{t}: {kind} rendered although mode is cronjob")
        if cronjob is None:
            return problems + [f"{t}: no CronJob although mode is cronjob"]
        who = ident(cronjob)
        spec = cronjob["spec"]
        if spec.get("concurrencyPolicy") != "Forbid":
            problems.append(f"{who}: concurrencyPolicy is {spec.get('concurrencyPolicy')!r}, expected Forbid")
        if not spec.get("schedule"):
            problems.append(f"{who}: no schedule")
        for key_ in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
            if not isinstance(spec.get(key_), int):
                problems.append(f"{who}: {key_} is not set")
        for key_ in ("backoffLimit", "activeDeadlineSeconds"):
            if not isinstance(spec["jobTemplate"]["spec"].get(key_), int):
                problems.append(f"{who}: job {key_} is not set")
        pod = pod_spec(cronjob)
        if pod.get("restartPolicy") not in ("Never", "OnFailure"):
            problems.append(f"{who}: restartPolicy is {pod.get('restartPolicy')!r}")
        subcommand = "run"
    else:
        if cronjob is not None:
            problems.append(f"{t}: CronJob rendered although mode is watch")
        if deploy is None:
            return problems + [f"{t}: no Deployment although mode is watch"]
        who = ident(deploy)
        replicas, strategy = deploy["spec"].get("replicas"), deploy["spec"].get("strategy")
        if replicas != 1:
            problems.append(f"{who}: replicas is {replicas!r}, expected 1 (one trainer)")
        if strategy != {"type": "Recreate"}:
            problems.append(f"{who}: strategy is {strategy!r}, expected Recreate")
        svc = by_name(docs, "Service", t)
        if svc is None or "admin" not in {p["name"] for p in svc["spec"]["ports"]}:
            problems.append(f"{t}: no Service with the admin port in mode watch")
        pod = pod_spec(deploy)
        subcommand = "watch"
    if len(pod["containers"]) != 1 or pod["containers"][0]["name"] != t:
        problems.append(f"{who}: expected the single container {t}")
    c = pod["containers"][0]
    if c.get("command") or (c.get("args") or [None])[0] != subcommand:
        problems.append(f"{who}: runs command {c.get('command')!r} args {c.get('args')!r}, expected `{t} {subcommand}`")
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz"), ("startupProbe", "/livez")):
        got = c.get(probe, {}).get("httpGet", {})
        if got.get("path") != path or got.get("port") not in ("admin", SERVICES[t]):
            problems.append(f"{who}: {probe} is not GET {path} on the admin port")
    env = env_of(c)
    for name in ("LAKE_URL", "REGISTRY_URL", *TRAINER_DEFAULTS):
        if not env.get(name, {}).get("value"):
            problems.append(f"{t}: env {name} is not set: {env.get(name)!r}")
    if not re.match(r"^https?://[^/\s]+:[0-9]+/?$", env.get("REGISTRY_URL", {}).get("value", "")):
        problems.append(f"{t}: REGISTRY_URL is not an http(s)://host:port URL: {env.get('REGISTRY_URL')!r}")
    # The registry token: a read-only file from the Secret, never an env value.
    problems += token_file_rules(t, pod, c, "TRAINER_REGISTRY_TOKEN_FILE", secret, key)
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    token_file = env.get("TRAINER_REGISTRY_TOKEN_FILE", {}).get("value", "")
    mount = mount_of(c, token_file) if token_file else None
    work = env.get("TRAINER_WORK_DIR", {}).get("value", "")
    wm = mount_of(c, work) if work else None
    if wm is None or "emptyDir" not in volumes.get(wm["name"], {}) or wm.get("readOnly"):
        problems.append(f"{t}: TRAINER_WORK_DIR {work!r} is not on a writable emptyDir")
    elif wm["name"] == (mount or {}).get("name") or wm["mountPath"] == "/tmp":
        problems.append(f"{t}: TRAINER_WORK_DIR shares a volume with the token or /tmp")
    return problems


def mount_of(c: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The volume mount of container c that holds path."""
    mounts = c.get("volumeMounts", [])
    return next((m for m in mounts if (path + "/").startswith(m["mountPath"].rstrip("/") + "/")), None)


def lake_env_rules(t: str, c: dict[str, Any], lake: dict[str, Any]) -> list[str]:
    """Container c of t reads the lake as global.lake describes it (see
    DEFAULT_LAKE): LAKE_URL and the storage settings as plain env, the
    credentials by secretKeyRef or the whole Secret by envFrom, nothing of
    the other cloud's."""
    problems = []
    env = env_of(c)
    for k, v in lake["env"].items():
        if env.get(k, {}).get("value") != v:
            problems.append(f"{t}: env {k} is {env.get(k)!r}, expected {v!r}")
    for k, (secret, key) in lake.get("keys", {}).items():
        if env.get(k, {}).get("valueFrom", {}).get("secretKeyRef", {}) != {"name": secret, "key": key}:
            problems.append(f"{t}: env {k} does not reference {secret}/{key}: {env.get(k)!r}")
    if lake.get("envFrom") and c.get("envFrom") != lake["envFrom"]:
        problems.append(f"{t}: envFrom is {c.get('envFrom')!r}, expected {lake['envFrom']!r}")
    other = "AWS_" if lake["env"]["LAKE_URL"].startswith("az://") else "AZURE_"
    if any(k.startswith(other) for k in env):
        problems.append(f"{t}: {other}* env set, but the lake is {lake['env']['LAKE_URL']}")
    return problems


def token_file_rules(t: str, pod: dict[str, Any], c: dict[str, Any], var: str, secret: str, key: str) -> list[str]:
    """A token or password as a read-only, not world-readable file from key
    `key` of Secret `secret`, named by env var (a *_FILE variable); no
    token or password is ever an env value."""
    problems = []
    env = env_of(c)
    plain = var.removesuffix("_FILE")
    if plain in env:
        problems.append(f"{t}: {plain} is set; expected the token as a file")
    for e in c.get("env", []):
        secretish = any(w in e["name"].upper() for w in ("TOKEN", "PASSWORD"))
        if "value" in e and not e["name"].endswith("_FILE") and secretish:
            problems.append(f"{t}: env {e['name']} has a plain value")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    token_file = env.get(var, {}).get("value", "")
    mount = mount_of(c, token_file) if token_file else None
    if mount is None or mount["mountPath"] == token_file:
        problems.append(f"{t}: {var} {token_file!r} is not a file on a mounted volume")
    else:
        sv = volumes.get(mount["name"], {}).get("secret", {})
        items = {i["key"]: i["path"] for i in sv.get("items", [])}
        if sv.get("secretName") != secret or not mount.get("readOnly"):
            problems.append(f"{t}: the token is not mounted read-only from Secret {secret}: {sv!r}")
        elif token_file != f"{mount['mountPath'].rstrip('/')}/{items.get(key)}":
            problems.append(f"{t}: {var} does not name key {key} of Secret {secret}")
        elif sv.get("defaultMode", 0o644) & 0o007:
            problems.append(f"{t}: the token file is world-readable (defaultMode {oct(sv['defaultMode'])})")
    return problems


PORTAL_VALUES = {
    "portal": {
        "enabled": True,
        "database": {"existingSecret": "portal-db"},
        "adminPassword": {"existingSecret": "portal-admin"},
        "approverToken": {"existingSecret": "portal-approver"},
        "clientIpHeader": "X-Forwarded-For",
    },
    "ingress": {"enabled": True, "className": "nginx", "host": "mlops.example.com", "tlsSecret": "mlops-tls"},
}


def portal_rules(docs: list[dict[str, Any]], pod: dict[str, Any], c: dict[str, Any]) -> list[str]:
    """The portal (PORTAL_VALUES): GATEWAY_PORTAL=on, its database URL only
    by reference to a Secret, the bootstrap admin password and the approver
    token as read-only Secret files, the session, client-address, SQL and
    health settings, Kafka for the ingest health; and a TLS Ingress to the
    Service's http port."""
    problems = []
    g = GATEWAY
    env = env_of(c)
    if env.get("GATEWAY_PORTAL", {}).get("value") != "on":
        problems.append(f"{g}: GATEWAY_PORTAL is {env.get('GATEWAY_PORTAL')!r}, expected on")
    db = env.get("DATABASE_URL", {})
    if "value" in db or db.get("valueFrom", {}).get("secretKeyRef") != {"name": "portal-db", "key": "url"}:
        problems.append(f"{g}: DATABASE_URL is {db!r}, expected a secretKeyRef to portal-db/url")
    problems += token_file_rules(g, pod, c, "GATEWAY_ADMIN_PASSWORD_FILE", "portal-admin", "password")
    problems += token_file_rules(g, pod, c, "GATEWAY_PORTAL_APPROVER_TOKEN_FILE", "portal-approver", "token")
    if "KAFKA_BROKERS" not in env:
        problems.append(f"{g}: the portal reports ingest health without KAFKA_BROKERS")
    expected = {
        "GATEWAY_SESSION_MINUTES": "480",
        "GATEWAY_COOKIE_SECURE": "auto",
        "GATEWAY_CLIENT_IP_HEADER": "X-Forwarded-For",
        "GATEWAY_SQL_MAX_ROWS": "1000",
        "GATEWAY_SQL_TIMEOUT_SECONDS": "10",
        "GATEWAY_SQL_MEMORY_MB": "256",
        "EVENTS_TOPIC": "telecom.events.v1",
        "GATEWAY_HEALTH_STALE_MINUTES": "60",
        "GATEWAY_HEALTH_LAG_RECORDS": "10000",
    }
    for k, v in expected.items():
        if env.get(k, {}).get("value") != v:
            problems.append(f"{g}: env {k} is {env.get(k)!r}, expected {v!r}")
    ingress = by_name(docs, "Ingress", g)
    if ingress is None:
        return problems + [f"{g}: no Ingress with ingress.enabled"]
    spec = ingress["spec"]
    if spec.get("tls") != [{"hosts": ["mlops.example.com"], "secretName": "mlops-tls"}]:
        problems.append(f"{ident(ingress)}: tls is {spec.get('tls')!r}, expected mlops-tls for mlops.example.com")
    service = by_name(docs, "Service", g)
    backend = {"service": {"name": service["metadata"]["name"] if service else None, "port": {"name": "http"}}}
    rules = spec.get("rules", [])
    paths = rules[0]["http"]["paths"] if rules else []
    if spec.get("ingressClassName") != "nginx" or [p.get("backend") for p in paths] != [backend]:
        problems.append(f"{ident(ingress)}: expected class nginx and one path to {backend!r}, got {rules!r}")
    return problems


def gateway_rules(
    docs: list[dict[str, Any]],
    secret: str = "gateway-registry-token",
    key: str = "token",
    events_topic: str | None = "registry.events.v1",
    predictions_topic: str | None = "predictions.v1",
    hpa: tuple[int, int, int] | None = (2, 10, 70),
    replicas: int | None = None,
    pdb: dict[str, Any] | None = None,
    auth: bool = True,
    lake: dict[str, Any] = DEFAULT_LAKE,
    portal: bool = False,
) -> list[str]:
    """The gateway: a stateless Deployment running `gateway` with the Open
    Inference Protocol ports `http` and `grpc` beside `admin`, on the pod and
    the Service; registry tokens required of clients (`auth`:
    GATEWAY_AUTH=registry with a cache time; False: off, no cache time);
    scaled by an autoscaling/v2 HorizontalPodAutoscaler on CPU (hpa: min, max,
    target %; the Deployment then sets no replica count) or a fixed `replicas`;
    a PodDisruptionBudget (`pdb`: its minAvailable or maxUnavailable, default
    maxUnavailable 1) whenever more than one pod runs; rolling updates that
    never go below the current count. Its registry token is a file from a
    Secret, never an env value; Kafka settings only while it follows the
    registry's events (events_topic; None: GATEWAY_REGISTRY_EVENTS=off) or
    logs its predictions (predictions_topic; None: GATEWAY_PREDICTION_LOG=off,
    no PREDICTIONS_* settings); drift over a positive window; the
    lake (for the churn API's online features) wired as for the trainer
    (`lake`, see lake_env_rules), and the image's ONNX Runtime library."""
    problems = []
    g = GATEWAY
    deploy = by_name(docs, "Deployment", g)
    if deploy is None:
        return [f"{g}: no Deployment"]
    who = ident(deploy)
    pod = pod_spec(deploy)
    if len(pod["containers"]) != 1 or pod["containers"][0]["name"] != g:
        problems.append(f"{who}: expected the single container {g}")
    c = pod["containers"][0]
    if c.get("command") or c.get("args"):
        problems.append(f"{who}: runs command {c.get('command')!r} args {c.get('args')!r}, expected the image's `{g}`")
    env = env_of(c)
    problems += served_port_rules(
        g,
        c,
        by_name(docs, "Service", g),
        ("http", GATEWAY_HTTP_PORT, "GATEWAY_HTTP_ADDR"),
        ("grpc", GATEWAY_GRPC_PORT, "GATEWAY_GRPC_ADDR"),
    )
    want_auth = "registry" if auth else "off"
    if env.get("GATEWAY_AUTH", {}).get("value") != want_auth:
        problems.append(f"{g}: GATEWAY_AUTH is {env.get('GATEWAY_AUTH')!r}, expected {want_auth!r}")
    cache = env.get("GATEWAY_AUTH_CACHE_SECONDS")
    if (auth and not (cache or {}).get("value", "").isdigit()) or (not auth and cache is not None):
        problems.append(f"{g}: GATEWAY_AUTH_CACHE_SECONDS is {cache!r}, expected a number only while auth is on")
    strategy = deploy["spec"].get("strategy", {})
    if strategy.get("type") != "RollingUpdate" or strategy.get("rollingUpdate", {}).get("maxUnavailable") != 0:
        problems.append(f"{who}: strategy is {strategy!r}, expected RollingUpdate with maxUnavailable 0")
    for name in ("GATEWAY_MODELS", "REGISTRY_URL"):
        if not env.get(name, {}).get("value"):
            problems.append(f"{g}: env {name} is not set: {env.get(name)!r}")
    for name in ("GATEWAY_POLL_SECONDS", "GATEWAY_MAX_REQUEST_BYTES", "GATEWAY_FEATURES_POLL_SECONDS"):
        if not env.get(name, {}).get("value", "").isdigit():
            problems.append(f"{g}: env {name} is {env.get(name)!r}, expected a number")
    if not re.match(r"^https?://[^/\s]+:[0-9]+/?$", env.get("REGISTRY_URL", {}).get("value", "")):
        problems.append(f"{g}: REGISTRY_URL is not an http(s)://host:port URL: {env.get('REGISTRY_URL')!r}")
    events = env.get("GATEWAY_REGISTRY_EVENTS", {}).get("value")
    kafka_env = sorted(name for name in env if name.startswith("KAFKA_"))
    if events_topic is not None:
        if events != "kafka" or env.get("REGISTRY_EVENTS_TOPIC", {}).get("value") != events_topic:
            topic = env.get("REGISTRY_EVENTS_TOPIC")
            problems.append(f"{g}: does not follow {events_topic}: GATEWAY_REGISTRY_EVENTS {events!r}, topic {topic!r}")
        if "KAFKA_BROKERS" not in env:
            problems.append(f"{g}: follows the registry's events without KAFKA_BROKERS")
    elif events != "off" or "REGISTRY_EVENTS_TOPIC" in env:
        problems.append(f"{g}: events off, but GATEWAY_REGISTRY_EVENTS is {events!r}")
    log = env.get("GATEWAY_PREDICTION_LOG", {}).get("value")
    log_env = sorted(name for name in env if name.startswith("PREDICTIONS_") or name.endswith("_LOG_TIMEOUT_MS"))
    if predictions_topic is not None:
        if log != "kafka" or env.get("PREDICTIONS_TOPIC", {}).get("value") != predictions_topic:
            topic = env.get("PREDICTIONS_TOPIC")
            problems.append(f"{g}: does not log to {predictions_topic}: GATEWAY_PREDICTION_LOG {log!r}, topic {topic!r}")
        if "KAFKA_BROKERS" not in env:
            problems.append(f"{g}: logs its predictions without KAFKA_BROKERS")
        if not env.get("GATEWAY_PREDICTION_LOG_TIMEOUT_MS", {}).get("value", "").isdigit():
            got = env.get("GATEWAY_PREDICTION_LOG_TIMEOUT_MS")
            problems.append(f"{g}: GATEWAY_PREDICTION_LOG_TIMEOUT_MS is {got!r}, expected a number")
    elif log != "off" or log_env:
        problems.append(f"{g}: prediction log off, but GATEWAY_PREDICTION_LOG is {log!r} with {log_env}")
    if events_topic is None and predictions_topic is None and not portal and kafka_env:
        problems.append(f"{g}: neither events nor the prediction log use Kafka, yet it gets {kafka_env}")
    if not env.get("GATEWAY_DRIFT_WINDOW_ROWS", {}).get("value", "0").lstrip("0").isdigit():
        problems.append(f"{g}: GATEWAY_DRIFT_WINDOW_ROWS is {env.get('GATEWAY_DRIFT_WINDOW_ROWS')!r}, expected a positive number")
    problems += lake_env_rules(g, c, lake)
    if portal:
        problems += portal_rules(docs, pod, c)
    elif env.get("GATEWAY_PORTAL", {}).get("value") != "off" or "DATABASE_URL" in env:
        problems.append(f"{g}: GATEWAY_PORTAL is {env.get('GATEWAY_PORTAL')!r}, expected off with portal.enabled false")
    if "ORT_DYLIB_PATH" in env:
        problems.append(f"{g}: ORT_DYLIB_PATH is overridden; the image's library is the one it ships")
    problems += token_file_rules(g, pod, c, "GATEWAY_REGISTRY_TOKEN_FILE", secret, key)
    autoscaler = by_name(docs, "HorizontalPodAutoscaler", g)
    if hpa is None:
        if autoscaler is not None:
            problems.append(f"{g}: HorizontalPodAutoscaler rendered although autoscaling is off")
        if deploy["spec"].get("replicas") != replicas:
            problems.append(f"{who}: replicas is {deploy['spec'].get('replicas')!r}, expected {replicas}")
    elif autoscaler is None:
        problems.append(f"{g}: no HorizontalPodAutoscaler")
    else:
        hw = ident(autoscaler)
        spec = autoscaler["spec"]
        want_target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": deploy["metadata"]["name"]}
        if autoscaler["apiVersion"] != "autoscaling/v2":
            problems.append(f"{hw}: apiVersion is {autoscaler['apiVersion']}, expected autoscaling/v2")
        if spec.get("scaleTargetRef") != want_target:
            problems.append(f"{hw}: scaleTargetRef is {spec.get('scaleTargetRef')!r}, expected {want_target!r}")
        low, high, cpu = hpa
        got = (spec.get("minReplicas"), spec.get("maxReplicas"))
        if got != (low, high):
            problems.append(f"{hw}: replicas {got[0]}..{got[1]}, expected {low}..{high}")
        want_metrics = [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}},
            }
        ]
        if spec.get("metrics") != want_metrics:
            problems.append(f"{hw}: metrics are {spec.get('metrics')!r}, expected CPU utilization {cpu}%")
        if "replicas" in deploy["spec"]:
            problems.append(f"{who}: sets replicas although the HorizontalPodAutoscaler owns them")
        if not c.get("resources", {}).get("requests", {}).get("cpu"):
            problems.append(f"{g}: no CPU request, which the autoscaler's target is relative to")
    budget = by_name(docs, "PodDisruptionBudget", g)
    several = (hpa[0] if hpa else replicas or 0) > 1
    if not several:
        if budget is not None:
            problems.append(f"{g}: PodDisruptionBudget for a single replica")
    elif budget is None:
        problems.append(f"{g}: no PodDisruptionBudget although more than one replica runs")
    else:
        want = pdb or {"maxUnavailable": 1}
        got = {k: v for k, v in budget["spec"].items() if k in ("minAvailable", "maxUnavailable")}
        if got != want:
            problems.append(f"{ident(budget)}: {got!r}, expected {want!r}")
        if budget["spec"].get("selector", {}).get("matchLabels") != deploy["spec"]["selector"]["matchLabels"]:
            problems.append(f"{ident(budget)}: selector differs from the Deployment's")
    return problems


def scenario_s3(docs: list[dict[str, Any]]) -> list[str]:
    problems = []
    ingest = by_name(docs, "Deployment", "ingest")
    if ingest is None or ingest["spec"]["replicas"] != 3:
        problems.append("ingest: expected a Deployment with 3 replicas")
    if by_name(docs, "PodDisruptionBudget", "ingest") is None:
        problems.append("ingest: expected a PodDisruptionBudget with 3 replicas")
    c = container(docs, "ingest")
    env = env_of(c)
    want_plain = {
        "LAKE_URL": "s3://telecom-lake/prod/",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://minio.storage:9000",
        "AWS_ALLOW_HTTP": "true",
        "KAFKA_BROKERS": "mlops-kafka-bootstrap.kafka:9092,mlops-kafka-1.kafka:9092",
        "INGEST_GROUP_ID": "ingest-bronze-prod",
        "INGEST_BATCH_MAX_RECORDS": "100000",
        "DLQ_TOPIC_PARTITIONS": "3",
        "INGEST_REJOIN_AFTER_SECONDS": "300",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4318",
    }
    for k, v in want_plain.items():
        if env.get(k, {}).get("value") != v:
            problems.append(f"ingest: env {k} is {env.get(k)!r}, expected {v!r}")
    for k, key in (("AWS_ACCESS_KEY_ID", "access-key"), ("AWS_SECRET_ACCESS_KEY", "secret-key")):
        ref = env.get(k, {}).get("valueFrom", {}).get("secretKeyRef", {})
        if ref != {"name": "lake-s3-credentials", "key": key}:
            problems.append(f"ingest: env {k} does not reference lake-s3-credentials/{key}: {env.get(k)!r}")
    if c["image"] != "registry.example.com/mlops/mlops-ingest@sha256:" + "0123456789abcdef" * 4:
        problems.append(f"ingest: image is {c['image']}, expected the pinned digest")
    p = container(docs, "producer")
    if p["image"] != "registry.example.com/mlops/mlops-producer:1.2.3":
        problems.append(f"producer: image is {p['image']}")
    if env_of(p).get("PRODUCER_RATE", {}).get("value") != "1000":
        problems.append("producer: PRODUCER_RATE is not 1000")
    if env_of(p).get("EVENTS_TOPIC_PARTITIONS", {}).get("value") != "12":
        problems.append("producer: EVENTS_TOPIC_PARTITIONS is not 12")
    if "OTEL_EXPORTER_OTLP_ENDPOINT" not in env_of(p):
        problems.append("producer: OTEL_EXPORTER_OTLP_ENDPOINT is missing")
    monitors = {m["metadata"]["labels"]["app.kubernetes.io/name"]: m for m in docs if m["kind"] == "ServiceMonitor"}
    if sorted(monitors) != [GATEWAY, "ingest", REGISTRY, TRAINER]:
        problems.append(
            f"expected ServiceMonitors for ingest, {REGISTRY}, {TRAINER} and {GATEWAY} only (producer opts out,"
            f" {TRANSFORM} runs as a CronJob): {sorted(monitors)}"
        )
    elif any(m["metadata"]["labels"].get("release") != "kube-prometheus-stack" for m in monitors.values()):
        problems.append("ServiceMonitor lacks the global label release=kube-prometheus-stack")
    elif monitors["ingest"]["spec"]["endpoints"][0]["interval"] != "10s":
        problems.append("ServiceMonitor interval is not the chart's 10s")
    elif monitors[REGISTRY]["spec"]["endpoints"][0]["interval"] != "15s":
        problems.append(f"{REGISTRY}: ServiceMonitor interval is not the global 15s")
    for s in ("ingest", TRANSFORM, REGISTRY, TRAINER):
        sa = by_name(docs, "ServiceAccount", s)
        if not sa or "eks.amazonaws.com/role-arn" not in sa["metadata"]["annotations"]:
            problems.append(f"{s}: ServiceAccount lacks the IRSA annotation")
    problems += registry_rules(docs)
    problems += scenario_s3_registry(docs)
    problems += transform_rules(docs, deployment=False, cron=True)
    problems += scenario_s3_transform(docs)
    problems += trainer_rules(docs, mode="watch", secret="trainer-approver-token", key="approver-token")
    problems += scenario_s3_trainer(docs, monitors.get(TRAINER))
    problems += gateway_rules(
        docs,
        secret="gateway-reader-token",
        key="reader-token",
        events_topic="registry.events.prod.v1",
        hpa=(3, 20, 60),
        pdb={"minAvailable": 2},
        lake=S3_LAKE,
    )
    problems += scenario_s3_gateway(docs, monitors.get(GATEWAY))
    for w in workloads(docs):
        if pod_spec(w).get("imagePullSecrets") != [{"name": "registry-credentials"}]:
            problems.append(f"{ident(w)}: imagePullSecrets not set from global")
    return problems


def scenario_s3_registry(docs: list[dict[str, Any]]) -> list[str]:
    problems = []
    deploy = by_name(docs, "Deployment", REGISTRY)
    if deploy is None or deploy["spec"]["replicas"] != 3:
        problems.append(f"{REGISTRY}: expected a Deployment with 3 replicas")
    if by_name(docs, "PodDisruptionBudget", REGISTRY) is None:
        problems.append(f"{REGISTRY}: expected a PodDisruptionBudget with 3 replicas")
    c = container(docs, REGISTRY)
    env = env_of(c)
    want_plain = {
        "ARTIFACTS_URL": "s3://telecom-models/registry/",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://minio.storage:9000",
        "AWS_ALLOW_HTTP": "true",
        "DATABASE_MAX_CONNECTIONS": "20",
        "DATABASE_WAIT_SECONDS": "120",
        "REGISTRY_EVENTS": "kafka",
        "REGISTRY_EVENTS_TOPIC": "registry.events.prod.v1",
        "REGISTRY_EVENTS_TOPIC_PARTITIONS": "3",
        "REGISTRY_OUTBOX_INTERVAL_MS": "250",
        "REGISTRY_PROTECTED_ALIASES": "champion,production",
        "REGISTRY_MAX_ARTIFACT_BYTES": "8589934592",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4318",
    }
    for k, v in want_plain.items():
        if env.get(k, {}).get("value") != v:
            problems.append(f"{REGISTRY}: env {k} is {env.get(k)!r}, expected {v!r}")
    ref = env.get("DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef", {})
    if ref != {"name": "registry-postgres", "key": "database-url"}:
        problems.append(f"{REGISTRY}: DATABASE_URL does not reference registry-postgres/database-url: {ref!r}")
    # The artifacts' own Secret replaces the lake's.
    for k, key in (("AWS_ACCESS_KEY_ID", "access-key"), ("AWS_SECRET_ACCESS_KEY", "secret-key")):
        ref = env.get(k, {}).get("valueFrom", {}).get("secretKeyRef", {})
        if ref != {"name": "registry-artifacts-s3", "key": key}:
            problems.append(f"{REGISTRY}: env {k} does not reference registry-artifacts-s3/{key}: {env.get(k)!r}")
    # The bootstrap token: a read-only file from the Secret, never an env value.
    if "REGISTRY_BOOTSTRAP_TOKEN" in env:
        problems.append(f"{REGISTRY}: REGISTRY_BOOTSTRAP_TOKEN is set; expected the token as a file")
    token_file = env.get("REGISTRY_BOOTSTRAP_TOKEN_FILE", {}).get("value", "")
    volumes = {v["name"]: v for v in pod_spec(deploy or {"spec": {"template": {"spec": {}}}}).get("volumes", [])}
    mounts = c.get("volumeMounts", [])
    mount = next((m for m in mounts if token_file.startswith(m["mountPath"].rstrip("/") + "/")), None)
    if not token_file or mount is None:
        problems.append(f"{REGISTRY}: REGISTRY_BOOTSTRAP_TOKEN_FILE {token_file!r} is not on a mounted volume")
    else:
        secret = volumes.get(mount["name"], {}).get("secret", {})
        items = {i["key"]: i["path"] for i in secret.get("items", [])}
        if secret.get("secretName") != "registry-bootstrap" or not mount.get("readOnly"):
            problems.append(f"{REGISTRY}: the token is not mounted read-only from Secret registry-bootstrap")
        elif token_file != f"{mount['mountPath'].rstrip('/')}/{items.get('admin-token')}":
            problems.append(f"{REGISTRY}: REGISTRY_BOOTSTRAP_TOKEN_FILE does not name key admin-token of the Secret")
    if c["image"] != "registry.example.com/mlops/mlops-model-registry:1.2.4":
        problems.append(f"{REGISTRY}: image is {c['image']}, expected the chart's own tag")
    job = by_name(docs, "Job", f"{REGISTRY}-migrate")
    if job is not None:
        if pod_spec(job).get("serviceAccountName") != "registry-migrations":
            problems.append(f"{REGISTRY}: migration Job does not use migrations.serviceAccountName")
        if job["spec"].get("backoffLimit") != 1:
            problems.append(f"{REGISTRY}: migration Job backoffLimit is not 1")
        if pod_spec(job).get("nodeSelector") != {"kubernetes.io/os": "linux"}:
            problems.append(f"{REGISTRY}: migration Job lacks the nodeSelector")
    return problems


def scenario_s3_transform(docs: list[dict[str, Any]]) -> list[str]:
    problems = []
    t = TRANSFORM
    cronjob = by_name(docs, "CronJob", f"{t}-cron")
    if cronjob is None:
        return [f"{t}: no CronJob"]
    spec = cronjob["spec"]
    want = {"schedule": "5 * * * *", "timeZone": "Europe/Berlin", "successfulJobsHistoryLimit": 1}
    for k, v in want.items():
        if spec.get(k) != v:
            problems.append(f"{t}: CronJob {k} is {spec.get(k)!r}, expected {v!r}")
    if spec["jobTemplate"]["spec"].get("activeDeadlineSeconds") != 3000:
        problems.append(f"{t}: CronJob activeDeadlineSeconds is not 3000")
    pod = pod_spec(cronjob)
    c = pod["containers"][0]
    env = env_of(c)
    want_plain = {
        "LAKE_URL": "s3://telecom-lake/prod/",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://minio.storage:9000",
        "TRANSFORM_LATE_HORIZON_DAYS": "30",
        "TRANSFORM_DEDUP_HORIZON_DAYS": "3",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4318",
    }
    for k, v in want_plain.items():
        if env.get(k, {}).get("value") != v:
            problems.append(f"{t}: env {k} is {env.get(k)!r}, expected {v!r}")
    for k, key in (("AWS_ACCESS_KEY_ID", "access-key"), ("AWS_SECRET_ACCESS_KEY", "secret-key")):
        ref = env.get(k, {}).get("valueFrom", {}).get("secretKeyRef", {})
        if ref != {"name": "lake-s3-credentials", "key": key}:
            problems.append(f"{t}: env {k} does not reference lake-s3-credentials/{key}: {env.get(k)!r}")
    if c["image"] != "registry.example.com/mlops/mlops-transform:1.2.3":
        problems.append(f"{t}: image is {c['image']}")
    if c["resources"].get("limits", {}).get("memory") != "8Gi":
        problems.append(f"{t}: resources override not applied")
    tmp = {v["name"]: v for v in pod.get("volumes", [])}.get("tmp", {})
    if tmp.get("emptyDir", {}).get("sizeLimit") != "4Gi":
        problems.append(f"{t}: tmpSizeLimit override not applied")
    return problems


def scenario_s3_trainer(docs: list[dict[str, Any]], monitor: dict[str, Any] | None) -> list[str]:
    problems = []
    t = TRAINER
    deploy = by_name(docs, "Deployment", t)
    if deploy is None:
        return [f"{t}: no Deployment (mode watch)"]
    pod = pod_spec(deploy)
    c = pod["containers"][0]
    env = env_of(c)
    problems += lake_env_rules(t, c, S3_LAKE)
    want_plain = {
        "REGISTRY_URL": "http://registry.mlops-models.svc:50051",
        "TRAINER_MODEL_NAME": "churn-prod",
        "TRAINER_HORIZON_DAYS": "60",
        "TRAINER_TEST_DAYS": "14",
        "TRAINER_VALIDATION_FRACTION": "0.25",
        "TRAINER_SEED": "7",
        "TRAINER_CANDIDATES": "gbdt",
        "TRAINER_MIN_AUC_GAIN": "0.005",
        "TRAINER_MIN_AUC": "0.7",
        "TRAINER_MAX_ECE": "0.03",
        "TRAINER_MIN_NEW_DAYS": "2",
        "TRAINER_INTERVAL_SECONDS": "43200",
        "TRAINER_POLL_SECONDS": "120",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4318",
    }
    for k, v in want_plain.items():
        if env.get(k, {}).get("value") != v:
            problems.append(f"{t}: env {k} is {env.get(k)!r}, expected {v!r}")
    if c["image"] != "registry.example.com/mlops/mlops-trainer:1.2.5":
        problems.append(f"{t}: image is {c['image']}, expected the chart's own tag")
    if c["resources"].get("limits", {}).get("memory") != "12Gi":
        problems.append(f"{t}: resources override not applied")
    work = {v["name"]: v for v in pod.get("volumes", [])}.get("work", {})
    if work.get("emptyDir", {}).get("sizeLimit") != "20Gi":
        problems.append(f"{t}: workDirSizeLimit override not applied")
    if monitor is None or monitor["spec"]["endpoints"][0].get("interval") != "60s":
        problems.append(f"{t}: ServiceMonitor interval is not the chart's 60s")
    return problems


def scenario_s3_gateway(docs: list[dict[str, Any]], monitor: dict[str, Any] | None) -> list[str]:
    problems = []
    g = GATEWAY
    deploy = by_name(docs, "Deployment", g)
    if deploy is None:
        return [f"{g}: no Deployment"]
    pod = pod_spec(deploy)
    c = pod["containers"][0]
    env = env_of(c)
    want_plain = {
        "GATEWAY_MODELS": "churn-prod,churn",
        "REGISTRY_URL": "http://registry.mlops-models.svc:50051",
        "GATEWAY_POLL_SECONDS": "15",
        "GATEWAY_SESSIONS_PER_MODEL": "4",
        "GATEWAY_MAX_REQUEST_BYTES": "33554432",
        "GATEWAY_FEATURES_POLL_SECONDS": "5",
        "GATEWAY_CHURN_MODEL": "churn-prod",
        "REGISTRY_EVENTS_TOPIC": "registry.events.prod.v1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4318",
    }
    for k, v in want_plain.items():
        if env.get(k, {}).get("value") != v:
            problems.append(f"{g}: env {k} is {env.get(k)!r}, expected {v!r}")
    if c["image"] != "registry.example.com/mlops/mlops-gateway:1.2.6":
        problems.append(f"{g}: image is {c['image']}, expected the chart's own tag")
    if c["resources"].get("requests", {}).get("cpu") != "2" or c["resources"].get("limits", {}).get("memory") != "4Gi":
        problems.append(f"{g}: resources override not applied")
    spread = pod.get("topologySpreadConstraints", [])
    if [t.get("topologyKey") for t in spread] != ["topology.kubernetes.io/zone"]:
        problems.append(f"{g}: topologySpreadConstraints not applied: {spread!r}")
    if monitor is None or monitor["spec"]["endpoints"][0].get("interval") != "10s":
        problems.append(f"{g}: ServiceMonitor interval is not the chart's 10s")
    return problems


def scenario_azure(docs: list[dict[str, Any]]) -> list[str]:
    problems = []
    if any(d["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "producer" for d in docs):
        problems.append("producer.enabled=false still renders producer objects")
    ingest = by_name(docs, "Deployment", "ingest")
    if ingest is None or ingest["metadata"]["name"] != "bronze-ingest":
        problems.append("ingest: fullnameOverride not applied")
    c = container(docs, "ingest")
    env = env_of(c)
    if env.get("LAKE_URL", {}).get("value") != "az://telecom-lake/bronze-root/":
        problems.append("ingest: LAKE_URL is not the az:// URL")
    if env.get("AZURE_STORAGE_ACCOUNT_NAME", {}).get("value") != "telecomlake":
        problems.append("ingest: AZURE_STORAGE_ACCOUNT_NAME missing")
    if any(k.startswith("AWS_") for k in env):
        problems.append("ingest: AWS_* env set for an Azure lake")
    if c.get("envFrom") != [{"secretRef": {"name": "lake-azure-credentials"}}]:
        problems.append(f"ingest: envFrom is {c.get('envFrom')!r}, expected the lake-azure-credentials Secret")
    if env.get("LOG_FORMAT", {}).get("value") != "text":
        problems.append("ingest: logFormat override not applied")
    if pod_spec(ingest or {"spec": {"template": {"spec": {}}}}).get("serviceAccountName") != "workload-identity-ingest":
        problems.append("ingest: existing service account not used")
    if by_name(docs, "ServiceAccount", "ingest") is not None:
        problems.append("ingest: ServiceAccount created although serviceAccount.create=false")
    problems += transform_rules(docs)
    t = container(docs, TRANSFORM)
    tenv = env_of(t)
    if tenv.get("LAKE_URL", {}).get("value") != "az://telecom-lake/bronze-root/":
        problems.append(f"{TRANSFORM}: LAKE_URL is not the az:// URL")
    azure = tenv.get("AZURE_STORAGE_ACCOUNT_NAME", {}).get("value")
    if azure != "telecomlake" or any(k.startswith("AWS_") for k in tenv):
        problems.append(f"{TRANSFORM}: storage env is not the Azure lake's")
    if t.get("envFrom") != [{"secretRef": {"name": "lake-azure-credentials"}}]:
        problems.append(f"{TRANSFORM}: envFrom is {t.get('envFrom')!r}, expected the lake-azure-credentials Secret")
    if tenv.get("TRANSFORM_POLL_INTERVAL_SECONDS", {}).get("value") != "300":
        problems.append(f"{TRANSFORM}: pollIntervalSeconds override not applied")
    problems += registry_rules(docs, migration_job=False)
    r = container(docs, REGISTRY)
    renv = env_of(r)
    want_plain = {
        "ARTIFACTS_URL": "az://telecom-models/registry/",
        "AZURE_STORAGE_ACCOUNT_NAME": "telecomlake",
        "REGISTRY_EVENTS": "off",
    }
    for k, v in want_plain.items():
        if renv.get(k, {}).get("value") != v:
            problems.append(f"{REGISTRY}: env {k} is {renv.get(k)!r}, expected {v!r}")
    if r.get("envFrom") != [{"secretRef": {"name": "lake-azure-credentials"}}]:
        problems.append(f"{REGISTRY}: envFrom is {r.get('envFrom')!r}, expected the lake Secret (no artifacts Secret)")
    if by_name(docs, "PodDisruptionBudget", REGISTRY) is not None:
        problems.append(f"{REGISTRY}: PodDisruptionBudget with a single replica")
    problems += trainer_rules(docs, secret="registry-trainer-token")
    # The registry keeps its events in the outbox, so the gateway polls only,
    # on two fixed replicas.
    problems += gateway_rules(docs, events_topic=None, hpa=None, replicas=2, lake=AZURE_LAKE)
    cronjob = by_name(docs, "CronJob", TRAINER)
    if cronjob is not None:
        spec = cronjob["spec"]
        for k, v in {"schedule": "30 2 * * *", "timeZone": "Europe/Amsterdam"}.items():
            if spec.get(k) != v:
                problems.append(f"{TRAINER}: CronJob {k} is {spec.get(k)!r}, expected {v!r}")
        if spec["jobTemplate"]["spec"].get("activeDeadlineSeconds") != 14400:
            problems.append(f"{TRAINER}: CronJob activeDeadlineSeconds is not 14400")
        problems += lake_env_rules(TRAINER, pod_spec(cronjob)["containers"][0], AZURE_LAKE)
    return problems


def spread_rules(docs: list[dict[str, Any]]) -> list[str]:
    """By default every service's pods prefer other nodes than their
    siblings and spread over zones, softly (ScheduleAnyway)."""
    problems = []
    for d in docs:
        if d["kind"] not in ("Deployment", "CronJob"):
            continue
        spec = pod_spec(d)
        labels = {k: v for k, v in d["metadata"]["labels"].items() if k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}
        want_affinity = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": labels}}}
        ]}}
        want_spread = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": labels}}]
        if spec.get("affinity") != want_affinity:
            problems.append(f"{ident(d)}: affinity {spec.get('affinity')!r} is not the soft per-node anti-affinity")
        if spec.get("topologySpreadConstraints") != want_spread:
            problems.append(f"{ident(d)}: topologySpreadConstraints {spec.get('topologySpreadConstraints')!r} do not spread over zones softly")
    return problems


def scenario_default(docs: list[dict[str, Any]]) -> list[str]:
    problems = topic_settings_rules(docs, *DEFAULT_TOPIC_SETTINGS) + spread_rules(docs)
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    want = sorted(
        [f"{k}/{RELEASE}-{s}" for s in SERVICES if s != TRAINER for k in ("Deployment", "Service", "ServiceAccount")]
        # The registry runs 2 replicas and migrates in a hook Job by default.
        + [f"PodDisruptionBudget/{RELEASE}-{REGISTRY}", f"Job/{RELEASE}-{REGISTRY}-migrate"]
        # The trainer runs as a CronJob by default, without a Service.
        + [f"CronJob/{RELEASE}-{TRAINER}", f"ServiceAccount/{RELEASE}-{TRAINER}"]
        # The gateway is autoscaled (at least 2 replicas), so it has a budget.
        + [f"HorizontalPodAutoscaler/{RELEASE}-{GATEWAY}", f"PodDisruptionBudget/{RELEASE}-{GATEWAY}"]
    )
    if kinds != want:
        problems.append(f"default render has {kinds}, expected {want}")
    for s in SERVICES:
        c = pod_spec(workload(docs, s))["containers"][0]
        if "OTEL_EXPORTER_OTLP_ENDPOINT" in env_of(c):
            problems.append(f"{s}: OTEL_EXPORTER_OTLP_ENDPOINT set although no endpoint is configured")
        if c.get("envFrom"):
            problems.append(f"{s}: envFrom set although no Secret is referenced")
    problems += registry_rules(docs)
    problems += transform_rules(docs)
    tenv = env_of(container(docs, TRANSFORM))
    want = {
        "LAKE_URL": "s3://lake/",
        "TRANSFORM_POLL_INTERVAL_SECONDS": "60",
        "TRANSFORM_LATE_HORIZON_DAYS": "14",
        "TRANSFORM_DEDUP_HORIZON_DAYS": "2",
        "TRANSFORM_MAX_CLOCK_SKEW_SECONDS": "3600",
    }
    for k, v in want.items():
        if tenv.get(k, {}).get("value") != v:
            problems.append(f"{TRANSFORM}: env {k} is {tenv.get(k)!r}, expected the service default {v!r}")
    service_defaults = {
        "producer": {"EVENTS_TOPIC_PARTITIONS": "6"},
        "ingest": {"DLQ_TOPIC_PARTITIONS": "-1", "INGEST_REJOIN_AFTER_SECONDS": "120"},
        REGISTRY: {"REGISTRY_EVENTS_TOPIC": "registry.events.v1", "REGISTRY_EVENTS_TOPIC_PARTITIONS": "-1"},
    }
    for s, want in service_defaults.items():
        senv = env_of(container(docs, s))
        for k, v in want.items():
            if senv.get(k, {}).get("value") != v:
                problems.append(f"{s}: env {k} is {senv.get(k)!r}, expected the service default {v!r}")
    env = env_of(container(docs, REGISTRY))
    if any(k.startswith("REGISTRY_BOOTSTRAP_TOKEN") for k in env):
        problems.append(f"{REGISTRY}: a bootstrap token is set although no Secret is referenced")
    problems += trainer_rules(docs)
    cronjob = workload(docs, TRAINER)
    if cronjob["spec"].get("schedule") != "0 */6 * * *":
        problems.append(f"{TRAINER}: CronJob schedule is {cronjob['spec'].get('schedule')!r}, expected '0 */6 * * *'")
    trenv = env_of(pod_spec(cronjob)["containers"][0])
    registry_url = f"http://{RELEASE}-{REGISTRY}:{REGISTRY_GRPC_PORT}"
    want = {**TRAINER_DEFAULTS, "LAKE_URL": "s3://lake/", "REGISTRY_URL": registry_url}
    for k, v in want.items():
        if trenv.get(k, {}).get("value") != v:
            problems.append(f"{TRAINER}: env {k} is {trenv.get(k)!r}, expected the default {v!r}")
    res = pod_spec(cronjob)["containers"][0].get("resources", {})
    if res.get("requests", {}).get("cpu") != "1" or res.get("limits", {}).get("memory") != "4Gi":
        problems.append(f"{TRAINER}: resources are {res!r}, expected the training defaults (1 CPU, 4Gi limit)")
    problems += gateway_rules(docs)
    genv = env_of(container(docs, GATEWAY))
    want = {**GATEWAY_DEFAULTS, "REGISTRY_URL": registry_url}
    for k, v in want.items():
        if genv.get(k, {}).get("value") != v:
            problems.append(f"{GATEWAY}: env {k} is {genv.get(k)!r}, expected the default {v!r}")
    if "GATEWAY_SESSIONS_PER_MODEL" in genv:
        problems.append(f"{GATEWAY}: GATEWAY_SESSIONS_PER_MODEL is set; the default is the service's (the cores)")
    if "GATEWAY_CHURN_MODEL" in genv:
        problems.append(f"{GATEWAY}: GATEWAY_CHURN_MODEL is set; the default is the first of GATEWAY_MODELS")
    reg_topic = env_of(container(docs, REGISTRY)).get("REGISTRY_EVENTS_TOPIC", {}).get("value")
    if genv.get("REGISTRY_EVENTS_TOPIC", {}).get("value") != reg_topic:
        problems.append(f"{GATEWAY}: follows another topic than the registry's events topic {reg_topic!r}")
    return problems


def kube_validate(docs: list[dict[str, Any]], versions: list[str]) -> list[str]:
    problems = []
    for d in docs:
        if d["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # CRD: checked structurally in platform_rules
        for v in versions:
            try:
                kubernetes_validate.validate(strip(d), v, strict=True)
            except kubernetes_validate.ValidationError as e:
                path = "/".join(str(p) for p in e.absolute_path)
                problems.append(f"{ident(d)} @ k8s {v}: {path}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError as e:
                problems.append(f"{ident(d)} @ k8s {v}: {e.message}")
    return problems


def lint(root: Path, chart: str, values: dict[str, Any] | None, kube: str) -> list[str]:
    report = helm.lint(root / chart, values, strict=True, with_subcharts=True, kube_version=f"v{kube}")
    return [f"{chart}: {m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2] + list(
        report.get("errors") or []
    )


def expect_rejected(root: Path, values: dict[str, Any], needle: str) -> list[str]:
    try:
        render(root, values)
    except helm.HelmError as e:
        if re.search(needle, str(e), re.I):
            return []
        return [f"rejected, but the message does not mention {needle!r}: {e}"]
    return [f"values were accepted: {json.dumps(values)}"]


# --------------------------------------------------------------------------
# Compose, Dockerfile, workflows


def check_jsonschema(root: Path, schema: str, files: list[Path]) -> list[str]:
    exe = Path(sys.executable).with_name("check-jsonschema")
    proc = subprocess.run(
        [str(exe), "--builtin-schema", schema, *map(str, files)], capture_output=True, text=True, cwd=root
    )
    return [] if proc.returncode == 0 else [(proc.stdout + proc.stderr).strip()]


INTERPOLATED = re.compile(r"^\$\{[A-Z0-9_]+(:?-[^}]*)?\}$")
INTERPOLATION = re.compile(r"\$\{[A-Z0-9_]+(:?-[^}]*)?\}")


def compose_rules(root: Path) -> list[str]:
    problems = []
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    services = compose["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        for dep, cond in (deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps)):
            if dep not in services:
                problems.append(f"{name}: depends on unknown service {dep}")
            elif cond.get("condition") == "service_healthy" and "healthcheck" not in services[dep]:
                problems.append(f"{name}: waits for {dep} to be healthy, but {dep} has no healthcheck")
            elif cond.get("condition") == "service_completed_successfully" and services[dep].get("restart") not in (
                None,
                "no",
            ):
                problems.append(f"{name}: waits for one-shot {dep}, which restarts")
        env = svc.get("environment", {})
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        for k, v in env.items():
            if SECRET_NAME.search(k) and not INTERPOLATED.match(str(v)):
                problems.append(f"{name}: {k} is a literal; use ${{VAR:-local-default}}")
            # A password inside a URL must be interpolated too.
            if URL_PASSWORD.match(INTERPOLATION.sub("${}", str(v))):
                problems.append(f"{name}: {k} has a literal password in its URL; use ${{VAR:-local-default}}")
    for want in ("kafka", "minio", "minio-init", "postgres", "otel-collector", "prometheus", *SERVICES):
        if want not in services:
            problems.append(f"service {want} is missing")
    if services.get("kafka", {}).get("image") != "apache/kafka:3.9.0":
        problems.append("kafka must run apache/kafka:3.9.0")
    if "broker,controller" not in str(services.get("kafka", {}).get("environment", {}).get("KAFKA_PROCESS_ROLES")):
        problems.append("kafka must run in KRaft mode (broker,controller)")
    for s, port in SERVICES.items():
        svc = services.get(s, {})
        build = svc.get("build", {})
        if build.get("dockerfile") != "deploy/Dockerfile" or build.get("args", {}).get("SERVICE") != s:
            problems.append(f"{s}: must build deploy/Dockerfile with SERVICE={s}")
        if not svc.get("read_only") or "ALL" not in svc.get("cap_drop", []):
            problems.append(f"{s}: must run read-only with all capabilities dropped")
        env = svc.get("environment", {})
        if env.get("ADMIN_ADDR") != f"0.0.0.0:{port}" or env.get("LOG_FORMAT") != "json":
            problems.append(f"{s}: ADMIN_ADDR/LOG_FORMAT not set for containers")
    for s in ("ingest", TRANSFORM, TRAINER, GATEWAY):
        env = services.get(s, {}).get("environment", {})
        lake = str(env.get("LAKE_URL", ""))
        if not lake.startswith("s3://lake") or env.get("AWS_ENDPOINT_URL") != "http://minio:9000":
            problems.append(f"{s}: must use s3://lake/ on MinIO")
        deps = services.get(s, {}).get("depends_on", {})
        deps = deps if isinstance(deps, dict) else {d: {} for d in deps}
        if deps.get("minio-init", {}).get("condition") != "service_completed_successfully":
            problems.append(f"{s}: must wait for minio-init to create the lake bucket")
    for s in NO_KAFKA:
        svc = services.get(s, {})
        if "KAFKA_BROKERS" in svc.get("environment", {}) or {"kafka", "kafka-init"} & set(svc.get("depends_on", {})):
            problems.append(f"{s}: does not use Kafka, so it must not be configured for or wait on it")
    # A single writer: no replicas beyond one.
    if services.get(TRANSFORM, {}).get("deploy", {}).get("replicas", 1) != 1 or "scale" in services.get(TRANSFORM, {}):
        problems.append(f"{TRANSFORM}: must run a single instance")
    problems += compose_registry_rules(services)
    problems += compose_trainer_rules(services)
    problems += compose_gateway_rules(services)
    prom = yaml.safe_load((root / "deploy/compose/prometheus.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]}
    for s, port in SERVICES.items():
        if f"{s}:{port}" not in targets:
            problems.append(f"prometheus does not scrape {s}:{port}")
    otel = yaml.safe_load((root / "deploy/compose/otel-collector.yaml").read_text())
    if "http" not in otel["receivers"]["otlp"]["protocols"]:
        problems.append("otel collector has no OTLP/HTTP receiver")
    for pipeline in otel["service"]["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            for comp in pipeline.get(kind, []):
                if comp not in otel.get(kind, {}):
                    problems.append(f"otel collector pipeline uses undefined {kind[:-1]} {comp}")
    return problems


def compose_port_rules(t: str, svc: dict[str, Any], var: str, port: int, what: str) -> list[str]:
    """Service svc listens on port on every address (env var) and publishes it."""
    ports = [str(p) for p in svc.get("ports", [])]
    if svc.get("environment", {}).get(var) != f"0.0.0.0:{port}" or not any(p.endswith(f":{port}") for p in ports):
        return [f"{t}: {what} must listen on and publish {port} ({var})"]
    return []


def compose_registry_rules(services: dict[str, Any]) -> list[str]:
    """The registry keeps its metadata in the stack's Postgres and its
    artifacts in a MinIO bucket that minio-init creates."""
    problems = []
    reg = services.get(REGISTRY, {})
    env = reg.get("environment", {})
    if not re.match(r"^postgres(ql)?://[^@/]*@postgres:5432/", str(env.get("DATABASE_URL", ""))):
        problems.append(f"{REGISTRY}: DATABASE_URL must point at the postgres service: {env.get('DATABASE_URL')!r}")
    deps = reg.get("depends_on", {})
    deps = deps if isinstance(deps, dict) else {d: {} for d in deps}
    if deps.get("postgres", {}).get("condition") != "service_healthy":
        problems.append(f"{REGISTRY}: must wait for postgres to be healthy (depends_on condition service_healthy)")
    if deps.get("minio-init", {}).get("condition") != "service_completed_successfully":
        problems.append(f"{REGISTRY}: must wait for minio-init to create the artifacts bucket")
    problems += compose_port_rules(REGISTRY, reg, "REGISTRY_GRPC_ADDR", REGISTRY_GRPC_PORT, "gRPC")
    problems += compose_port_rules(REGISTRY, reg, "REGISTRY_HTTP_ADDR", REGISTRY_HTTP_PORT, "MLflow REST")
    bucket = re.match(r"^s3://([^/]+)", str(env.get("ARTIFACTS_URL", "")))
    init = str(services.get("minio-init", {}).get("command", ""))
    if not bucket or env.get("AWS_ENDPOINT_URL") != "http://minio:9000" or f"local/{bucket.group(1)}" not in init:
        problems.append(f"{REGISTRY}: ARTIFACTS_URL must be an s3:// bucket on MinIO that minio-init creates")
    return problems


def compose_trainer_rules(services: dict[str, Any]) -> list[str]:
    """The trainer runs `trainer watch` against the stack's registry, with the
    registry's own bootstrap token (so the two always agree), polling gold
    often; one instance."""
    problems = []
    t = TRAINER
    svc = services.get(t, {})
    env = svc.get("environment", {})
    command = svc.get("command")
    if (command.split() if isinstance(command, str) else command) != ["watch"]:
        problems.append(f"{t}: command is {command!r}, expected watch")
    if env.get("REGISTRY_URL") != f"http://{REGISTRY}:{REGISTRY_GRPC_PORT}":
        problems.append(f"{t}: REGISTRY_URL is {env.get('REGISTRY_URL')!r}, expected the {REGISTRY} service")
    deps = svc.get("depends_on", {})
    deps = deps if isinstance(deps, dict) else {d: {} for d in deps}
    if REGISTRY not in deps:
        problems.append(f"{t}: must depend on {REGISTRY}")
    problems += compose_token_rules(t, env, "TRAINER_REGISTRY_TOKEN", services)
    poll = str(env.get("TRAINER_POLL_SECONDS", ""))
    m = re.match(r"^(?:\$\{[A-Z0-9_]+:?-)?([0-9]+)\}?$", poll)
    if not m or int(m.group(1)) > 300:
        problems.append(f"{t}: TRAINER_POLL_SECONDS is {poll!r}, expected a short poll (at most 300)")
    if svc.get("deploy", {}).get("replicas", 1) != 1 or "scale" in svc:
        problems.append(f"{t}: must run a single instance")
    return problems


def compose_token_rules(t: str, env: dict[str, Any], var: str, services: dict[str, Any]) -> list[str]:
    """A service's registry token in compose: the registry's own bootstrap
    token, interpolated (so the two always agree), never a literal."""
    problems = []
    token = str(env.get(var, ""))
    bootstrap = str(services.get(REGISTRY, {}).get("environment", {}).get("REGISTRY_BOOTSTRAP_TOKEN", ""))
    if f"{var}_FILE" in env:
        problems.append(f"{t}: set {var} or {var}_FILE, not both")
    if not INTERPOLATED.match(token) or token != bootstrap:
        problems.append(f"{t}: {var} {token!r} is not the registry's REGISTRY_BOOTSTRAP_TOKEN {bootstrap!r}")
    else:
        m = re.match(r"^\$\{[A-Z0-9_]+:?-(.*)\}$", token)
        default = m.group(1) if m else ""
        if len(default) < 16:
            problems.append(f"{t}: the token's local default {default!r} is shorter than the registry's 16 characters")
    return problems


def compose_gateway_rules(services: dict[str, Any]) -> list[str]:
    """The gateway serves the Open Inference Protocol on published ports
    (REST and gRPC), reads the stack's registry with the registry's bootstrap token, and
    follows the registry's events on the stack's Kafka (after kafka-init
    created the topic) and logs its predictions to predictions.v1; the lake as the trainer (checked in compose_rules);
    the image's ONNX Runtime library."""
    problems = []
    g = GATEWAY
    svc = services.get(g, {})
    env = svc.get("environment", {})
    problems += compose_port_rules(g, svc, "GATEWAY_HTTP_ADDR", GATEWAY_HTTP_PORT, "the Open Inference Protocol")
    problems += compose_port_rules(g, svc, "GATEWAY_GRPC_ADDR", GATEWAY_GRPC_PORT, "its gRPC binding")
    if env.get("REGISTRY_URL") != f"http://{REGISTRY}:{REGISTRY_GRPC_PORT}":
        problems.append(f"{g}: REGISTRY_URL is {env.get('REGISTRY_URL')!r}, expected the {REGISTRY} service")
    deps = svc.get("depends_on", {})
    deps = deps if isinstance(deps, dict) else {d: {} for d in deps}
    if REGISTRY not in deps:
        problems.append(f"{g}: must depend on {REGISTRY}")
    problems += compose_token_rules(g, env, "GATEWAY_REGISTRY_TOKEN", services)
    if not env.get("GATEWAY_MODELS"):
        problems.append(f"{g}: GATEWAY_MODELS is not set")
    if env.get("GATEWAY_REGISTRY_EVENTS", "kafka") != "kafka":
        problems.append(f"{g}: GATEWAY_REGISTRY_EVENTS is {env.get('GATEWAY_REGISTRY_EVENTS')!r}, expected kafka")
    if env.get("KAFKA_BROKERS") != "kafka:9092":
        problems.append(f"{g}: KAFKA_BROKERS is {env.get('KAFKA_BROKERS')!r}, expected kafka:9092")
    if deps.get("kafka-init", {}).get("condition") != "service_completed_successfully":
        problems.append(f"{g}: must wait for kafka-init to create the registry's events topic")
    topic = services.get(REGISTRY, {}).get("environment", {}).get("REGISTRY_EVENTS_TOPIC")
    if env.get("REGISTRY_EVENTS_TOPIC") != topic:
        got = env.get("REGISTRY_EVENTS_TOPIC")
        problems.append(f"{g}: REGISTRY_EVENTS_TOPIC is {got!r}, not the registry's events topic {topic!r}")
    if env.get("GATEWAY_PREDICTION_LOG", "kafka") != "kafka" or env.get("PREDICTIONS_TOPIC") != "predictions.v1":
        got = (env.get("GATEWAY_PREDICTION_LOG"), env.get("PREDICTIONS_TOPIC"))
        problems.append(f"{g}: GATEWAY_PREDICTION_LOG, PREDICTIONS_TOPIC are {got!r}, expected kafka to predictions.v1")
    if "ORT_DYLIB_PATH" in env:
        problems.append(f"{g}: ORT_DYLIB_PATH is overridden; the image's library is the one it ships")
    if env.get("GATEWAY_PORTAL") != "on":
        problems.append(f"{g}: GATEWAY_PORTAL is {env.get('GATEWAY_PORTAL')!r}, expected on (the portal at :8080)")
    if not re.match(r"^postgres://.*@postgres:5432/portal$", env.get("DATABASE_URL", "")):
        problems.append(f"{g}: DATABASE_URL is {env.get('DATABASE_URL')!r}, expected the stack's Postgres, database portal")
    if deps.get("portal-db-init", {}).get("condition") != "service_completed_successfully":
        problems.append(f"{g}: must wait for portal-db-init to create the portal's database")
    m = re.match(r"^\$\{GATEWAY_ADMIN_PASSWORD:-(.*)\}$", env.get("GATEWAY_ADMIN_PASSWORD", ""))
    if m is None or len(m.group(1)) < 12:
        problems.append(f"{g}: GATEWAY_ADMIN_PASSWORD is {env.get('GATEWAY_ADMIN_PASSWORD')!r}, expected ${{GATEWAY_ADMIN_PASSWORD:-<12+ characters>}}")
    problems += compose_token_rules(g, env, "GATEWAY_PORTAL_APPROVER_TOKEN", services)
    return problems


def dockerfile_rules(root: Path) -> list[str]:
    problems = []
    parser = DockerfileParser(path=str(root / "deploy/Dockerfile"))
    stages: dict[str, dict[str, Any]] = {}
    order: list[dict[str, Any]] = []
    global_args: dict[str, str] = {}
    for ins in parser.structure:
        if ins["instruction"] == "ARG" and not order:
            name, _, default = ins["value"].partition("=")
            global_args[name.strip()] = default.strip()
        elif ins["instruction"] == "FROM":
            parts = ins["value"].split()
            stage = {"base": parts[0], "name": parts[2] if len(parts) > 2 else None, "ins": []}
            order.append(stage)
            if stage["name"]:
                stages[stage["name"]] = stage
        elif order:
            order[-1]["ins"].append(ins)

    def chain(stage: dict[str, Any]) -> list[dict[str, Any]]:
        out = [stage]
        while out[-1]["base"] in stages:
            out.append(stages[out[-1]["base"]])
        return out

    builder = stages.get("builder")
    if not builder or not builder["base"].startswith("rust:1.95-slim-bookworm"):
        problems.append("builder stage must be FROM rust:1.95-slim-bookworm")
    else:
        runs = " ".join(i["value"] for i in builder["ins"] if i["instruction"] == "RUN")
        for needle in (
            "--locked",
            "--release",
            "-p mlops-producer",
            "-p mlops-ingest",
            "-p mlops-transform",
            "-p mlops-model-registry",
            "-p mlops-trainer",
            "-p mlops-gateway",
            "--mount=type=cache",
        ):
            if needle not in runs:
                problems.append(f"builder: cargo build lacks {needle}")
    final = order[-1]
    for service in SERVICES:
        # The default target is `FROM ${SERVICE}`; resolve it as BuildKit does.
        base = final["base"].replace("${SERVICE}", service).replace("$SERVICE", service)
        if base not in stages:
            problems.append(f"final stage FROM {final['base']} does not resolve to a stage for {service}")
            continue
        stack = chain(stages[base])
        root_image = stack[-1]["base"]
        users = [i["value"] for s in reversed(stack) for i in s["ins"] if i["instruction"] == "USER"]
        user = users[-1] if users else ("65532" if root_image.endswith(":nonroot") else "root")
        uid = user.split(":")[0]
        if not uid.isdigit() or int(uid) == 0:
            problems.append(f"{service}: runtime user is {user!r}, expected a numeric non-root UID")
        elif int(uid) != NON_ROOT_UID:
            problems.append(f"{service}: runtime UID {uid} differs from the charts' runAsUser {NON_ROOT_UID}")
        if not root_image.startswith("gcr.io/distroless/") and "slim" not in root_image:
            problems.append(f"{service}: runtime base {root_image} is not a minimal image")
        entry = [i["value"] for s in stack for i in s["ins"] if i["instruction"] == "ENTRYPOINT"]
        if not entry or json.loads(entry[0]) != [f"/usr/local/bin/{service}"]:
            problems.append(f"{service}: ENTRYPOINT must be the exec form of /usr/local/bin/{service}")
        copies = [i["value"] for s in stack for i in s["ins"] if i["instruction"] == "COPY"]
        if not any("--from=builder" in c and f"/out/{service}" in c for c in copies):
            problems.append(f"{service}: binary is not copied from the builder stage")
    problems += dockerfile_ort_rules(stages, chain, global_args)
    ignore = (root / ".dockerignore").read_text().split()
    for needle in ("target/", ".git/", "data/"):
        if needle not in ignore:
            problems.append(f".dockerignore lacks {needle}")
    return problems


def dockerfile_ort_rules(
    stages: dict[str, dict[str, Any]],
    chain: Callable[[dict[str, Any]], list[dict[str, Any]]],
    global_args: dict[str, str],
) -> list[str]:
    """The trainer and gateway images: the binary plus the ONNX Runtime
    shared library from the PyPI wheel (an `onnxruntime` stage, one version
    for both), on the distroless cc runtime (the library needs libstdc++),
    with ORT_DYLIB_PATH naming it; the trainer with `run` as the default
    subcommand, the gateway with GATEWAY_HTTP_ADDR and GATEWAY_GRPC_ADDR and
    their ports exposed."""
    problems = []
    version = global_args.get("ORT_VERSION", "")
    if not re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", version):
        problems.append(f"ARG ORT_VERSION before the first FROM is {version!r}, expected a pinned x.y.z")

    def subst(text: str) -> str:
        return re.sub(r"\$\{?ORT_VERSION\}?", version, text)

    ort = stages.get("onnxruntime")
    if ort is None:
        problems.append("no onnxruntime stage")
    else:
        if not ort["base"].startswith("python:3"):
            problems.append(f"onnxruntime stage is FROM {ort['base']}, expected a python:3 image")
        runs = subst(" ".join(i["value"] for i in ort["ins"] if i["instruction"] == "RUN"))
        lib_in_wheel = f"onnxruntime/capi/libonnxruntime.so.{version}"
        for needle in ("pip install", "--no-deps", f"onnxruntime=={version}", lib_in_wheel):
            if needle not in runs:
                problems.append(f"onnxruntime stage: RUN lacks {needle}")
    lib = f"{ORT_DIR}/libonnxruntime.so.{version}"
    served = {"GATEWAY_HTTP_ADDR": GATEWAY_HTTP_PORT, "GATEWAY_GRPC_ADDR": GATEWAY_GRPC_PORT}
    for service in ORT_SERVICES:
        stage = stages.get(service)
        if stage is None:
            problems.append(f"no {service} stage")
            continue
        stack = chain(stage)
        if stack[-1]["base"] != "gcr.io/distroless/cc-debian12:nonroot":
            base = stack[-1]["base"]
            problems.append(f"{service}: runtime base is {base}, expected the distroless cc image (libstdc++)")
        envs: dict[str, str] = {}
        for st in reversed(stack):
            for i in st["ins"]:
                if i["instruction"] == "ENV":
                    for item in shlex.split(i["value"]):
                        k, _, v = item.partition("=")
                        envs[k] = subst(v)
        if envs.get("ORT_DYLIB_PATH") != lib:
            problems.append(f"{service}: ORT_DYLIB_PATH is {envs.get('ORT_DYLIB_PATH')!r}, expected {lib}")
        if envs.get("ADMIN_ADDR") != f"0.0.0.0:{SERVICES[service]}":
            problems.append(f"{service}: ADMIN_ADDR is {envs.get('ADMIN_ADDR')!r}")
        copies = [subst(i["value"]).split() for i in stage["ins"] if i["instruction"] == "COPY"]
        if not any("--from=onnxruntime" in c and c[-1] == lib for c in copies):
            problems.append(f"{service}: {lib} is not copied from the onnxruntime stage")
        exposed = " ".join(i["value"] for i in stage["ins"] if i["instruction"] == "EXPOSE").split()
        ports = [SERVICES[service]] + (list(served.values()) if service == GATEWAY else [])
        for port in ports:
            if str(port) not in exposed:
                problems.append(f"{service}: does not EXPOSE {port}")
        cmd = [i["value"] for i in stage["ins"] if i["instruction"] == "CMD"]
        if service == TRAINER and (not cmd or json.loads(cmd[-1]) != ["run"]):
            problems.append(f"{TRAINER}: CMD must be the exec form of [\"run\"]: {cmd!r}")
        if service == GATEWAY:
            for var, port in served.items():
                if envs.get(var) != f"0.0.0.0:{port}":
                    problems.append(f"{GATEWAY}: {var} is {envs.get(var)!r}, expected 0.0.0.0:{port}")
            if cmd:
                problems.append(f"{GATEWAY}: CMD {cmd!r} set; the gateway takes no subcommand")
    return problems


# --------------------------------------------------------------------------

# What each service may reach (besides DNS) and who may call which port.
NETWORK_EGRESS = {
    "producer": {"kafka", "otel"},
    "ingest": {"kafka", "objectStorage", "otel"},
    "transform": {"objectStorage", "otel"},
    REGISTRY: {"postgres", "objectStorage", "kafka", "otel"},
    TRAINER: {"objectStorage", "registry", "otel"},
    GATEWAY: {"objectStorage", "registry", "kafka", "postgres", "otel"},
}
NETWORK_PORTS = {"kafka": [9092], "objectStorage": [443, 9000], "postgres": [5432], "otel": [4317, 4318]}
MONITORING = {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
CLIENTS = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"mlops-platform/client": "true"}}}
INGRESS_NS = {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}


def network_rules(docs: list[dict[str, Any]], egress_to: dict[str, list[Any]] | None = None) -> list[str]:
    """global.networkPolicy.enabled: one NetworkPolicy per service selecting
    its pods, denying both directions but DNS, the egress the service needs
    (NETWORK_EGRESS, never an open rule), the admin port from the monitoring
    namespace, the gateway's HTTP/gRPC and the registry's gRPC from labelled
    clients (HTTP also from the ingress controller), and the registry's gRPC
    from the release's trainer and gateway. `egress_to` names the peers an
    egress destination was narrowed to in the values."""
    problems = []
    egress_to = egress_to or {}
    policies = {d["metadata"]["labels"]["app.kubernetes.io/name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    deployed = {d["metadata"]["labels"]["app.kubernetes.io/name"] for d in workloads(docs)} & set(SERVICES)
    if set(policies) != deployed:
        return [f"NetworkPolicies for {sorted(policies)}, expected {sorted(deployed)}"]
    for name, policy in policies.items():
        who, spec = ident(policy), policy["spec"]
        want_pods = {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": RELEASE}
        if spec.get("podSelector", {}).get("matchLabels") != want_pods:
            problems.append(f"{who}: selects {spec.get('podSelector')!r}, expected {want_pods}")
        if sorted(spec.get("policyTypes", [])) != ["Egress", "Ingress"]:
            problems.append(f"{who}: policyTypes {spec.get('policyTypes')!r} do not deny both directions")
        egress = spec.get("egress", [])
        if any(not rule.get("ports") for rule in egress):
            problems.append(f"{who}: an egress rule without ports allows everything")
        dns = [r for r in egress if {p["port"] for p in r.get("ports", [])} == {53}]
        if len(dns) != 1 or sorted(p["protocol"] for p in dns[0]["ports"]) != ["TCP", "UDP"]:
            problems.append(f"{who}: no single DNS rule (53 over UDP and TCP)")
        got = set()
        for rule in egress:
            ports = [p["port"] for p in rule.get("ports", [])]
            if ports == [53, 53]:
                continue
            match = [k for k, v in NETWORK_PORTS.items() if v == ports]
            if ports == ["grpc"] and rule.get("to") == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": REGISTRY, "app.kubernetes.io/instance": RELEASE}}}]:
                got.add("registry")
            elif len(match) == 1 and rule.get("to") == egress_to.get(match[0]):
                got.add(match[0])
            else:
                problems.append(f"{who}: unexpected egress rule {rule!r}")
        if got != NETWORK_EGRESS[name]:
            problems.append(f"{who}: egress to {sorted(got)}, expected {sorted(NETWORK_EGRESS[name])}")
        ingress = {tuple(p["port"] for p in r["ports"]): r["from"] for r in spec.get("ingress", []) if r.get("from") and r.get("ports")}
        want = {("admin",): [{"namespaceSelector": MONITORING}]}
        if name == GATEWAY:
            want[("http",)] = [CLIENTS, {"namespaceSelector": INGRESS_NS}]
            want[("grpc",)] = [CLIENTS]
        if name == REGISTRY:
            callers = [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": n, "app.kubernetes.io/instance": RELEASE}}} for n in (TRAINER, GATEWAY)]
            want[("grpc",)] = [CLIENTS, *callers]
            want[("http",)] = [CLIENTS]
        for ports, peers in want.items():
            if ingress.get(ports) != peers:
                problems.append(f"{who}: ingress to {ports[0]} from {ingress.get(ports)!r}, expected {peers!r}")
        extra = [r for r in spec.get("ingress", []) if tuple(p["port"] for p in r.get("ports", [])) not in want]
        if extra or len(spec.get("ingress", [])) != len(want):
            problems.append(f"{who}: unexpected ingress rules {spec.get('ingress')!r}")
    return problems


ALERTS = {
    "MlopsIngestLag", "MlopsDeadLetterRate", "MlopsTransformStale", "MlopsRegistryOutboxBacklog",
    "MlopsTrainerFailing", "MlopsTrainerNoRecentSuccess", "MlopsGatewayErrors", "MlopsGatewayLatency",
    "MlopsModelLoadFailed", "MlopsNoChampionServed", "MlopsPredictionDrift", "MlopsPredictionLogDropping",
}
METRIC_PREFIXES = ("producer_", "ingest_", "transform_", "registry_", "trainer_", "gateway_")


def exported_metrics(root: Path) -> set[str]:
    """Metric names the services register: the string literals with a
    service prefix in their sources (prometheus-client adds `_total` to
    counters and `_bucket`/`_sum`/`_count` to histograms)."""
    names: set[str] = set()
    literal = re.compile(r'"((?:%s)[a-z0-9_]+)"' % "|".join(METRIC_PREFIXES))
    for src in list(root.glob("services/*/src/**/*.rs")) + list(root.glob("libs/*/src/**/*.rs")):
        names.update(literal.findall(src.read_text()))
    return names


def alert_rules(docs: list[dict[str, Any]], root: Path) -> list[str]:
    """The PrometheusRule (alerts.enabled): every expected alert, each with a
    severity, a summary, a description and a runbook section that exists in
    deploy/README.md, scoped to the release's namespace, and naming only
    metrics the code exports."""
    problems = []
    rules = [d for d in docs if d["kind"] == "PrometheusRule"]
    if len(rules) != 1:
        return [f"expected one PrometheusRule with alerts.enabled, got {len(rules)}"]
    rule = rules[0]
    if rule["apiVersion"] != "monitoring.coreos.com/v1":
        problems.append(f"{ident(rule)}: apiVersion is {rule['apiVersion']}")
    if rule["metadata"].get("labels", {}).get("release") != "kube-prometheus-stack":
        problems.append(f"{ident(rule)}: alerts.labels are not on the PrometheusRule")
    exported = exported_metrics(root)
    readme = (root / "deploy" / "README.md").read_text()
    anchors = {re.sub(r"[^a-z0-9-]", "", h.strip().lower().replace(" ", "-")) for h in re.findall(r"^#+ (.+)$", readme, re.M)}
    seen = set()
    for group in rule["spec"]["groups"]:
        for r in group.get("rules") or []:
            name = r.get("alert", "?")
            seen.add(name)
            expr = str(r.get("expr", ""))
            if r.get("labels", {}).get("severity") not in ("warning", "critical"):
                problems.append(f"{name}: severity is {r.get('labels', {}).get('severity')!r}")
            notes = r.get("annotations", {})
            for key in ("summary", "description", "runbook"):
                if not notes.get(key):
                    problems.append(f"{name}: no {key} annotation")
            runbook = notes.get("runbook", "")
            if runbook != f"deploy/README.md#{name.lower()}" or name.lower() not in anchors:
                problems.append(f"{name}: runbook {runbook!r} is not a section of deploy/README.md")
            metrics = set(re.findall(r"\b((?:%s)[a-z0-9_]+)" % "|".join(METRIC_PREFIXES), expr))
            if not metrics:
                problems.append(f"{name}: its expression names no platform metric: {expr}")
            for m in sorted(metrics):
                base = re.sub(r"_(total|bucket|sum|count)$", "", m)
                if base not in exported and m not in exported:
                    problems.append(f"{name}: {m} is not a metric the code exports")
            selectors = re.findall(r"\{([^}]*)\}", expr)
            if not selectors or any(f'namespace="{NAMESPACE}"' not in sel for sel in selectors):
                problems.append(f"{name}: not every selector is scoped to namespace {NAMESPACE}: {expr}")
    if seen != ALERTS:
        problems.append(f"alerts are {sorted(seen)}, expected {sorted(ALERTS)}")
    return problems


def dashboard_rules(docs: list[dict[str, Any]], root: Path) -> list[str]:
    """dashboards.enabled: a ConfigMap per dashboard file, labelled for the
    Grafana sidecar, holding the file unchanged; the files are what
    scripts/grafana_dashboards.py writes; every query is scoped to the
    namespace variable and names only metrics the code exports."""
    problems = []
    files = {f.name: f.read_text() for f in sorted((root / UMBRELLA / "dashboards").glob("*.json"))}
    maps = [d for d in docs if d["kind"] == "ConfigMap" and "grafana_dashboard" in d["metadata"].get("labels", {})]
    held = {k: v for m in maps for k, v in m.get("data", {}).items()}
    if set(held) != set(files) or len(maps) != len(files) or not files:
        return [f"dashboard ConfigMaps hold {sorted(held)}, expected {sorted(files)}"]
    spec = importlib.util.spec_from_file_location("grafana_dashboards", root / "scripts" / "grafana_dashboards.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    generated = {f"{n}.json": json.dumps(b, indent=2) + "\n" for n, b in [("pipeline", generator.PIPELINE), ("registry", generator.REGISTRY), ("serving", generator.SERVING)]}
    if generated != files:
        problems.append("dashboards/ differs from what scripts/grafana_dashboards.py writes: rerun it")
    exported = exported_metrics(root)
    for name, text in files.items():
        if held[name].rstrip("\n") != text.rstrip("\n"):
            problems.append(f"{name}: the ConfigMap does not hold the file")
        board = json.loads(text)
        for p in board["panels"]:
            for t in p["targets"]:
                expr = t["expr"]
                metrics = set(re.findall(r"\b((?:%s)[a-z0-9_]+)" % "|".join(METRIC_PREFIXES), expr))
                for m in sorted(metrics):
                    if re.sub(r"_(total|bucket|sum|count)$", "", m) not in exported and m not in exported:
                        problems.append(f"{name} / {p['title']}: {m} is not a metric the code exports")
                selectors = re.findall(r"\{([^}]*)\}", re.sub(r"\{\{[^}]*\}\}", "", expr))
                if not metrics or not selectors or any('namespace="$namespace"' not in s for s in selectors):
                    problems.append(f"{name} / {p['title']}: not scoped to $namespace: {expr}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--kube-versions", default="1.30.0 1.37.0")
    args = ap.parse_args()
    root: Path = args.root.resolve()
    versions = args.kube_versions.split()
    helm.disable_logging()
    checks = Checks()

    def deps() -> None:
        for s in SERVICES:
            chart = root / UMBRELLA / "charts" / s
            helm.dependency_build(chart, skip_refresh=True)
            bad = [d for d in helm.dependency_list(chart) if d["status"] != "ok"]
            expect([f"{s}: dependency {d['name']} is {d['status']}" for d in bad])

    checks.run("helm dependency build (library chart into the service charts)", deps)

    values_files = sorted((root / UMBRELLA / "ci").glob("*-values.yaml"))
    scenarios: dict[str, tuple[dict[str, Any], Callable[[list[dict[str, Any]]], list[str]]]] = {
        "default values": ({}, scenario_default),
    }
    extra = {"s3-values.yaml": scenario_s3, "azure-values.yaml": scenario_azure}
    for f in values_files:
        topics = TOPIC_SETTINGS.get(f.name, DEFAULT_TOPIC_SETTINGS)

        def specific(docs: list[dict[str, Any]], f: Path = f, topics: tuple[str, str] = topics) -> list[str]:
            return extra.get(f.name, lambda _docs: [])(docs) + topic_settings_rules(docs, *topics)

        scenarios[f"ci/{f.name}"] = (load_values(f), specific)

    # The service charts take their globals from the umbrella chart.
    # The service charts take their globals (and the values the umbrella sets
    # for them, such as the registry's required Secret name) from the umbrella.
    umbrella_values = load_values(root / UMBRELLA / "values.yaml")

    def chart_values(s: str) -> dict[str, Any]:
        return {"global": umbrella_values["global"], **umbrella_values.get(s, {})}

    checks.run(
        "helm lint (strict) of the library and service charts",
        lambda: expect(
            lint(root, LIBRARY, None, versions[0])
            + [p for s in SERVICES for p in lint(root, f"{UMBRELLA}/charts/{s}", chart_values(s), versions[0])]
        ),
    )
    for label, (values, specific) in scenarios.items():
        checks.run(f"helm lint (strict) mlops-platform with {label}", lambda v=values: expect(lint(root, UMBRELLA, v, versions[0])))

        def scenario(values: dict[str, Any] = values, specific: Callable[..., list[str]] = specific) -> None:
            docs = render(root, values)
            if not docs:
                raise CheckFailed("nothing rendered")
            expect(kube_validate(docs, versions) + platform_rules(docs) + specific(docs))

        checks.run(f"render {label}: k8s {'/'.join(versions)} strict schemas + platform rules", scenario)

    # Transform's two ways to run: the CronJob beside the Deployment (same
    # container, selectors apart), and the CronJob alone.
    transform_cases = [
        (
            f"{TRANSFORM}.cronJob.enabled: CronJob (--once, Forbid) beside the Deployment, same container",
            {TRANSFORM: {"cronJob": {"enabled": True}}},
            True,
        ),
        (
            f"{TRANSFORM}.deployment.enabled=false: the CronJob only, no Deployment, Service or ServiceMonitor",
            {
                TRANSFORM: {"deployment": {"enabled": False}, "cronJob": {"enabled": True}},
                "global": {"serviceMonitor": {"enabled": True}},
            },
            False,
        ),
    ]
    for label, values, deployment in transform_cases:

        def transform_scenario(values: dict[str, Any] = values, deployment: bool = deployment) -> None:
            docs = render(root, values)
            problems = kube_validate(docs, versions) + platform_rules(docs)
            problems += transform_rules(docs, deployment=deployment, cron=True)
            cronjob = by_name(docs, "CronJob", f"{TRANSFORM}-cron")
            if cronjob is not None and cronjob["spec"]["schedule"] != "*/15 * * * *":
                problems.append(f"{ident(cronjob)}: schedule is {cronjob['spec']['schedule']!r}, expected the default")
            expect(problems)

        checks.run(f"render {label}", transform_scenario)

    # The trainer's two modes: the default CronJob and, with mode watch, the
    # Deployment; and switched off.
    def trainer_cronjob() -> None:
        docs = render(root, {})
        mine = [d for d in docs if d["metadata"].get("labels", {}).get("app.kubernetes.io/name") == TRAINER]
        problems = kube_validate(mine, versions) + platform_rules(mine) + trainer_rules(docs)
        expect(problems)

    checks.run(
        f"render {TRAINER} defaults: CronJob (`{TRAINER} run`, Forbid), token from a Secret file, restricted"
        " security context, no plain token",
        trainer_cronjob,
    )

    def trainer_watch() -> None:
        docs = render(root, {TRAINER: {"mode": "watch"}, "global": {"serviceMonitor": {"enabled": True}}})
        problems = kube_validate(docs, versions) + platform_rules(docs) + trainer_rules(docs, mode="watch")
        if by_name(docs, "ServiceMonitor", TRAINER) is None:
            problems.append(f"{TRAINER}: no ServiceMonitor in mode watch with global.serviceMonitor.enabled")
        expect(problems)

    checks.run(
        f"render {TRAINER}.mode=watch: Deployment (`{TRAINER} watch`, 1 replica, Recreate) with probes, Service,"
        " ServiceMonitor, no CronJob",
        trainer_watch,
    )

    def trainer_disabled() -> None:
        docs = render(root, {TRAINER: {"enabled": False}})
        left = [ident(d) for d in docs if TRAINER in d["metadata"].get("labels", {}).get("app.kubernetes.io/name", "")]
        expect([f"{TRAINER}.enabled=false still renders {', '.join(left)}"] if left else [])

    checks.run(f"render {TRAINER}.enabled=false: no trainer objects", trainer_disabled)

    # The gateway: autoscaled by default, on a fixed count without the
    # autoscaler; without client auth; and switched off.
    def gateway_render(values: dict[str, Any], **rules: Any) -> tuple[list[dict[str, Any]], list[str]]:
        docs = render(root, values)
        mine = [d for d in docs if d["metadata"].get("labels", {}).get("app.kubernetes.io/name") == GATEWAY]
        return docs, kube_validate(mine, versions) + platform_rules(mine) + gateway_rules(docs, **rules)

    def gateway_defaults() -> None:
        docs, problems = gateway_render({"global": {"serviceMonitor": {"enabled": True}}})
        if by_name(docs, "ServiceMonitor", GATEWAY) is None:
            problems.append(f"{GATEWAY}: no ServiceMonitor with global.serviceMonitor.enabled")
        expect(problems)

    checks.run(
        f"render {GATEWAY} defaults: Deployment without a replica count under an autoscaling/v2 CPU"
        f" HorizontalPodAutoscaler (2-10), PodDisruptionBudget, Service http {GATEWAY_HTTP_PORT} +"
        f" grpc {GATEWAY_GRPC_PORT} + admin, GATEWAY_AUTH=registry, ServiceMonitor, token from a Secret file,"
        " restricted security context, no plain token",
        gateway_defaults,
    )
    checks.run(
        f"render {GATEWAY}.autoscaling.enabled=false, replicaCount 1: 1 replica, no autoscaler,"
        " no PodDisruptionBudget",
        lambda: expect(
            gateway_render({GATEWAY: {"autoscaling": {"enabled": False}, "replicaCount": 1}}, hpa=None, replicas=1)[1]
        ),
    )
    checks.run(
        f"render {GATEWAY}.auth.enabled=false: GATEWAY_AUTH=off, no GATEWAY_AUTH_CACHE_SECONDS",
        lambda: expect(gateway_render({GATEWAY: {"auth": {"enabled": False}}}, auth=False)[1]),
    )
    checks.run(
        f"render {GATEWAY}.portal and ingress enabled: GATEWAY_PORTAL=on, DATABASE_URL and the admin password"
        " from Secrets only, a TLS Ingress to the http port",
        lambda: expect(gateway_render({GATEWAY: PORTAL_VALUES}, portal=True)[1]),
    )
    def registry_autoscaled() -> None:
        docs = render(root, {REGISTRY: {"autoscaling": {"enabled": True}}})
        problems = kube_validate([d for d in docs if d["metadata"].get("labels", {}).get("app.kubernetes.io/name") == REGISTRY], versions)
        hpa = by_name(docs, "HorizontalPodAutoscaler", REGISTRY)
        deploy = by_name(docs, "Deployment", REGISTRY)
        if hpa is None or deploy is None:
            expect([f"{REGISTRY}: no HorizontalPodAutoscaler or Deployment with autoscaling.enabled"])
        spec = hpa["spec"]
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": deploy["metadata"]["name"]}
        if spec.get("scaleTargetRef") != target or (spec.get("minReplicas"), spec.get("maxReplicas")) != (2, 6):
            problems.append(f"{ident(hpa)}: targets {spec.get('scaleTargetRef')!r} with {spec.get('minReplicas')}..{spec.get('maxReplicas')}")
        if "replicas" in deploy["spec"]:
            problems.append(f"{ident(deploy)}: sets replicas although its autoscaler owns the count")
        if by_name(docs, "PodDisruptionBudget", REGISTRY) is None:
            problems.append(f"{REGISTRY}: no PodDisruptionBudget for its 2+ autoscaled replicas")
        expect(problems)

    checks.run(
        f"render {REGISTRY}.autoscaling.enabled: an autoscaling/v2 HorizontalPodAutoscaler (2-6) owns the"
        " replica count, with a PodDisruptionBudget",
        registry_autoscaled,
    )
    def argocd() -> None:
        app = yaml.safe_load((root / "deploy" / "argocd" / "mlops-platform.yaml").read_text())
        chart = yaml.safe_load((root / UMBRELLA / "Chart.yaml").read_text())
        problems = []
        source, dest = app["spec"]["source"], app["spec"]["destination"]
        if app.get("kind") != "Application" or source.get("chart") != "mlops-platform":
            problems.append("deploy/argocd: not an Argo CD Application of the mlops-platform chart")
        if str(source.get("targetRevision")) != chart["version"]:
            problems.append(f"deploy/argocd: targetRevision {source.get('targetRevision')} is not the chart's {chart['version']}")
        if (source["helm"].get("releaseName"), dest.get("namespace")) != (RELEASE, NAMESPACE):
            problems.append("deploy/argocd: release and namespace differ from the ones the checks render with")
        docs = render(root, source["helm"]["valuesObject"])
        plain = [d for d in docs if not d["apiVersion"].startswith("monitoring.coreos.com/")]
        np = source["helm"]["valuesObject"]["global"]["networkPolicy"]
        peers = {k: v["to"] for k, v in np.items() if isinstance(v, dict) and v.get("to")}
        problems += kube_validate(plain, versions) + platform_rules(docs) + network_rules(docs, peers)
        problems += alert_rules(docs, root) + dashboard_rules(docs, root)
        expect(problems)

    checks.run(
        "deploy/argocd: the Application installs this chart version; its values render and pass the strict"
        " schemas, platform, network, alert and dashboard rules",
        argocd,
    )
    def network() -> None:
        problems = [f"{ident(d)} rendered with global.networkPolicy.enabled false" for d in render(root, {}) if d["kind"] == "NetworkPolicy"]
        values = {"global": {"networkPolicy": {"enabled": True}}, GATEWAY: {"ingress": PORTAL_VALUES["ingress"]}}
        docs = render(root, values)
        policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
        expect(problems + kube_validate(policies, versions) + network_rules(docs))

    checks.run(
        "render global.networkPolicy.enabled: per service, default deny with DNS and only its egress,"
        " admin from monitoring, the APIs from labelled clients, the registry from the trainer and gateway",
        network,
    )
    def dashboards() -> None:
        problems = [f"{ident(d)} rendered with dashboards.enabled false" for d in render(root, {}) if "grafana_dashboard" in d["metadata"].get("labels", {})]
        expect(problems + dashboard_rules(render(root, {"dashboards": {"enabled": True}}), root))

    checks.run(
        "render dashboards.enabled: a sidecar ConfigMap per dashboard, the files as the generator writes them,"
        " every query scoped to $namespace and naming only metrics the code exports",
        dashboards,
    )
    def alerts() -> None:
        problems = [f"{ident(d)} rendered with alerts.enabled false" for d in render(root, {}) if d["kind"] == "PrometheusRule"]
        docs = render(root, {"alerts": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}})
        expect(problems + alert_rules(docs, root))

    checks.run(
        "render alerts.enabled: one PrometheusRule, every alert with severity, summary and a runbook"
        " section in deploy/README.md, scoped to the namespace, naming only metrics the code exports",
        alerts,
    )
    checks.run(
        f"render {GATEWAY}.events and predictionLog disabled: GATEWAY_REGISTRY_EVENTS=off,"
        " GATEWAY_PREDICTION_LOG=off, no KAFKA_* or PREDICTIONS_* settings",
        lambda: expect(
            gateway_render(
                {GATEWAY: {"events": {"enabled": False}, "predictionLog": {"enabled": False}}},
                events_topic=None,
                predictions_topic=None,
            )[1]
        ),
    )

    def gateway_disabled() -> None:
        docs = render(root, {GATEWAY: {"enabled": False}})
        left = [ident(d) for d in docs if d["metadata"].get("labels", {}).get("app.kubernetes.io/name") == GATEWAY]
        expect([f"{GATEWAY}.enabled=false still renders {', '.join(left)}"] if left else [])

    checks.run(f"render {GATEWAY}.enabled=false: no gateway objects", gateway_disabled)

    rejections = [
        ("ingest.replicaCount: \"three\"", {"ingest": {"replicaCount": "three"}}, r"replicaCount"),
        ("global.logFormat: xml", {"global": {"logFormat": "xml"}}, r"logFormat"),
        (
            "global.kafka.replicationFactor: 0",
            {"global": {"kafka": {"replicationFactor": 0}}},
            r"replicationFactor",
        ),
        ("ingest.dlqPartitions: 0", {"ingest": {"dlqPartitions": 0}}, r"dlqPartitions"),
        ("ingest.rejoinAfterSeconds: 0", {"ingest": {"rejoinAfterSeconds": 0}}, r"rejoinAfterSeconds"),
        ("global.lake.url: http://…", {"global": {"lake": {"url": "http://bucket"}}}, r"url"),
        ("unknown producer key (typo)", {"producer": {"replicas": 2}}, r"replicas"),
        ("gateway.features.pollSeconds: 0", {GATEWAY: {"features": {"pollSeconds": 0}}}, r"pollSeconds"),
        ("gateway.drift.windowRows: 0", {GATEWAY: {"drift": {"windowRows": 0}}}, r"windowRows"),
        (
            "credentials key for an unknown env var",
            {"global": {"lake": {"credentials": {"existingSecret": "s", "keys": {"AWS_SECRET": "k"}}}}},
            r"AWS_SECRET",
        ),
        (
            "inline secret in extraEnv",
            {"ingest": {"extraEnv": [{"name": "AWS_SECRET_ACCESS_KEY", "value": "hunter2"}]}},
            r"inline value",
        ),
        (
            "model-registry without database.existingSecret",
            {REGISTRY: {"database": {"existingSecret": ""}}},
            r"database\.existingSecret is required",
        ),
        ("model-registry without artifacts.url", {REGISTRY: {"artifacts": {"url": ""}}}, r"artifacts\.url is required"),
        (
            "a database URL with a password in extraEnv",
            {REGISTRY: {"extraEnv": [{"name": "DATABASE_URL", "value": "postgres://reg:hunter2@db:5432/registry"}]}},
            r"password in its URL",
        ),
        (
            "model-registry.protectedAliases: [Champion]",
            {REGISTRY: {"protectedAliases": ["Champion"]}},
            r"protectedAliases",
        ),
        (f"{TRANSFORM}.replicaCount: 2 (single writer)", {TRANSFORM: {"replicaCount": 2}}, r"replicaCount"),
        (
            f"{TRANSFORM}.strategy: RollingUpdate",
            {TRANSFORM: {"strategy": {"type": "RollingUpdate"}}},
            r"strategy",
        ),
        (
            f"{TRANSFORM}.dedupHorizonDays above lateHorizonDays",
            {TRANSFORM: {"lateHorizonDays": 3, "dedupHorizonDays": 7}},
            r"dedupHorizonDays",
        ),
        (
            f"{TRAINER} without registry.tokenSecret.existingSecret",
            {TRAINER: {"registry": {"tokenSecret": {"existingSecret": ""}}}},
            r"tokenSecret\.existingSecret is required",
        ),
        (
            f"{TRAINER}: an inline TRAINER_REGISTRY_TOKEN in extraEnv",
            {TRAINER: {"extraEnv": [{"name": "TRAINER_REGISTRY_TOKEN", "value": "mlops_0123456789abcdef"}]}},
            r"inline value",
        ),
        (f"{TRAINER}.mode: daily", {TRAINER: {"mode": "daily"}}, r"mode"),
        (f"{TRAINER}.replicaCount: 2 (one trainer)", {TRAINER: {"replicaCount": 2}}, r"replicaCount"),
        (f"{TRAINER}.validationFraction: 1", {TRAINER: {"validationFraction": 1}}, r"validationFraction"),
        (f"{TRAINER}.candidates: []", {TRAINER: {"candidates": []}}, r"candidates"),
        (
            f"{GATEWAY} without registry.tokenSecret.existingSecret",
            {GATEWAY: {"registry": {"tokenSecret": {"existingSecret": ""}}}},
            r"tokenSecret\.existingSecret is required",
        ),
        (
            f"{GATEWAY}: an inline GATEWAY_REGISTRY_TOKEN in extraEnv",
            {GATEWAY: {"extraEnv": [{"name": "GATEWAY_REGISTRY_TOKEN", "value": "mlops_0123456789abcdef"}]}},
            r"inline value",
        ),
        (
            f"{GATEWAY}.portal without database.existingSecret",
            {GATEWAY: {"portal": {"enabled": True, "adminPassword": {"existingSecret": "a"}}}},
            r"portal\.database\.existingSecret is required",
        ),
        (
            f"{GATEWAY}.portal without adminPassword.existingSecret",
            {GATEWAY: {"portal": {"enabled": True, "database": {"existingSecret": "d"}}}},
            r"portal\.adminPassword\.existingSecret is required",
        ),
        (
            f"{GATEWAY}.ingress without tlsSecret",
            {GATEWAY: {"ingress": {"enabled": True, "host": "mlops.example.com"}}},
            r"ingress\.tlsSecret is required",
        ),
        (f"{GATEWAY}.models: []", {GATEWAY: {"models": []}}, r"models"),
        (f"{GATEWAY}.models: [\"churn model\"]", {GATEWAY: {"models": ["churn model"]}}, r"models"),
        (f"{GATEWAY}.auth.cacheSeconds: -1", {GATEWAY: {"auth": {"cacheSeconds": -1}}}, r"cacheSeconds"),
        (
            f"{GATEWAY}.autoscaling.maxReplicas below minReplicas",
            {GATEWAY: {"autoscaling": {"minReplicas": 4, "maxReplicas": 2}}},
            r"maxReplicas",
        ),
        (
            f"{GATEWAY}.autoscaling.targetCPUUtilizationPercentage: 0",
            {GATEWAY: {"autoscaling": {"targetCPUUtilizationPercentage": 0}}},
            r"targetCPUUtilizationPercentage",
        ),
        (
            f"{GATEWAY}.podDisruptionBudget.minAvailable: half",
            {GATEWAY: {"podDisruptionBudget": {"minAvailable": "half"}}},
            r"minAvailable",
        ),
    ]
    for label, values, needle in rejections:
        checks.run(f"chart rejects {label}", lambda v=values, n=needle: expect(expect_rejected(root, v, n)))

    checks.run(
        "docker-compose.yml against the compose-spec schema",
        lambda: expect(check_jsonschema(root, "vendor.compose-spec", [root / "docker-compose.yml"])),
    )
    checks.run("docker-compose.yml stack rules", lambda: expect(compose_rules(root)))
    checks.run(
        "deploy/Dockerfile: non-root distroless runtime per service, trainer and gateway with ONNX Runtime"
        " (ORT_DYLIB_PATH)",
        lambda: expect(dockerfile_rules(root)),
    )
    workflows = sorted((root / ".github/workflows").glob("*.yml"))
    checks.run(
        "GitHub workflows against their schema",
        lambda: expect(check_jsonschema(root, "vendor.github-workflows", workflows) if workflows else ["no workflows"]),
    )

    total = checks.passed + len(checks.failed)
    print()
    if checks.failed:
        print("failed: " + "; ".join(checks.failed))
    print(f"check-deploy: {checks.passed} passed, {len(checks.failed)} failed")
    return 1 if checks.failed or total == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
