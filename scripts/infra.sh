#!/usr/bin/env bash
# Installs, starts and stops the real components the tests and the local stack
# run against, all on loopback:
#   - tansu, a Kafka-protocol broker (crates.io, built once into the cache)
#   - moto's S3 server (PyPI), which supports conditional writes
#   - Azurite's blob service (npm)
#   - ONNX Runtime's shared library, from the pinned `onnxruntime` wheel in
#     the project's venv (requirements-test.txt); `env` prints ORT_DYLIB_PATH
#   - for the portal's browser tests, Debian's chromium (apt) driven by
#     playwright-core (npm); no browser is ever downloaded
#
# Usage: scripts/infra.sh install | start [kafka|s3|azure ...] | stop | env | status
# `env` prints the variables tests read (TEST_KAFKA_BROKERS, TEST_S3_*, TEST_AZURE_*).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TANSU_VERSION=0.6.0
AZURITE_VERSION=3.37.0
PLAYWRIGHT_VERSION=1.64.1
TANSU_BIN="$MLOPS_CACHE_DIR/tools/tansu-$TANSU_VERSION/bin/tansu"
AZURITE_DIR="$MLOPS_CACHE_DIR/tools/azurite-$AZURITE_VERSION"
PLAYWRIGHT_DIR="$MLOPS_CACHE_DIR/tools/playwright-core-$PLAYWRIGHT_VERSION"
CHROMIUM=/usr/bin/chromium
RUN_DIR="${MLOPS_RUN_DIR:-$MLOPS_CACHE_DIR/run}"

KAFKA_PORT="${TEST_KAFKA_PORT:-19092}"
S3_PORT="${TEST_S3_PORT:-19000}"
AZURE_PORT="${TEST_AZURE_PORT:-19100}"
TEST_BUCKET=lake-test
# Azurite's documented development account; not a secret.
AZURITE_ACCOUNT=devstoreaccount1
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

install_tansu() {
  [ -x "$TANSU_BIN" ] && return
  log "building tansu $TANSU_VERSION (once; cached in $MLOPS_CACHE_DIR/tools)"
  # A test broker needs no LTO or full optimisation; this profile builds in
  # about a third of the time of tansu's own release profile.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_DEBUG=false \
  CARGO_PROFILE_RELEASE_INCREMENTAL=false \
  CARGO_TARGET_DIR="$MLOPS_CACHE_DIR/tansu-build" cargo install tansu \
    --version "$TANSU_VERSION" --features dynostore --locked \
    --root "$MLOPS_CACHE_DIR/tools/tansu-$TANSU_VERSION"
  rm -rf "$MLOPS_CACHE_DIR/tansu-build"
}

install_azurite() {
  [ -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ] && return
  command -v npm >/dev/null || die "npm is required for Azurite (apt-get install nodejs npm)"
  log "installing Azurite $AZURITE_VERSION"
  mkdir -p "$AZURITE_DIR"
  npm install --silent --no-audit --no-fund --prefix "$AZURITE_DIR" "azurite@$AZURITE_VERSION"
}

install_browser() {
  if [ ! -x "$CHROMIUM" ]; then
    command -v apt-get >/dev/null || die "the browser tests need Debian's chromium at $CHROMIUM"
    log "installing Debian's chromium (the portal's browser tests)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null \
      || die "apt-get install chromium failed"
  fi
  [ -f "$PLAYWRIGHT_DIR/node_modules/playwright-core/package.json" ] && return
  log "installing playwright-core $PLAYWRIGHT_VERSION"
  mkdir -p "$PLAYWRIGHT_DIR"
  npm install --silent --no-audit --no-fund --prefix "$PLAYWRIGHT_DIR" "playwright-core@$PLAYWRIGHT_VERSION"
}

install_all() {
  install_tansu
  install_azurite
  install_browser
  ensure_python_requirements "$REPO_ROOT/scripts/requirements-test.txt"
  ensure_python_requirements "$REPO_ROOT/scripts/requirements-triton.txt" "$MLOPS_TRITON_VENV"
  ensure_python_requirements "$REPO_ROOT/scripts/requirements-schemathesis.txt" "$MLOPS_SCHEMATHESIS_VENV"
}

wait_for_port() {
  local name="$1" port="$2" pidfile="$3"
  for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      tail -20 "$RUN_DIR/$name.log" >&2
      die "$name exited during start-up (log: $RUN_DIR/$name.log)"
    fi
    sleep 0.2
  done
  die "$name did not open port $port within 30s (log: $RUN_DIR/$name.log)"
}

