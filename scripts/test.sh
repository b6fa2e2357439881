#!/usr/bin/env bash
# The project's single test entry point (README "Run the tests"; CI runs it
# verbatim). On a fresh machine it installs what the tests need into
# ~/.cache/mlops-platform (tansu, moto, Azurite, Python clients), then runs:
# rustfmt, clippy -D warnings, every Rust test against the real components,
# and the deployment checks (Helm render/lint/validate, compose, Dockerfile).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

# The test tools (tansu above all) build while clippy runs: on a fresh machine
# this overlaps the two longest steps.
INSTALL_LOG="$MLOPS_CACHE_DIR/install.log"
mkdir -p "$MLOPS_CACHE_DIR"
"$REPO_ROOT/scripts/infra.sh" install >"$INSTALL_LOG" 2>&1 &
INSTALL_PID=$!
cleanup() {
  kill "$INSTALL_PID" 2>/dev/null || true
  "$REPO_ROOT/scripts/infra.sh" stop
}
trap cleanup EXIT

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "starting test infrastructure (Kafka-protocol broker, S3 server, Azurite)"
if ! wait "$INSTALL_PID"; then
  tail -40 "$INSTALL_LOG" >&2
  die "installing the test tools failed (log: $INSTALL_LOG)"
fi
"$REPO_ROOT/scripts/infra.sh" start kafka s3 azure
eval "$("$REPO_ROOT/scripts/infra.sh" env)"
pg_hostport="${TEST_DATABASE_URL#*@}"; pg_hostport="${pg_hostport%%/*}"
(exec 3<>"/dev/tcp/${pg_hostport%:*}/${pg_hostport#*:}") 2>/dev/null \
  || die "Postgres is not reachable at $pg_hostport (TEST_DATABASE_URL): the registry tests need it"

log "cargo nextest (unit and integration tests)"
cargo nextest run --workspace --locked --no-fail-fast

log "deployment checks"
"$REPO_ROOT/scripts/check-deploy.sh"

log "all checks passed"
