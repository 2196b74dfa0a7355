#!/usr/bin/env bash
# Installs the real binaries the tests and the demo run against, into bin/ (gitignored):
#   etcd, kube-apiserver[, kube-controller-manager, kube-scheduler]   built from the Go module proxy
#   prometheus                                                         from Debian's packages
#   helm (bin/helm-$HELM_VERSION, and bin/helm pointing at it)         built from the Go module proxy
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
HELM_VERSION=${HELM_VERSION:-v3.22.0}
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

# from_cache NAME VERSION [DEST]: copy a binary built earlier on this machine into DEST
# ($ASSETS/NAME unless given).
from_cache() {
  local dest=${3:-$ASSETS/$1}
  [[ -n "$CACHE" && -x "$CACHE/$1-$2" ]] || return 1
  cp "$CACHE/$1-$2" "$dest.tmp" && mv "$dest.tmp" "$dest"
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
# to_cache NAME VERSION [SRC]: keep a freshly built binary (SRC, $ASSETS/NAME unless given)
# for the next clone.
to_cache() {
  local src=${3:-$ASSETS/$1}
  [[ -n "$CACHE" ]] || return 0
  mkdir -p "$CACHE" && cp "$src" "$CACHE/$1-$2.tmp" && mv "$CACHE/$1-$2.tmp" "$CACHE/$1-$2"
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

# --- helm (the chart's tests) -----------------------------------------------------------------
HELM="$BIN/helm-$HELM_VERSION"
helm_ok() { "$HELM" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; }
if helm_ok; then
  [[ -z "$CACHE" || -x "$CACHE/helm-$HELM_VERSION" ]] || to_cache helm "$HELM_VERSION" "$HELM"
elif ! { from_cache helm "$HELM_VERSION" "$HELM" && helm_ok; }; then
  log "building helm $HELM_VERSION from the Go module proxy"
  scratch=$(mktemp -d)
  # The ldflags helm's own Makefile sets: its version, and the Kubernetes version that `helm
  # template` and `helm lint` assume (from the client-go it builds with; v1.20 otherwise, which
  # a chart's kubeVersion >=1.29 refuses).
  hmod=$(GOFLAGS= go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  kminor=$(sed -n 's/^\s*k8s\.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$hmod")
  [[ -n "$kminor" ]] || { log "no k8s.io/client-go in helm $HELM_VERSION's go.mod"; exit 1; }
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldflags+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$kminor"
  done
  # go install pkg@version ignores go.mod and refuses -mod=mod, hence GOFLAGS= here.
  GOFLAGS= GOBIN="$scratch" quiet go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mv "$scratch/helm" "$HELM"
  rm -rf "$scratch"
  helm_ok || { log "bin/helm-$HELM_VERSION does not report $HELM_VERSION"; exit 1; }
  to_cache helm "$HELM_VERSION" "$HELM"
fi
ln -sf "helm-$HELM_VERSION" "$BIN/helm"

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
