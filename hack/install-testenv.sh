#!/usr/bin/env bash
# Installs the real binaries the tests and the demo run against, into bin/ (gitignored):
#   etcd, kube-apiserver[, kube-controller-manager, kube-scheduler]   built from the Go module proxy
#   prometheus                                                         from Debian's packages
# Whatever is already there at the right version is skipped, so reruns take a second.
#
# Usage: hack/install-testenv.sh [--with-controllers]
#   --with-controllers  also build kube-controller-manager and kube-scheduler (end-to-end tests, demo)
#
# Prints the envtest asset directory (KUBEBUILDER_ASSETS) as its last line.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/bin}
K8S_VERSION=${K8S_VERSION:-v1.37.1}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
ASSETS="$BIN/k8s/$K8S_VERSION"
# Built binaries are also kept per machine, so a fresh clone on the same machine (as CI's is)
# copies them instead of building again. TRAFFICCTL_CACHE= (empty) turns this off.
CACHE=${TRAFFICCTL_CACHE-${XDG_CACHE_HOME:-$HOME/.cache}/trafficctl}
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

components=(kube-apiserver)
if [[ "${1:-}" == "--with-controllers" ]]; then
  components+=(kube-controller-manager kube-scheduler)
fi

log() { echo "install-testenv: $*" >&2; }
mkdir -p "$ASSETS"

# from_cache NAME VERSION: copy a binary built earlier on this machine into $ASSETS.
from_cache() {
  [[ -n "$CACHE" && -x "$CACHE/$1-$2" ]] || return 1
  cp "$CACHE/$1-$2" "$ASSETS/$1.tmp" && mv "$ASSETS/$1.tmp" "$ASSETS/$1"
}
# quiet CMD...: run a noisy command, showing its output only when it fails.
quiet() {
  local out
  out=$(mktemp)
  if ! "$@" >"$out" 2>&1; then
    tail -40 "$out" >&2
    rm -f "$out"
    return 1
  fi
  rm -f "$out"
}
# to_cache NAME VERSION: keep a freshly built binary for the next clone.
to_cache() {
  [[ -n "$CACHE" ]] || return 0
  mkdir -p "$CACHE" && cp "$ASSETS/$1" "$CACHE/$1-$2.tmp" && mv "$CACHE/$1-$2.tmp" "$CACHE/$1-$2"
}

# --- Debian packages -------------------------------------------------------------------------
if ! command -v prometheus >/dev/null 2>&1; then
  log "installing prometheus from Debian packages"
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/tmp/trafficctl-apt.log 2>&1 ||
    { tail -20 /tmp/trafficctl-apt.log >&2; exit 1; }
fi
ln -sf "$(command -v prometheus)" "$BIN/prometheus"

# --- etcd ------------------------------------------------------------------------------------
etcd_ok() { "$ASSETS/etcd" --version 2>/dev/null | grep -q "etcd Version: ${ETCD_VERSION#v}"; }
if etcd_ok; then
  [[ -z "$CACHE" || -x "$CACHE/etcd-$ETCD_VERSION" ]] || to_cache etcd "$ETCD_VERSION"
elif ! { from_cache etcd "$ETCD_VERSION" && etcd_ok; }; then
  log "building etcd $ETCD_VERSION from the Go module proxy"
  scratch=$(mktemp -d)
  (
    cd "$scratch"
    go mod init scratch/etcd >/dev/null 2>&1
    quiet go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    quiet go build -trimpath -o "$ASSETS/etcd" go.etcd.io/etcd/server/v3
  )
  rm -rf "$scratch"
  to_cache etcd "$ETCD_VERSION"
fi

# --- Kubernetes ------------------------------------------------------------------------------
k8s_ok() { "$ASSETS/$1" --version 2>/dev/null | grep -q "Kubernetes $K8S_VERSION$"; }
missing=()
for c in "${components[@]}"; do
  if k8s_ok "$c"; then
    [[ -z "$CACHE" || -x "$CACHE/$c-$K8S_VERSION" ]] || to_cache "$c" "$K8S_VERSION"
  elif ! { from_cache "$c" "$K8S_VERSION" && k8s_ok "$c"; }; then
    missing+=("$c")
  fi
done
if (( ${#missing[@]} > 0 )); then
  log "building ${missing[*]} $K8S_VERSION from the Go module proxy (several minutes on a cold cache)"
  scratch=$(mktemp -d)
  (
    cd "$scratch"
    go mod init scratch/kubernetes >/dev/null 2>&1
    # k8s.io/kubernetes points every staging module at ./staging, which is not in the module zip:
    # pin each of them to its published version instead.
    kmod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    staging_version="v0.${K8S_VERSION#v1.}"
    grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$kmod" | awk '{print $1}' | sort -u | while read -r m; do
      echo "replace $m => $m $staging_version" >> go.mod
    done
    quiet go get "k8s.io/kubernetes@$K8S_VERSION"
    minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
    ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
    for c in "${missing[@]}"; do
      log "  go build $c"
      quiet go build -trimpath -ldflags "$ldflags" -o "$ASSETS/$c" "k8s.io/kubernetes/cmd/$c"
      to_cache "$c" "$K8S_VERSION"
    done
  )
  rm -rf "$scratch"
fi

echo "$ASSETS"
