#!/usr/bin/env bash
# Copies the CRDs that `make manifests` generates into config/crd/ to the Helm chart's crds/,
# byte for byte, and removes any the chart has that config/crd/ no longer does.
# `make chart-crds` runs it; `make test` fails when it changes the tree.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC="$ROOT/config/crd"
DST="$ROOT/charts/trafficctl/crds"

mkdir -p "$DST"
shopt -s nullglob
for f in "$DST"/*.yaml; do
  [[ -e "$SRC/$(basename "$f")" ]] || rm -f "$f"
done
for f in "$SRC"/*.yaml; do
  cmp -s "$f" "$DST/$(basename "$f")" || cp "$f" "$DST/"
done
