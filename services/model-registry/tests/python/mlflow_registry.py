"""A data scientist's MLflow client against the registry's MLflow REST API:
the model registry half of `mlflow.MlflowClient`, with MLflow's own error
handling. The test has registered `churn-mlflow` versions 1 and 2 over
gRPC (version 2 tagged `stage_hint=candidate`) before this runs.

Usage: mlflow_registry.py   (MLFLOW_TRACKING_URI set; a writer token in
WRITER_TOKEN, an approver token in APPROVER_TOKEN)
Prints a JSON report as its last line.
"""

import json
import os

import warnings

import mlflow
from mlflow.exceptions import MlflowException

MODEL = "churn-mlflow"


def as_token(name: str) -> None:
    os.environ["MLFLOW_TRACKING_TOKEN"] = os.environ[name]


def error_of(call) -> dict:
    try:
        call()
    except MlflowException as e:
        return {"code": e.error_code, "message": e.message}
    raise AssertionError("the call succeeded but should have failed")


def main() -> None:
    # get_latest_versions and stages are deprecated in MLflow; their answers are still tested.
    warnings.simplefilter("ignore", FutureWarning)
    report = {}
    as_token("WRITER_TOKEN")
    client = mlflow.MlflowClient()

    created = client.create_registered_model("churn-notebook", tags={"team": "retention"}, description="from MLflow")
    report["created"] = {"name": created.name, "tags": dict(created.tags), "description": created.description}
    report["duplicate"] = error_of(lambda: client.create_registered_model("churn-notebook"))
    report["missing"] = error_of(lambda: client.get_registered_model("no-such-model"))

    model = client.get_registered_model(MODEL)
    report["latest_versions"] = [v.version for v in model.latest_versions]

    client.set_registered_model_alias(MODEL, "challenger", "2")
    report["champion_as_writer"] = error_of(lambda: client.set_registered_model_alias(MODEL, "champion", "1"))
    as_token("APPROVER_TOKEN")
    client.set_registered_model_alias(MODEL, "champion", "1")
    as_token("WRITER_TOKEN")
    champion = client.get_model_version_by_alias(MODEL, "champion")
    report["champion"] = {"version": champion.version, "aliases": list(champion.aliases), "status": champion.status}
    report["model_aliases"] = dict(client.get_registered_model(MODEL).aliases)

    by_tag = client.search_model_versions(f"name='{MODEL}' and tags.stage_hint='candidate'")
    report["by_tag"] = [v.version for v in by_tag]
    ordered = client.search_model_versions(f"name = '{MODEL}'", order_by=["version_number DESC"])
    report["ordered"] = [v.version for v in ordered]
    report["models_by_prefix"] = sorted(m.name for m in client.search_registered_models("name LIKE 'churn-%'"))
    report["latest"] = [v.version for v in client.get_latest_versions(MODEL)]
    report["ilike"] = error_of(lambda: client.search_model_versions("name ILIKE 'churn%'"))

    client.update_model_version(MODEL, "2", description="retrained on November")
    client.set_model_version_tag(MODEL, "2", "reviewed", "yes")
    client.set_model_version_tag(MODEL, "2", "scratch", "x")
    client.delete_model_version_tag(MODEL, "2", "scratch")
    v2 = client.get_model_version(MODEL, "2")
    report["v2"] = {"description": v2.description, "tags": dict(v2.tags), "aliases": list(v2.aliases)}

    client.update_registered_model("churn-notebook", description="edited")
    client.set_registered_model_tag("churn-notebook", "owner", "ds-team")
    client.delete_registered_model_tag("churn-notebook", "team")
    edited = client.get_registered_model("churn-notebook")
    report["edited"] = {"description": edited.description, "tags": dict(edited.tags)}

    client.delete_registered_model_alias(MODEL, "challenger")
    report["challenger_gone"] = error_of(lambda: client.get_model_version_by_alias(MODEL, "challenger"))
    report["stage"] = error_of(lambda: client.transition_model_version_stage(MODEL, "1", "Production"))

    client.delete_registered_model("churn-notebook")
    report["deleted"] = error_of(lambda: client.get_registered_model("churn-notebook"))
    report["after_delete"] = sorted(m.name for m in client.search_registered_models("name LIKE 'churn-%'"))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
