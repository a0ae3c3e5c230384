#!/usr/bin/env bash
# promtool (Prometheus' rule checker and rule unit-test runner), built from Go modules into a
# cache outside the repo, for the test that checks and unit-tests the chart's PrometheusRule
# alerts (packages/operator/src/alerts.test.ts).
#
#   scripts/promtool.sh           # builds it when missing; prints the binary's path (last line)
#   scripts/promtool.sh --where   # never builds: prints the path, exit 1 (with how to build) if absent
#
# Idempotent and fast when built. Needs Go and the Go module proxy (a few minutes cold).
# Cache: ${HADRON_TOOLS_CACHE:-$HOME/.cache/hadron-tools}/promtool-<version>/promtool
set -euo pipefail

# github.com/prometheus/prometheus module version v0.316.0 = Prometheus 3.16 (go list -m github.com/prometheus/prometheus@latest)
PROMETHEUS_MODULE_VERSION=v0.316.0

CACHE_ROOT=${HADRON_TOOLS_CACHE:-$HOME/.cache/hadron-tools}
DIR="$CACHE_ROOT/promtool-$PROMETHEUS_MODULE_VERSION"
BIN="$DIR/promtool"

if [[ -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi
if [[ "${1:-}" == --where ]]; then
  echo "promtool ($PROMETHEUS_MODULE_VERSION) is not built ($BIN missing): run \`bash scripts/promtool.sh\` (needs Go; .ci/run does it)" >&2
  exit 1
fi
command -v go >/dev/null || { echo "[promtool] go is not on PATH" >&2; exit 1; }
mkdir -p "$DIR"
TMP=$(mktemp -d "$DIR/.build.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
echo "[promtool] building github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION" >&2
GOWORK=off CGO_ENABLED=0 GOBIN="$TMP" go install -trimpath -ldflags="-s -w" \
  "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION" >&2
mv -f "$TMP/promtool" "$BIN"
echo "$BIN"
