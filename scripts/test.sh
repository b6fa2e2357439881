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

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "starting test infrastructure (Kafka-protocol broker, S3 server, Azurite)"
"$REPO_ROOT/scripts/infra.sh" install
trap '"$REPO_ROOT/scripts/infra.sh" stop' EXIT
"$REPO_ROOT/scripts/infra.sh" start kafka s3 azure
eval "$("$REPO_ROOT/scripts/infra.sh" env)"

log "cargo nextest (unit and integration tests)"
cargo nextest run --workspace --locked --no-fail-fast

log "deployment checks"
"$REPO_ROOT/scripts/check-deploy.sh"

log "all checks passed"
