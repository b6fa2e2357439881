#!/usr/bin/env bash
# Validates the deployment artifacts offline: lints and renders the Helm
# umbrella chart (default values and every helm/mlops-platform/ci/*-values.yaml),
# validates each manifest against pinned Kubernetes schemas (strict), asserts
# the platform rules (non-root, read-only, probes, secrets by reference),
# checks that the values schemas reject bad input, validates
# docker-compose.yml against the compose spec, checks the Dockerfile runs as
# non-root and validates the GitHub workflows.
#
#   ./scripts/check-deploy.sh
#
# KUBE_VERSIONS (default "1.30.0 1.37.0"): Kubernetes versions to validate
# against, the oldest the charts support (kubeVersion) and the newest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_python_requirements "$REPO_ROOT/scripts/requirements-deploy.txt"

log "checking deployment artifacts"
start=$SECONDS
status=0
"$MLOPS_VENV/bin/python" "$REPO_ROOT/scripts/check_deploy.py" \
  --root "$REPO_ROOT" \
  --kube-versions "${KUBE_VERSIONS:-1.30.0 1.37.0}" || status=$?
log "deploy checks finished in $((SECONDS - start))s"
[ "$status" -eq 0 ] || die "deploy checks failed"
