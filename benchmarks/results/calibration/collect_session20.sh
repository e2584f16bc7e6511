#!/usr/bin/env bash
# Session 20 (2026-12-06): the calibration runs of this session, copied (small files) into runs/, then the table
# and the figure rebuilt. Made with (each from the repository root of a checkout at this session's commits):
#   RotatE with the filtered recipe (rotate_nssa now sets train.filter_negatives), UMLS seeds 0-2, Family seed 0:
#     snakemake results/calibration/{umls/calibration/rotate_nssa/seed{0,1,2},family/calibration/rotate_nssa/seed0}/metrics_test.json \
#       --cores 1 --config preset=calibration
#   Family calibration seeds 1-2 of QuatE, ComplEx, DistMult, TransE:
#     snakemake results/calibration/family/calibration/{quate_n3_1n,complex_n3_1n,distmult_n3_1n,transe}/seed{1,2}/metrics_test.json \
#       --cores 1 --config preset=calibration
#   RED-GNN Family seeds 1-2: the command of seed 0 (its run.json), 20 epochs, seed 1 / 2, then dans-kgc evaluate --run
# SRC: the calibration results folder (default results/calibration); RGSRC: the RED-GNN Family runs' root
# (default results/rgcal, laid out DATASET/calibration/redgnn/seedS).
set -eu
SRC=${1:-results/calibration}
RGSRC=${2:-results/rgcal}
R=benchmarks/results/calibration
copy() {  # run folder, destination below runs/
  [ -f "$1/metrics_test.json" ] || { echo "skip $1 (no metrics_test.json)"; return 0; }
  mkdir -p "$R/runs/$2"; cp "$1"/{config.yaml,run.json,trace.csv,metrics_test.json} "$R/runs/$2"/
}
for run in "$SRC"/*/calibration/rotate_nssa/seed* "$SRC"/family/calibration/*/seed[12]; do
  copy "$run" "${run#$SRC/}"
done
for run in "$RGSRC"/family/calibration/redgnn/seed[12]; do
  copy "$run" "${run#$RGSRC/}"
done
dans-kgc report calibration --runs "$R/runs/umls" "$R/runs/family" --out "$R/calibration"
dans-kgc report calibration_curves --runs "$R/runs/umls" "$R/runs/family" --out "$R/calibration_curves"
