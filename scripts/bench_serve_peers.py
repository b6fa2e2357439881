"""The serving benchmark's model and its two peers (`./scripts/bench.sh serve`).

    bench_serve_peers.py model DIR
        Trains a scikit-learn GradientBoostingClassifier (100 trees of depth
        3) on a synthetic table of FEATURES float columns and writes
        model.pkl, model.onnx (skl2onnx, probabilities as a plain tensor, no
        ZipMap) and rows.json (request rows).
    bench_serve_peers.py serve sklearn|onnxruntime DIR PORT WORKERS
        FastAPI on uvicorn (uvloop, httptools, no access log) with WORKERS
        processes, answering the Open Inference Protocol's JSON infer request
        on /v2/models/{name}/infer, scored by scikit-learn's predict_proba or
        by an onnxruntime session of model.onnx. GET /ready answers once the
        model is loaded.

Both peers parse the same request body as the gateway and answer with the
same outputs, so the three servers do the same work per request.
"""
import json
import os
import pickle
import sys
from pathlib import Path

FEATURES = 20


def train(out: Path) -> None:
    import numpy as np
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import GradientBoostingClassifier

    rng = np.random.default_rng(11)
    n = 20_000
    x = rng.normal(size=(n, FEATURES)).astype(np.float32)
    logit = x[:, 0] - 0.7 * x[:, 1] + 0.5 * x[:, 2] * x[:, 3] + 0.3 * np.sin(3 * x[:, 4])
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    model = GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0).fit(x, y)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.pkl").write_bytes(pickle.dumps(model))
    onnx = convert_sklearn(
        model,
        initial_types=[("input", FloatTensorType([None, FEATURES]))],
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    (out / "model.onnx").write_bytes(onnx.SerializeToString())
    rows = rng.normal(size=(256, FEATURES)).astype(np.float32)
    (out / "rows.json").write_text(json.dumps({
        "features": FEATURES,
        "rows": rows.tolist(),
        "sklearn": model.predict_proba(rows)[:, 1].tolist(),
    }))


def app(kind: str, directory: Path):
    import numpy as np
    from fastapi import FastAPI
    from pydantic import BaseModel

    if kind == "sklearn":
        model = pickle.loads((directory / "model.pkl").read_bytes())

        def score(x):
            return model.predict_proba(x).astype(np.float32)
    elif kind == "onnxruntime":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread per worker process, as the gateway runs one per session.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(directory / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )

        def score(x):
            return session.run(["probabilities"], {"input": x})[0]
    else:
        raise SystemExit(f"unknown peer {kind!r}: sklearn or onnxruntime")

    class Tensor(BaseModel):
        name: str
        shape: list[int]
        datatype: str
        data: list[float]

    class InferRequest(BaseModel):
        id: str | None = None
        inputs: list[Tensor]

    api = FastAPI()

    @api.get("/ready")
    async def ready():
        return {"ready": True}

    @api.post("/v2/models/{name}/infer")
    async def infer(name: str, request: InferRequest):
        tensor = request.inputs[0]
        x = np.asarray(tensor.data, dtype=np.float32).reshape(tensor.shape)
        p = score(x)
        return {
            "model_name": name,
            "id": request.id,
            "outputs": [{
                "name": "probabilities",
                "shape": list(p.shape),
                "datatype": "FP32",
                "data": p.ravel().tolist(),
            }],
        }

    return api


def serve(kind: str, directory: Path, port: int, workers: int) -> None:
    import uvicorn

    os.environ["BENCH_PEER"] = kind
    os.environ["BENCH_DIR"] = str(directory)
    uvicorn.run(
        "bench_serve_peers:peer_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


def peer_app():
    """uvicorn's factory in each worker process."""
    return app(os.environ["BENCH_PEER"], Path(os.environ["BENCH_DIR"]))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "model":
        train(Path(sys.argv[2]))
    elif len(sys.argv) == 6 and sys.argv[1] == "serve":
        sys.path.insert(0, str(Path(__file__).parent))
        serve(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        raise SystemExit(__doc__)
