#!/usr/bin/env bash
# Benchmarks against the real components; each prints its figures.
#   ./scripts/bench.sh            all of them
#   ./scripts/bench.sh ingest     ingest throughput vs raw consume, clean and with malformed input (needs the broker)
#   ./scripts/bench.sh registry   registry query latency at 100k versions (needs Postgres)
#   ./scripts/bench.sh transform  bronze -> gold throughput vs DuckDB on the same data
#   ./scripts/bench.sh train      trainer fit time and AUC vs LightGBM and scikit-learn on the same matrices
#   ./scripts/bench.sh serve      gateway OIP infer req/s and latency vs FastAPI + scikit-learn and FastAPI + onnxruntime
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
what="${1:-all}"
eval "$("$REPO_ROOT/scripts/infra.sh" env)"
if [ "$what" = all ] || [ "$what" = ingest ]; then
  "$REPO_ROOT/scripts/infra.sh" start kafka
  cargo bench --locked -p mlops-ingest --bench ingest_throughput
fi
if [ "$what" = all ] || [ "$what" = registry ]; then
  cargo bench --locked -p mlops-model-registry --bench registry_queries
fi
if [ "$what" = all ] || [ "$what" = transform ]; then
  ensure_python_requirements "$REPO_ROOT/scripts/requirements-bench.txt"
  BENCH_PYTHON="$MLOPS_VENV/bin/python" \
    cargo bench --locked -p mlops-transform --bench transform_throughput
fi
if [ "$what" = all ] || [ "$what" = train ]; then
  ensure_python_requirements "$REPO_ROOT/scripts/requirements-test.txt"
  ensure_python_requirements "$REPO_ROOT/scripts/requirements-bench.txt"
  BENCH_PYTHON="$MLOPS_VENV/bin/python" \
    cargo bench --locked -p mlops-trainer --bench train_vs_peers
fi
if [ "$what" = all ] || [ "$what" = serve ]; then
  "$REPO_ROOT/scripts/infra.sh" start kafka
  ensure_python_requirements "$REPO_ROOT/scripts/requirements-test.txt"
  ensure_python_requirements "$REPO_ROOT/scripts/requirements-bench.txt"
  BENCH_PYTHON="$MLOPS_VENV/bin/python" \
    cargo bench --locked -p mlops-gateway --bench serve_vs_fastapi
fi
