#!/usr/bin/env bash
# Server-side render time of every portal page on a running local stack
# (./scripts/dev-stack.sh; PROFILE=bench for optimised binaries): logs in as
# admin, requests each page ROUNDS times and prints the gateway's own
# Server-Timing (render;dur=…) as median and max per page.
#
#   ./scripts/portal-timings.sh [PORTAL_URL]   # default http://127.0.0.1:8080
#
# ROUNDS (10), PORTAL_PASSWORD_FILE (data/portal-admin-password).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

BASE="${1:-http://127.0.0.1:8080}"
ROUNDS="${ROUNDS:-10}"
PASSWORD_FILE="${PORTAL_PASSWORD_FILE:-$REPO_ROOT/data/portal-admin-password}"
[ -s "$PASSWORD_FILE" ] || die "no admin password in $PASSWORD_FILE: start ./scripts/dev-stack.sh first"
JAR="$(mktemp)"
trap 'rm -f "$JAR"' EXIT

field() { sed -n "s/.*name=\"$1\" value=\"\([^\"]*\)\".*/\1/p" | head -1; }

login_form="$(curl -sf -c "$JAR" -b "$JAR" "$BASE/login")" || die "the portal does not answer at $BASE"
csrf="$(field csrf <<<"$login_form")"
curl -sf -o /dev/null -c "$JAR" -b "$JAR" --data-urlencode "username=admin" \
  --data-urlencode "password=$(head -1 "$PASSWORD_FILE")" --data-urlencode "csrf=$csrf" \
  --data-urlencode "next=/" "$BASE/login" || die "logging in as admin failed"
overview="$(curl -sf -b "$JAR" "$BASE/")" || die "no overview after login"
csrf="$(field csrf <<<"$overview")"
subscriber="$(curl -sf -b "$JAR" "$BASE/churn?limit=1" | sed -n 's/.*href="\/churn\/subscribers\/\([^"]*\)".*/\1/p' | head -1)"
version="$(curl -sf -b "$JAR" "$BASE/models/churn" | sed -n 's/.*data-version="\([0-9]*\)".*/\1/p' | head -1)"
[ -n "$subscriber" ] && [ -n "$version" ] || die "no ranked subscriber or model version yet: wait for the first champion"

# One request's render time in ms; extra curl arguments follow the path.
timing() {
  local path="$1"
  shift
  curl -s -o /dev/null -D - -b "$JAR" "$@" "$BASE$path" | tr -d '\r' |
    sed -n 's/^server-timing: render;dur=\([0-9.]*\).*/\1/Ip'
}

printf '%-44s %10s %10s\n' "page" "median ms" "max ms"
measure() {
  local label="$1"
  shift
  local samples=()
  for _ in $(seq "$ROUNDS"); do samples+=("$(timing "$@")"); done
  printf '%s\n' "${samples[@]}" | sort -g | awk -v label="$label" '
    { v[NR] = $1 } END { printf "%-44s %10.1f %10.1f\n", label, v[int((NR + 1) / 2)], v[NR] }'
}
measure "/" /
measure "/kpis" /kpis
measure "/kpis?region=north" "/kpis?region=north"
measure "/churn" /churn
measure "/churn/subscribers/{id}" "/churn/subscribers/$subscriber"
measure "/predict?subscriber={id}" "/predict?subscriber=$subscriber"
measure "/models" /models
measure "/models/churn" /models/churn
measure "/models/churn/versions/{v}" "/models/churn/versions/$version"
measure "/sql" /sql
measure "POST /sql (KPIs by region)" /sql --data-urlencode "csrf=$csrf" \
  --data-urlencode "sql=SELECT region, sum(calls) AS calls FROM gold.kpi_daily GROUP BY region" \
  --data-urlencode "format=table"
measure "/admin/users" /admin/users
