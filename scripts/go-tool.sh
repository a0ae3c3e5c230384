#!/usr/bin/env bash
# Test tools built from Go modules into a cache outside the repo (.ci/run builds both):
#   actionlint  the GitHub Actions workflow linter, for packages/testing/src/workflows.test.ts
#   promtool    Prometheus' rule checker and rule unit-test runner, for packages/operator/src/alerts.test.ts
#
#   scripts/go-tool.sh <name>           # builds it when missing; prints the binary's path (last line)
#   scripts/go-tool.sh <name> --where   # never builds: prints the path, exit 1 (with how to build) if absent
#
# Idempotent and fast when built. Needs Go and the Go module proxy (cold: actionlint ~40 s,
# promtool a few minutes).
# Cache: ${HADRON_TOOLS_CACHE:-$HOME/.cache/hadron-tools}/<name>-<version>/<name>
set -euo pipefail

NAME=${1:-}
case "$NAME" in
  actionlint)
    VERSION=v1.7.12   # github.com/rhysd/actionlint (go list -m github.com/rhysd/actionlint@latest)
    PACKAGE=github.com/rhysd/actionlint/cmd/actionlint
    LDFLAGS="-s -w -X github.com/rhysd/actionlint.version=$VERSION"
    ;;
  promtool)
    # github.com/prometheus/prometheus module version v0.316.0 = Prometheus 3.16 (go list -m github.com/prometheus/prometheus@latest)
    VERSION=v0.316.0
    PACKAGE=github.com/prometheus/prometheus/cmd/promtool
    LDFLAGS="-s -w"
    ;;
  *)
    echo "usage: scripts/go-tool.sh actionlint|promtool [--where]" >&2
    exit 2
    ;;
esac

CACHE_ROOT=${HADRON_TOOLS_CACHE:-$HOME/.cache/hadron-tools}
DIR="$CACHE_ROOT/$NAME-$VERSION"
BIN="$DIR/$NAME"

if [[ -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi
if [[ "${2:-}" == --where ]]; then
  echo "$NAME $VERSION is not built ($BIN missing): run \`bash scripts/go-tool.sh $NAME\` (needs Go; .ci/run does it)" >&2
  exit 1
fi
command -v go >/dev/null || { echo "[$NAME] go is not on PATH" >&2; exit 1; }
mkdir -p "$DIR"
TMP=$(mktemp -d "$DIR/.build.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
echo "[$NAME] building $PACKAGE@$VERSION" >&2
GOWORK=off CGO_ENABLED=0 GOBIN="$TMP" go install -trimpath -ldflags="$LDFLAGS" "$PACKAGE@$VERSION" >&2
mv -f "$TMP/$NAME" "$BIN"
echo "$BIN"
