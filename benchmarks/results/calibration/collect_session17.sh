#!/usr/bin/env bash
# Session of 2026-12-06: RotatE re-calibrated with Sun et al.'s parametrisation and the new rotate_nssa recipe
# (snakemake targets results/calibration/{umls,family}/calibration/rotate_nssa/seedN/metrics_test.json
#  --config preset=calibration), and RED-GNN (`redgnn`) on UMLS (recipe) and Family (its published setting,
# config.yaml's --set line, 20 epochs) via `dans-kgc train` + `dans-kgc evaluate` (commands in the README).
# Replaces the old-recipe RotatE run files, copies the small files, rebuilds the table and figure.
set -eu
R=benchmarks/results/calibration
rm -rf "$R"/runs/*/calibration/rotate_nssa
for run in results/calibration/*/calibration/rotate_nssa/seed*; do
  [ -f "$run/metrics_test.json" ] || continue
  dest="$R/runs/${run#results/calibration/}"; mkdir -p "$dest"; cp "$run"/{config.yaml,run.json,trace.csv,metrics_test.json} "$dest"/
done
if [ -f /tmp/rgcal/family/calibration/redgnn/seed0/metrics_test.json ]; then
  dest="$R/runs/family/calibration/redgnn/seed0"; mkdir -p "$dest"
  cp /tmp/rgcal/family/calibration/redgnn/seed0/{config.yaml,run.json,trace.csv,metrics_test.json} "$dest"/
fi
dans-kgc report calibration --runs "$R/runs/umls" "$R/runs/family" --out "$R/calibration"
dans-kgc report calibration_curves --runs "$R/runs/umls" "$R/runs/family" --out "$R/calibration_curves"
