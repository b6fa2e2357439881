"""Drives the gateway with tritonclient[http] at its defaults (binary
tensors both ways) and with a plain JSON request, for the two scikit-learn
models of sklearn_models.py; checks every score against scikit-learn's.

Usage: triton_http.py HOST:PORT TOKEN PIPELINE_MODEL FOREST_MODEL ROWS_JSON
Prints one JSON line with the largest differences seen.
"""
import json
import sys
import urllib.request

import numpy as np
import tritonclient.http as httpclient

address, token, pipeline_name, forest_name, rows_path = sys.argv[1:6]
rows = json.loads(open(rows_path).read())
client = httpclient.InferenceServerClient(url=address)
# tritonclient adds Inference-Header-Content-Length to the headers dict it
# is given, so every call gets a fresh one.
def auth():
    return {"Authorization": f"Bearer {token}"}


assert client.is_server_live(), "server not live"
assert client.is_server_ready(), "server not ready"
metadata = client.get_server_metadata(headers=auth())
assert "binary_tensor_data" in metadata["extensions"], metadata
differences = {}

# The pipeline: one input per column, the plan as BYTES.
assert client.is_model_ready(pipeline_name, headers=auth())
model = client.get_model_metadata(pipeline_name, headers=auth())
assert [i["name"] for i in model["inputs"]] == ["tenure", "usage", "plan"], model
assert {o["name"]: o["datatype"] for o in model["outputs"]}["output_probability"] == "FP32", model
n = len(rows["plan"])
inputs = []
for name, values, datatype in [
    ("tenure", np.array(rows["tenure"], dtype=np.float32).reshape(n, 1), "FP32"),
    ("usage", np.array(rows["usage"], dtype=np.float32).reshape(n, 1), "FP32"),
    ("plan", np.array(rows["plan"], dtype=object).reshape(n, 1), "BYTES"),
]:
    tensor = httpclient.InferInput(name, list(values.shape), datatype)
    tensor.set_data_from_numpy(values)
    inputs.append(tensor)
result = client.infer(pipeline_name, inputs, headers=auth())
probabilities = result.as_numpy("output_probability")
labels = result.as_numpy("output_label")
want = np.array(rows["pipeline_probabilities"], dtype=np.float32)
assert probabilities.shape == want.shape, (probabilities.shape, want.shape)
assert labels.shape == (n,), labels.shape
differences["pipeline_binary"] = float(np.abs(probabilities - want).max())
version = result.get_response()["model_version"]

# The same request as plain JSON.
body = json.dumps({"inputs": [
    {"name": "tenure", "shape": [n, 1], "datatype": "FP32", "data": rows["tenure"]},
    {"name": "usage", "shape": [n, 1], "datatype": "FP32", "data": rows["usage"]},
    {"name": "plan", "shape": [n, 1], "datatype": "BYTES", "data": rows["plan"]},
], "outputs": [{"name": "output_probability"}]}).encode()
request = urllib.request.Request(
    f"http://{address}/v2/models/{pipeline_name}/infer", data=body,
    headers={"Content-Type": "application/json", **auth()},
)
with urllib.request.urlopen(request) as response:
    assert response.headers["Content-Type"] == "application/json"
    answer = json.loads(response.read())
got = np.array(answer["outputs"][0]["data"], dtype=np.float32).reshape(n, 2)
differences["pipeline_json"] = float(np.abs(got - want).max())
assert answer["model_version"] == version, answer

# The forest: one float matrix.
model = client.get_model_metadata(forest_name, headers=auth())
assert model["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 3]}], model
matrix = np.array(rows["matrix"], dtype=np.float32)
tensor = httpclient.InferInput("input", list(matrix.shape), "FP32")
tensor.set_data_from_numpy(matrix)
result = client.infer(forest_name, [tensor], outputs=[httpclient.InferRequestedOutput("output_probability")], headers=auth())
got = result.as_numpy("output_probability")
want = np.array(rows["forest_probabilities"], dtype=np.float32)
differences["forest_binary"] = float(np.abs(got - want).max())

# Errors come back as the client's exception with the server's message.
try:
    tensor = httpclient.InferInput("wrong", [1, 3], "FP32")
    tensor.set_data_from_numpy(matrix[:1])
    client.infer(forest_name, [tensor], headers=auth())
    raise SystemExit("an unknown input was accepted")
except httpclient.InferenceServerException as error:
    assert "unknown input \"wrong\"" in error.message(), error.message()


# Without the token, the client gets the server's 401 message.
try:
    client.get_model_metadata(forest_name)
    raise SystemExit("a call without a token was answered")
except httpclient.InferenceServerException as error:
    assert "Bearer" in error.message(), error.message()

print(json.dumps(differences))
