#!/usr/bin/env bash
# Session 19 (2026-12-06): RED-GNN (`redgnn` recipe) calibration seeds 1-2 on UMLS, 50 epochs each, made with
#   snakemake results/calibration/umls/calibration/redgnn/seed{1,2}/metrics_test.json --cores 1 --config preset=calibration
# in SRC (default: results/calibration); copies their small files and rebuilds the table and the figure.
set -eu
SRC=${1:-results/calibration}
R=benchmarks/results/calibration
for run in "$SRC"/umls/calibration/redgnn/seed*; do
  [ -f "$run/metrics_test.json" ] || continue
  dest="$R/runs/${run#$SRC/}"; mkdir -p "$dest"; cp "$run"/{config.yaml,run.json,trace.csv,metrics_test.json} "$dest"/
done
dans-kgc report calibration --runs "$R/runs/umls" "$R/runs/family" --out "$R/calibration"
dans-kgc report calibration_curves --runs "$R/runs/umls" "$R/runs/family" --out "$R/calibration_curves"
