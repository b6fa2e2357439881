"""Trains two scikit-learn models on a small synthetic subscriber table and
exports them with skl2onnx's default options (ZipMap output included):

- pipeline.onnx: Pipeline(ColumnTransformer(StandardScaler on tenure and
  usage, OneHotEncoder on plan), LogisticRegression), one input per column
  (tenure and usage float, plan string), as skl2onnx does for a DataFrame;
- forest.onnx: RandomForestClassifier on a float matrix [-1, 3].

Writes them into the directory given, with rows.json: the test rows and
scikit-learn's own probabilities for them, to compare served scores with.
"""
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

out = Path(sys.argv[1])
rng = np.random.default_rng(7)
n = 600
frame = pd.DataFrame({
    "tenure": rng.uniform(0, 60, n).astype(np.float32),
    "usage": rng.gamma(2.0, 3.0, n).astype(np.float32),
    "plan": rng.choice(["basic", "plus", "max"], n),
})
logit = -0.05 * frame["tenure"] + 0.2 * frame["usage"] + (frame["plan"] == "basic") * 0.8
labels = (rng.uniform(0, 1, n) < 1 / (1 + np.exp(-logit))).astype(np.int64)

pipeline = Pipeline([
    ("columns", ColumnTransformer([
        ("numbers", StandardScaler(), ["tenure", "usage"]),
        ("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
    ])),
    ("classifier", LogisticRegression()),
]).fit(frame, labels)
onnx_pipeline = convert_sklearn(pipeline, initial_types=[
    ("tenure", FloatTensorType([None, 1])),
    ("usage", FloatTensorType([None, 1])),
    ("plan", StringTensorType([None, 1])),
])
(out / "pipeline.onnx").write_bytes(onnx_pipeline.SerializeToString())

matrix = np.column_stack([
    frame["tenure"], frame["usage"], (frame["plan"] == "basic").astype(np.float32),
]).astype(np.float32)
forest = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0).fit(matrix, labels)
onnx_forest = convert_sklearn(forest, initial_types=[("input", FloatTensorType([None, 3]))])
(out / "forest.onnx").write_bytes(onnx_forest.SerializeToString())

test = frame.iloc[:8]
test_matrix = matrix[:8]
(out / "rows.json").write_text(json.dumps({
    "tenure": test["tenure"].tolist(),
    "usage": test["usage"].tolist(),
    "plan": test["plan"].tolist(),
    "matrix": test_matrix.tolist(),
    "pipeline_probabilities": pipeline.predict_proba(test).tolist(),
    "forest_probabilities": forest.predict_proba(test_matrix).tolist(),
}))
print(json.dumps({"pipeline_outputs": [o.name for o in onnx_pipeline.graph.output],
                  "forest_outputs": [o.name for o in onnx_forest.graph.output]}))
