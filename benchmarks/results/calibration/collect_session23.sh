#!/usr/bin/env bash
# Session 23 (2026-12-07): Family seed 2 of RotatE (the recipe with its per_dataset.family lr decay) and of ConvE,
# made from the DAG (run from the repository root of a checkout at this session's commits):
#   snakemake results/calibration/family/calibration/{rotate_nssa,conve_1n}/seed2/metrics_test.json \
#     --cores 1 --config preset=calibration
# copied (small files) into runs/; then the calibration table, its curves and the relations table are rebuilt.
# SRC: the calibration results folder (default results/calibration).
set -eu
SRC=${1:-results/calibration}
R=benchmarks/results/calibration
for run in "$SRC"/family/calibration/{rotate_nssa,conve_1n}/seed2; do
  [ -f "$run/metrics_test.json" ] || { echo "skip $run (no metrics_test.json)"; continue; }
  dest="$R/runs/${run#$SRC/}"; mkdir -p "$dest"; cp "$run"/{config.yaml,run.json,trace.csv,metrics_test.json} "$dest"/
done
dans-kgc report calibration --runs "$R/runs/umls" "$R/runs/family" --out "$R/calibration"
dans-kgc report calibration_curves --runs "$R/runs/umls" "$R/runs/family" --out "$R/calibration_curves"
dans-kgc report relations --experiment calibration --runs "$R/runs/family" --out "$R/relations"
