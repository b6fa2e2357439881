#!/usr/bin/env bash
# Benchmarks that need the real broker: starts it, runs them, prints figures.
#   ./scripts/bench.sh            ingest throughput vs raw consume
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
"$REPO_ROOT/scripts/infra.sh" start kafka
eval "$("$REPO_ROOT/scripts/infra.sh" env)"
cargo bench -p mlops-ingest --bench ingest_throughput
