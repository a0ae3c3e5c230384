#!/usr/bin/env bash
# Build a real Kubernetes control plane (plus etcd, kwok, helm) from Go modules into a cache
# directory outside the repo, for the Kubernetes test tier (docs/k8s-test-tier.md).
#
#   scripts/k8s-bins.sh            # prints the bin dir as the last stdout line
#
# Idempotent: when every binary is present (and was built for the versions below) it is a fast
# no-op. Needs only Go (>= 1.24; Go fetches a newer toolchain itself if a module requires one) and
# the Go module proxy. GOMODCACHE / GOCACHE are left at their defaults so they are reused.
# Cache dir: ${HADRON_K8S_CACHE:-$HOME/.cache/hadron-k8s}/v<K8S_VERSION>/
# Besides the binaries it writes kwok-stages.yaml (kwok's default Stage objects, for `kwok --config`).
set -euo pipefail

K8S_VERSION=1.33.13    # latest 1.33 patch served by the Go module proxy (go list -m k8s.io/kubernetes@v1.33)
KWOK_VERSION=v0.8.0    # sigs.k8s.io/kwok (go list -m sigs.k8s.io/kwok@latest)
HELM_VERSION=v3.22.0   # helm.sh/helm/v3 (go list -m helm.sh/helm/v3@latest)
COREDNS_VERSION=v1.15.0  # github.com/coredns/coredns (go list -m github.com/coredns/coredns@latest)
PAUSE_REV=1           # bump when the pause program below changes
# etcd: whatever k8s.io/kubernetes@v$K8S_VERSION pins in its go.mod (go.etcd.io/etcd/server/v3).

CACHE_ROOT=${HADRON_K8S_CACHE:-$HOME/.cache/hadron-k8s}
OUT="$CACHE_ROOT/v$K8S_VERSION"
K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)

# Everything but the final bin-dir line goes to stderr.
exec 3>&1 1>&2
log() { printf '[k8s-bins] %s\n' "$*"; }

# A binary is "current" when it is executable and its stamp records the version it was built from.
stamp_of() {
  case "$1" in
    etcd) echo "etcd pinned by kubernetes v$K8S_VERSION" ;;
    kwok) echo "kwok $KWOK_VERSION" ;;
    helm) echo "helm $HELM_VERSION" ;;
    pause) echo "pause $PAUSE_REV" ;;
    coredns) echo "coredns $COREDNS_VERSION" ;;
    *) echo "kubernetes v$K8S_VERSION" ;;
  esac
}
is_current() {
  [[ -x "$OUT/$1" && -f "$OUT/.stamp-$1" && "$(<"$OUT/.stamp-$1")" == "$(stamp_of "$1")" ]] || return 1
  [[ "$1" != kwok || -s "$OUT/kwok-stages.yaml" ]]
}
missing() {
  local b
  for b in "${K8S_BINS[@]}" etcd kwok helm pause coredns; do is_current "$b" || echo "$b"; done
}

if [[ -z "$(missing)" ]]; then
  echo "$OUT" >&3
  exit 0
fi

command -v go >/dev/null || { log "go is not on PATH"; exit 1; }
mkdir -p "$OUT"

# Serialise concurrent builds (parallel test runs on a cold cache); re-check after the lock.
if command -v flock >/dev/null; then
  exec 9>"$OUT/.lock"
  flock -n 9 || { log "another build is running; waiting for $OUT/.lock"; flock 9; }
  if [[ -z "$(missing)" ]]; then echo "$OUT" >&3; exit 0; fi
fi

START=$SECONDS
export GOWORK=off CGO_ENABLED=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hadron-k8s-build.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM   # so the EXIT trap runs

# install_bin <name> <built file>: atomically move into place and stamp it.
install_bin() {
  mv -f "$2" "$OUT/$1.new.$$"
  mv -f "$OUT/$1.new.$$" "$OUT/$1"
  stamp_of "$1" >"$OUT/.stamp-$1"
}

