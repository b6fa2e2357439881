# Shared settings for the project's scripts. Source it; do not run it.
# Everything slow to build or download lives under one cache dir outside the
# clone, so a re-run is fast and a fresh machine still installs it all.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MLOPS_CACHE_DIR="${MLOPS_CACHE_DIR:-$HOME/.cache/mlops-platform}"
MLOPS_VENV="${MLOPS_VENV:-$MLOPS_CACHE_DIR/venv}"
# tritonclient pins protobuf < 7, which the registry's gRPC tools cannot
# share a venv with.
MLOPS_TRITON_VENV="${MLOPS_TRITON_VENV:-$MLOPS_CACHE_DIR/venv-triton}"
MLOPS_SCHEMATHESIS_VENV="${MLOPS_SCHEMATHESIS_VENV:-$MLOPS_CACHE_DIR/venv-schemathesis}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$MLOPS_CACHE_DIR/target}"
export MLOPS_CACHE_DIR MLOPS_VENV MLOPS_TRITON_VENV MLOPS_SCHEMATHESIS_VENV REPO_ROOT

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Creates a Python venv (the shared one unless a second argument names
# another) and installs a requirements file into it when the file changed
# since the last install.
ensure_python_requirements() {
  local req="$1" venv="${2:-$MLOPS_VENV}" stamp
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  stamp="$venv/.$(basename "$req").$(sha256sum "$req" | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    log "installing Python packages from $(basename "$req")"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    touch "$stamp"
  fi
}
