#!/usr/bin/env bash
# actionlint (the GitHub Actions workflow linter), built from Go modules into a cache outside the
# repo, for the test that lints .github/workflows (packages/testing/src/workflows.test.ts).
#
#   scripts/actionlint.sh           # builds it when missing; prints the binary's path (last line)
#   scripts/actionlint.sh --where   # never builds: prints the path, exit 1 (with how to build) if absent
#
# Idempotent and fast when built. Needs Go and the Go module proxy (~40 s cold).
# Cache: ${HADRON_TOOLS_CACHE:-$HOME/.cache/hadron-tools}/actionlint-<version>/actionlint
set -euo pipefail

ACTIONLINT_VERSION=v1.7.12   # github.com/rhysd/actionlint (go list -m github.com/rhysd/actionlint@latest)

CACHE_ROOT=${HADRON_TOOLS_CACHE:-$HOME/.cache/hadron-tools}
DIR="$CACHE_ROOT/actionlint-$ACTIONLINT_VERSION"
BIN="$DIR/actionlint"

if [[ -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi
if [[ "${1:-}" == --where ]]; then
  echo "actionlint $ACTIONLINT_VERSION is not built ($BIN missing): run \`bash scripts/actionlint.sh\` (needs Go; .ci/run does it)" >&2
  exit 1
fi
command -v go >/dev/null || { echo "[actionlint] go is not on PATH" >&2; exit 1; }
mkdir -p "$DIR"
TMP=$(mktemp -d "$DIR/.build.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
echo "[actionlint] building github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" >&2
GOWORK=off CGO_ENABLED=0 GOBIN="$TMP" go install -trimpath \
  -ldflags="-s -w -X github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION" \
  "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" >&2
mv -f "$TMP/actionlint" "$BIN"
echo "$BIN"