# Path of the downloaded go.mod of module@version.
gomod_of() {
  (cd "$TMP" && go mod download -json "$1") | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p'
}

K8S_GOMOD=$(gomod_of "k8s.io/kubernetes@v$K8S_VERSION")
[[ -f "$K8S_GOMOD" ]] || { log "could not download k8s.io/kubernetes@v$K8S_VERSION"; exit 1; }
ETCD_VERSION=$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2; exit}' "$K8S_GOMOD")
[[ -n "$ETCD_VERSION" ]] || { log "no go.etcd.io/etcd/server/v3 in $K8S_GOMOD"; exit 1; }
log "kubernetes v$K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION, helm $HELM_VERSION -> $OUT"
log "missing or stale: $(missing | tr '\n' ' ')"

# --- kube-apiserver, kube-controller-manager, kube-scheduler, kubectl --------------------------
# `go install k8s.io/kubernetes/cmd/...@v` cannot work: k8s.io/kubernetes requires its staging
# modules at v0.0.0 and resolves them with local replaces, which Go ignores outside the main
# module. So: a wrapper module that requires k8s.io/kubernetes and replaces every staging
# k8s.io/<x> v0.0.0 with k8s.io/<x> v0.<minor>.<patch> (list derived from the downloaded go.mod).
# Only the missing ones are linked (adding kubelet to a warm cache must not relink the rest).
NEED_K8S=()
for b in "${K8S_BINS[@]}"; do is_current "$b" || NEED_K8S+=("$b"); done
if ((${#NEED_K8S[@]})); then
  W="$TMP/k8s"; mkdir -p "$W"; cd "$W"
  # Same language version and GODEBUG defaults as the upstream build.
  {
    echo 'module local/k8sbins'; echo
    awk '$1 == "go" || $1 == "godebug" {print}' "$K8S_GOMOD"
  } >go.mod
  STAGING_VERSION="v0.${K8S_VERSION#1.}"
  for m in $(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$K8S_GOMOD"); do
    go mod edit -replace="$m@v0.0.0=$m@$STAGING_VERSION"
  done
  PKGS=()
  for b in "${NEED_K8S[@]}"; do PKGS+=("k8s.io/kubernetes/cmd/$b"); done
  log "resolving kubernetes module graph"
  go get "${PKGS[@]/%/@v$K8S_VERSION}"
  # Sanity check: the staging modules must resolve to the matching release, not something newer.
  for m in k8s.io/api k8s.io/apimachinery k8s.io/apiserver k8s.io/client-go; do
    got=$(go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$m")
    [[ "$got" == "$STAGING_VERSION" ]] || { log "$m resolved to $got, expected $STAGING_VERSION"; exit 1; }
  done
  # Version stamping as hack/lib/version.sh does (otherwise /version says v0.0.0-master).
  BUILD_DATE=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "${K8S_GOMOD%.mod}.info" 2>/dev/null || true)
  LDF="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LDF+=" -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$(cut -d. -f2 <<<"$K8S_VERSION")"
    LDF+=" -X $p.gitTreeState=clean -X $p.buildDate=${BUILD_DATE:-1970-01-01T00:00:00Z}"
  done
  log "building ${NEED_K8S[*]} (slow: ~all of Kubernetes)"
  mkdir -p "$TMP/out"
  go build -mod=mod -trimpath -tags=selinux,notest -ldflags="$LDF" -o "$TMP/out/" "${PKGS[@]}"
  for b in "${NEED_K8S[@]}"; do install_bin "$b" "$TMP/out/$b"; done
  cd "$TMP"
fi

# --- etcd ---------------------------------------------------------------------------------------
# go.etcd.io/etcd/server/v3 has local replaces (../api, ../pkg ...) so `go install` refuses it; its
# replaces only point at the same-version sibling modules, so a wrapper module requiring it gets
# exactly etcd's own dependency graph (not Kubernetes' newer grpc/otel).
if ! is_current etcd; then
  W="$TMP/etcd"; mkdir -p "$W"; cd "$W"
  ETCD_GOMOD=$(gomod_of "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
  { echo 'module local/etcdbin'; echo; awk '$1 == "go" {print; exit}' "$ETCD_GOMOD"; } >go.mod
  log "building etcd $ETCD_VERSION"
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go build -mod=mod -trimpath -ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" \
    -o "$TMP/etcd.bin" go.etcd.io/etcd/server/v3
  install_bin etcd "$TMP/etcd.bin"
  cd "$TMP"
fi

# --- kwok ---------------------------------------------------------------------------------------
if ! is_current kwok; then
  log "building kwok $KWOK_VERSION"
  GOBIN="$TMP/kwokbin" go install -trimpath \
    -ldflags="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  # The kwok controller has no built-in stages ("no stages found"): kwokctl injects its defaults.
  # Ship the same defaults (node-initialize, node-heartbeat-with-lease, pod-ready/complete/delete,
  # see pkg/kwokctl/runtime/cluster.go) from the same module version, for `kwok --config`.
  KWOK_SRC=$( (cd "$TMP" && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION") |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  S="$KWOK_SRC/kustomize/stage"
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo '---'; cat "$S/$f"
  done >"$TMP/kwok-stages.yaml"
  mv -f "$TMP/kwok-stages.yaml" "$OUT/kwok-stages.yaml"
  install_bin kwok "$TMP/kwokbin/kwok"
fi

# --- helm ---------------------------------------------------------------------------------------
if ! is_current helm; then
  log "building helm $HELM_VERSION"
  # As helm's Makefile does: default .Capabilities.KubeVersion = the client-go it was built with
  # (the compiled-in fallback is v1.20, which fails charts with a kubeVersion constraint).
  HELM_GOMOD=$(gomod_of "helm.sh/helm/v3@$HELM_VERSION")
  CG=$(awk '$1 == "k8s.io/client-go" {print $2; exit}' "$HELM_GOMOD")   # v0.MINOR.PATCH
  CG_MINOR=$(cut -d. -f2 <<<"$CG")
  HLDF="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  HLDF+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    HLDF+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$CG_MINOR"
  done
  GOBIN="$TMP/helmbin" go install -trimpath -ldflags="$HLDF" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  install_bin helm "$TMP/helmbin/helm"
fi

# --- pause ----------------------------------------------------------------------------------------
# The pod sandbox ("pause") container of the real node (startNode): a static program that sleeps
# until SIGTERM/SIGINT and reaps orphans, as the upstream pause does. startNode packs it into an
# OCI image itself; no registry is involved.
if ! is_current pause; then
  W="$TMP/pause"; mkdir -p "$W"; cd "$W"
  printf 'module local/pause\n\ngo 1.24\n' >go.mod
  cat >main.go <<'GO'
// pause: the pod sandbox process. Holds the pod's namespaces until told to stop.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
GO
  log "building pause"
  go build -trimpath -ldflags="-s -w" -o "$TMP/pause.bin" .
  install_bin pause "$TMP/pause.bin"
  cd "$TMP"
fi

# --- coredns ------------------------------------------------------------------------------------
# Cluster DNS of the real node (startNode): Services and the stream pods' names resolve as in a
# real cluster. Its default plugin set (kubernetes, forward, ...) is what the test tier needs.
if ! is_current coredns; then
  log "building coredns $COREDNS_VERSION"
  GOBIN="$TMP/corednsbin" go install -trimpath -ldflags="-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
  install_bin coredns "$TMP/corednsbin/coredns"
fi

left=$(missing)
[[ -z "$left" ]] || { log "still missing: $left"; exit 1; }
log "done in $((SECONDS - START))s"
echo "$OUT" >&3