# start_daemon NAME PORT CMD...: runs CMD in the background unless it already runs.
start_daemon() {
  local name="$1" port="$2"; shift 2
  local pidfile="$RUN_DIR/$name.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then return; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port is taken by another process; set TEST_${name^^}_PORT to another port"
  fi
  mkdir -p "$RUN_DIR"
  # setsid: the service outlives this script and gets its own process group.
  env -u OTEL_EXPORTER_OTLP_ENDPOINT setsid "$@" >"$RUN_DIR/$name.log" 2>&1 < /dev/null &
  echo $! >"$pidfile"
  wait_for_port "$name" "$port" "$pidfile"
  log "$name listening on 127.0.0.1:$port"
}

start_kafka() {
  install_tansu
  start_daemon kafka "$KAFKA_PORT" "$TANSU_BIN" broker \
    --storage-engine memory://tansu/ \
    --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT"
}

start_s3() {
  ensure_python_requirements "$REPO_ROOT/scripts/requirements-test.txt"
  start_daemon s3 "$S3_PORT" "$MLOPS_VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT"
  "$MLOPS_VENV/bin/python" - "$S3_PORT" "$TEST_BUCKET" <<'PY'
import sys, urllib.request
port, bucket = sys.argv[1], sys.argv[2]
req = urllib.request.Request(f"http://127.0.0.1:{port}/{bucket}", method="PUT")
try:
    urllib.request.urlopen(req)
except urllib.error.HTTPError as e:
    if e.code != 409:  # already exists
        raise
PY
}

start_azure() {
  install_azurite
  mkdir -p "$RUN_DIR/azurite-data"
  start_daemon azure "$AZURE_PORT" "$AZURITE_DIR/node_modules/.bin/azurite-blob" \
    --blobHost 127.0.0.1 --blobPort "$AZURE_PORT" --location "$RUN_DIR/azurite-data" \
    --skipApiVersionCheck --loose --silent
  ensure_python_requirements "$REPO_ROOT/scripts/requirements-test.txt"
  "$MLOPS_VENV/bin/python" - "$AZURE_PORT" "$TEST_BUCKET" "$AZURITE_ACCOUNT" "$AZURITE_KEY" <<'PY'
import sys
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient
port, container, account, key = sys.argv[1:5]
client = BlobServiceClient(f"http://127.0.0.1:{port}/{account}", credential={"account_name": account, "account_key": key})
try:
    client.create_container(container)
except ResourceExistsError:
    pass
PY
}

stop_all() {
  for pidfile in "$RUN_DIR"/*.pid; do
    [ -f "$pidfile" ] || continue
    local pid; pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

# The runtime library inside the onnxruntime wheel (ort loads it at run time).
ort_library() {
  local lib
  for lib in "$MLOPS_VENV"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.*; do
    [ -f "$lib" ] && { echo "$lib"; return; }
  done
  echo "$MLOPS_VENV/onnxruntime-not-installed/libonnxruntime.so"
}

print_env() {
  cat <<ENV
export TEST_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export TEST_S3_BUCKET=$TEST_BUCKET
export TEST_AZURE_ENDPOINT=http://127.0.0.1:$AZURE_PORT
export TEST_AZURE_CONTAINER=$TEST_BUCKET
export TEST_AZURE_ACCOUNT=$AZURITE_ACCOUNT
export TEST_AZURE_KEY='$AZURITE_KEY'
export TEST_PYTHON=$MLOPS_VENV/bin/python
export TEST_TRITON_PYTHON=$MLOPS_TRITON_VENV/bin/python
export TEST_SCHEMATHESIS=$MLOPS_SCHEMATHESIS_VENV/bin/schemathesis
export TEST_CHROMIUM=$CHROMIUM
export TEST_PLAYWRIGHT_DIR=$PLAYWRIGHT_DIR
export ORT_DYLIB_PATH=$(ort_library)
export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
ENV
}

cmd="${1:-}"; shift || true
case "$cmd" in
  install) install_all ;;
  start)
    [ $# -gt 0 ] || set -- kafka s3 azure
    for what in "$@"; do "start_$what"; done ;;
  stop) stop_all ;;
  env) print_env ;;
  status) for f in "$RUN_DIR"/*.pid; do [ -f "$f" ] && echo "$(basename "$f" .pid): pid $(cat "$f")"; done ;;
  *) die "usage: $0 install | start [kafka|s3|azure ...] | stop | env | status" ;;
esac
