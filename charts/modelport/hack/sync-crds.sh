#!/usr/bin/env bash
# Copies the repository's CRDs into the chart (Helm can only read files inside the chart).
# tests/chart/test_crds.py fails while the copies differ.
set -euo pipefail
chart=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
repo=$(cd "$chart/../.." && pwd)
mkdir -p "$chart/files/crds"
cp "$repo/crds/mlmodels.modelport.io.yaml" "$chart/files/crds/mlmodels.modelport.io.yaml"
echo "synced crds/mlmodels.modelport.io.yaml into $chart/files/crds/"
