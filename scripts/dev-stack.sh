#!/usr/bin/env bash
# One command for the local platform on embedded defaults (README "Run the
# platform"): a Kafka-protocol broker (tansu, in memory), the producer (a
# backfill, then live events), ingest writing bronze to ./data/lake, transform
# refining it into silver and gold every TRANSFORM_POLL_INTERVAL_SECONDS, and
# the model registry on SQLite (./data/registry.db) with artifacts in
# ./data/artifacts, the trainer, which trains once gold has enough days
# and again as it advances, so a @champion exists within minutes, and the
# gateway serving it over the Open Inference Protocol on 127.0.0.1:8080 (REST)
# and 127.0.0.1:8081 (gRPC), with the churn API (/api/v1) on the online
# features in the lake and the portal at http://127.0.0.1:8080/ (accounts in
# ./data/gateway.db, the admin password generated in
# ./data/portal-admin-password).
# Ctrl-C stops everything; the lake stays on disk.
#
# Settings: KAFKA_PORT (9092), LAKE_URL (./data/lake), PRODUCER_SUBSCRIBERS
# (1000), PRODUCER_DAYS (40), PRODUCER_RATE (50), TRANSFORM_POLL_INTERVAL_SECONDS
# (30), TRAINER_HORIZON_DAYS (7), TRAINER_TEST_DAYS (7), PROFILE (dev | release).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

KAFKA_PORT="${KAFKA_PORT:-9092}"
PROFILE="${PROFILE:-dev}"
export KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
export LAKE_URL="${LAKE_URL:-$REPO_ROOT/data/lake}"
export PRODUCER_SUBSCRIBERS="${PRODUCER_SUBSCRIBERS:-1000}"
export PRODUCER_DAYS="${PRODUCER_DAYS:-40}"
export PRODUCER_RATE="${PRODUCER_RATE:-50}"
export TRANSFORM_POLL_INTERVAL_SECONDS="${TRANSFORM_POLL_INTERVAL_SECONDS:-30}"
# A short horizon and test period so the backfill's days are enough to train.
export TRAINER_HORIZON_DAYS="${TRAINER_HORIZON_DAYS:-7}"
export TRAINER_TEST_DAYS="${TRAINER_TEST_DAYS:-7}"
export MLOPS_RUN_DIR="$MLOPS_CACHE_DIR/dev-stack"
STACK_LOGS="$REPO_ROOT/data/logs"
mkdir -p "$STACK_LOGS"

log "building the services ($PROFILE profile)"
cargo build --profile "$PROFILE" --locked -p mlops-producer -p mlops-ingest \
  -p mlops-transform -p mlops-model-registry -p mlops-cli -p mlops-trainer -p mlops-gateway
BIN_DIR="$CARGO_TARGET_DIR/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")"

# Background services run in their own sessions (setsid), so the terminal's
# Ctrl-C reaches only this script; cleanup then sends each one SIGTERM
# once and it drains (a second signal would make it exit at once).
pids=()
cleanup() {
  log "stopping the stack"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  TEST_KAFKA_PORT="$KAFKA_PORT" "$REPO_ROOT/scripts/infra.sh" stop
}
trap cleanup EXIT
trap "exit 130" INT TERM

TEST_KAFKA_PORT="$KAFKA_PORT" "$REPO_ROOT/scripts/infra.sh" start kafka
# ONNX Runtime's library for the trainer and gateway, from the pinned wheel in the venv.
ensure_python_requirements "$REPO_ROOT/scripts/requirements-test.txt"
eval "$("$REPO_ROOT/scripts/infra.sh" env | grep '^export ORT_DYLIB_PATH=')"

