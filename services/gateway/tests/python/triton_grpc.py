"""Drives the gateway's gRPC binding with tritonclient[grpc] at its defaults
(raw tensor contents both ways) for the two scikit-learn models of
sklearn_models.py; checks every score against scikit-learn's.

Usage: triton_grpc.py HOST:PORT TOKEN PIPELINE_MODEL FOREST_MODEL ROWS_JSON
Prints one JSON line with the largest differences seen.
"""
import json
import sys

import numpy as np
import tritonclient.grpc as grpcclient

address, token, pipeline_name, forest_name, rows_path = sys.argv[1:6]
rows = json.loads(open(rows_path).read())
client = grpcclient.InferenceServerClient(url=address)
auth = {"authorization": f"Bearer {token}"}

assert client.is_server_live(), "server not live"
assert client.is_server_ready(), "server not ready"
metadata = client.get_server_metadata(headers=auth)
assert metadata.name == "mlops-gateway", metadata
assert "model_repository" in metadata.extensions, metadata
differences = {}

# The pipeline: one input per column, the plan as BYTES.
assert client.is_model_ready(pipeline_name, headers=auth)
model = client.get_model_metadata(pipeline_name, headers=auth)
assert [i.name for i in model.inputs] == ["tenure", "usage", "plan"], model
assert model.platform == "onnxruntime_onnx", model
n = len(rows["plan"])
inputs = []
for name, values, datatype in [
    ("tenure", np.array(rows["tenure"], dtype=np.float32).reshape(n, 1), "FP32"),
    ("usage", np.array(rows["usage"], dtype=np.float32).reshape(n, 1), "FP32"),
    ("plan", np.array(rows["plan"], dtype=object).reshape(n, 1), "BYTES"),
]:
    tensor = grpcclient.InferInput(name, list(values.shape), datatype)
    tensor.set_data_from_numpy(values)
    inputs.append(tensor)
result = client.infer(pipeline_name, inputs, request_id="grpc-1", headers=auth)
response = result.get_response()
assert response.id == "grpc-1", response.id
assert response.model_version == model.versions[0], (response.model_version, model.versions)
probabilities = result.as_numpy("output_probability")
want = np.array(rows["pipeline_probabilities"], dtype=np.float32)
assert probabilities.shape == want.shape, (probabilities.shape, want.shape)
assert result.as_numpy("output_label").shape == (n,)
differences["pipeline_grpc"] = float(np.abs(probabilities - want).max())

# The forest: one float matrix, one output asked for.
matrix = np.array(rows["matrix"], dtype=np.float32)
tensor = grpcclient.InferInput("input", list(matrix.shape), "FP32")
tensor.set_data_from_numpy(matrix)
result = client.infer(
    forest_name, [tensor],
    outputs=[grpcclient.InferRequestedOutput("output_probability")], headers=auth,
)
assert [o.name for o in result.get_response().outputs] == ["output_probability"]
want = np.array(rows["forest_probabilities"], dtype=np.float32)
differences["forest_grpc"] = float(np.abs(result.as_numpy("output_probability") - want).max())

# The repository extension over gRPC.
index = client.get_model_repository_index(headers=auth)
states = {m.name: m.state for m in index.models}
assert states == {pipeline_name: "READY", forest_name: "READY"}, states


def refused(call, want_status, want_text):
    try:
        call()
    except grpcclient.InferenceServerException as error:
        assert error.status() == want_status, (error.status(), error.message())
        assert want_text in error.message(), error.message()
        return
    raise SystemExit(f"expected {want_status}")


wrong = grpcclient.InferInput("wrong", [1, 3], "FP32")
wrong.set_data_from_numpy(matrix[:1])
refused(lambda: client.infer(forest_name, [wrong], headers=auth),
        "StatusCode.INVALID_ARGUMENT", 'unknown input "wrong"')
refused(lambda: client.infer("no-such-model", [tensor], headers=auth),
        "StatusCode.NOT_FOUND", 'unknown model "no-such-model"')
refused(lambda: client.get_model_metadata(forest_name, model_version="999", headers=auth),
        "StatusCode.NOT_FOUND", 'has no version "999"')
refused(lambda: client.get_model_metadata(forest_name),
        "StatusCode.UNAUTHENTICATED", "Bearer")
refused(lambda: client.get_model_metadata(forest_name, headers={"authorization": "Bearer nope"}),
        "StatusCode.UNAUTHENTICATED", "not valid")

print(json.dumps(differences))