# The registry's bootstrap admin token: made once, kept out of the repo
# (data/ is git-ignored) and readable by this user only.
TOKEN_FILE="$REPO_ROOT/data/registry-admin-token"
if [ ! -s "$TOKEN_FILE" ]; then
  (umask 077; printf 'mlops_%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$TOKEN_FILE")
fi
# The portal's bootstrap admin password, made the same way.
PORTAL_PASSWORD_FILE="$REPO_ROOT/data/portal-admin-password"
if [ ! -s "$PORTAL_PASSWORD_FILE" ]; then
  (umask 077; head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$PORTAL_PASSWORD_FILE")
fi
log "starting model-registry (gRPC: 127.0.0.1:50051, MLflow REST: http://127.0.0.1:5000, admin: http://127.0.0.1:9104/metrics)"
ADMIN_ADDR=127.0.0.1:9104 REGISTRY_GRPC_ADDR=127.0.0.1:50051 REGISTRY_HTTP_ADDR=127.0.0.1:5000 \
  DATABASE_URL="sqlite://$REPO_ROOT/data/registry.db?mode=rwc" ARTIFACTS_URL="$REPO_ROOT/data/artifacts" \
  REGISTRY_BOOTSTRAP_TOKEN_FILE="$TOKEN_FILE" \
  setsid "$BIN_DIR/model-registry" 2>"$STACK_LOGS/model-registry.log" &
pids+=($!)
log "registry CLI: export MLOPS_TOKEN=\$(cat $TOKEN_FILE); $BIN_DIR/mlops models list"
log "MLflow client: export MLFLOW_TRACKING_URI=http://127.0.0.1:5000 MLFLOW_TRACKING_TOKEN=\$(cat $TOKEN_FILE)"

log "starting ingest (admin: http://127.0.0.1:9102/metrics, lake: $LAKE_URL)"
ADMIN_ADDR=127.0.0.1:9102 INGEST_BATCH_MAX_WAIT_MS=2000 INGEST_RESUME=scan \
  setsid "$BIN_DIR/ingest" 2>"$STACK_LOGS/ingest.log" &
pids+=($!)

log "starting transform every ${TRANSFORM_POLL_INTERVAL_SECONDS}s (admin: http://127.0.0.1:9103/metrics)"
ADMIN_ADDR=127.0.0.1:9103 setsid "$BIN_DIR/transform" 2>"$STACK_LOGS/transform.log" &
pids+=($!)

log "producer backfill: $PRODUCER_SUBSCRIBERS subscribers, $PRODUCER_DAYS days"
ADMIN_ADDR=127.0.0.1:9101 "$BIN_DIR/producer" --mode backfill \
  --truth-out "$REPO_ROOT/data/truth.jsonl" 2>"$STACK_LOGS/producer-backfill.log"

log "producer live at $PRODUCER_RATE events/s (admin: http://127.0.0.1:9101/metrics)"
ADMIN_ADDR=127.0.0.1:9101 setsid "$BIN_DIR/producer" --mode live 2>"$STACK_LOGS/producer-live.log" &
pids+=($!)

# The bootstrap admin token may promote @champion (admin >= approver).
log "starting trainer: watches gold, trains when it spans enough days (admin: http://127.0.0.1:9105/metrics)"
ADMIN_ADDR=127.0.0.1:9105 TRAINER_REGISTRY_TOKEN_FILE="$TOKEN_FILE" TRAINER_POLL_SECONDS=30 \
  TRAINER_MIN_NEW_DAYS=1 TRAINER_INTERVAL_SECONDS=3600 \
  setsid "$BIN_DIR/trainer" watch 2>"$STACK_LOGS/trainer.log" &
pids+=($!)

# It reads the registry with the bootstrap token and follows its events, and
# logs every prediction to predictions.v1 on the same broker; its churn API
# reads the online features (gold/subscriber_features_latest) from the lake
# transform writes (LAKE_URL, as the trainer gets it). The portal's accounts
# live in ./data/gateway.db; its promotions use the bootstrap token too.
log "starting gateway (portal: http://127.0.0.1:8080/, Open Inference Protocol: http://127.0.0.1:8080/v2, churn API: http://127.0.0.1:8080/api/v1, gRPC: 127.0.0.1:8081, admin: http://127.0.0.1:9106/readyz)"
ADMIN_ADDR=127.0.0.1:9106 GATEWAY_HTTP_ADDR=127.0.0.1:8080 GATEWAY_GRPC_ADDR=127.0.0.1:8081 \
  GATEWAY_REGISTRY_TOKEN_FILE="$TOKEN_FILE" GATEWAY_POLL_SECONDS=10 LAKE_URL="$LAKE_URL" \
  GATEWAY_FEATURES_POLL_SECONDS=10 DATABASE_URL="sqlite://$REPO_ROOT/data/gateway.db?mode=rwc" \
  GATEWAY_ADMIN_PASSWORD_FILE="$PORTAL_PASSWORD_FILE" GATEWAY_PORTAL_APPROVER_TOKEN_FILE="$TOKEN_FILE" \
  setsid "$BIN_DIR/gateway" 2>"$STACK_LOGS/gateway.log" &
pids+=($!)

# Once the champion is served, prints a prediction request that works: one
# row of the model's input width (from its metadata), all zeros; and the
# churn API's score of one simulated subscriber (ids sub-0000000 up to
# PRODUCER_SUBSCRIBERS - 1) and its most at-risk subscribers.
print_prediction_curl() {
  local width
  width=$(curl -fsS -H "Authorization: Bearer $(cat "$TOKEN_FILE")" http://127.0.0.1:8080/v2/models/churn 2>/dev/null \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["inputs"][0]["shape"][1])' 2>/dev/null) || return 1
  log "the gateway serves @champion; a prediction:"
  printf "curl -s -H \"Authorization: Bearer \$(cat %s)\" http://127.0.0.1:8080/v2/models/churn/infer -d '{\"inputs\": [{\"name\": \"input\", \"shape\": [1, %s], \"datatype\": \"FP32\", \"data\": [%s]}]}'\n" \
    "$TOKEN_FILE" "$width" "$(python3 -c "print(', '.join(['0'] * $width))")" >&2
  log "the churn API (online features from $LAKE_URL):"
  printf "curl -s -H \"Authorization: Bearer \$(cat %s)\" -X POST -H 'Content-Type: application/json' -d '{\"subscriber_ids\":[\"sub-0000001\"]}' http://127.0.0.1:8080/api/v1/churn/score\n" \
    "$TOKEN_FILE" >&2
  printf "curl -s -H \"Authorization: Bearer \$(cat %s)\" 'http://127.0.0.1:8080/api/v1/churn/at-risk?limit=5'\n" \
    "$TOKEN_FILE" >&2
  log "the portal: http://127.0.0.1:8080/ (user admin, password in $PORTAL_PASSWORD_FILE)"
}

log "running; logs in $STACK_LOGS; Ctrl-C to stop"
curl_printed=""
while true; do
  sleep 10
  if [ -z "$curl_printed" ] && curl -fsS http://127.0.0.1:8080/v2/health/ready >/dev/null 2>&1; then
    print_prediction_curl && curl_printed=1
  fi
  written=$(curl -fsS http://127.0.0.1:9102/metrics 2>/dev/null | awk '/^ingest_records_written_total/ {print $2}')
  version=$(curl -fsS http://127.0.0.1:9102/metrics 2>/dev/null | awk '/^ingest_bronze_table_version/ {print $2}')
  silver=$(curl -fsS http://127.0.0.1:9103/metrics 2>/dev/null | awk '/^transform_rows_out_total\{table="silver\/telecom_events"\}/ {print $2}')
  features=$(curl -fsS http://127.0.0.1:9103/metrics 2>/dev/null | awk '/^transform_rows_out_total\{table="gold\/subscriber_features_daily"\}/ {print $2}')
  trained=$(curl -fsS http://127.0.0.1:9105/metrics 2>/dev/null | awk '/^trainer_runs_total\{outcome="ok"\}/ {print $2}')
  serving=$(curl -fsS http://127.0.0.1:9106/metrics 2>/dev/null | awk '/^gateway_model_serving_version\{model="churn",alias="champion"\}/ {print $2}')
  logged=$(curl -fsS http://127.0.0.1:9106/metrics 2>/dev/null | awk '/^gateway_prediction_log_sent_total/ {print $2}')
  printf 'bronze: %s rows written this session, table version %s; silver: %s rows; gold features: %s rows recomputed; trainer runs: %s; gateway serves churn version %s, %s predictions logged to predictions.v1 (%s)\n' \
    "${written:-?}" "${version:-?}" "${silver:-0}" "${features:-0}" "${trained:-0}" "${serving:-none}" "${logged:-0}" "$LAKE_URL"
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || die "a service stopped; see $STACK_LOGS"
  done
done
