#!/usr/bin/env bash
# Session 22 (2026-12-07), run from the repository root:
# 1. ConvE (`conve_1n`) Family calibration seeds 1-2, made in SRC (default results/calibration) with
#      snakemake results/calibration/family/calibration/conve_1n/seed{1,2}/metrics_test.json --cores 1 --config preset=calibration
#    (a checkout at 2eaae91: its evaluation predates the per-relation anchor diagnostic, so step 2 re-evaluates them).
# 2. The per-relation anchor diagnostic (metrics_test.json anchor_diagnostic.by_relation) for every Family calibration
#    run whose model is on disk: `dans-kgc evaluate --run` on a copy of each run folder (REEVAL, default
#    results/reeval; same headline metrics, checked below), whose metrics_test.json replaces the committed one.
# Then the calibration table, its curves and the relations table are rebuilt.
set -eu
SRC=${1:-results/calibration}
REEVAL=${2:-results/reeval}
R=benchmarks/results/calibration
for run in "$SRC"/family/calibration/conve_1n/seed[12]; do
  [ -f "$run/metrics_test.json" ] || { echo "skip $run (no metrics_test.json)"; continue; }
  dest="$R/runs/${run#$SRC/}"; mkdir -p "$dest"; cp "$run"/{config.yaml,run.json,trace.csv,metrics_test.json} "$dest"/
done
for run in "$REEVAL"/family/calibration/*/seed*; do
  dest="$R/runs/${run#$REEVAL/}"
  [ -f "$run/metrics_test.json" ] && [ -f "$dest/metrics_test.json" ] || { echo "skip $run"; continue; }
  python - "$dest/metrics_test.json" "$run/metrics_test.json" <<'PY'
import json, sys
old, new = (json.load(open(p)) for p in sys.argv[1:])
same = all(old[k] == new[k] for k in ("mrr", "hits@1", "hits@3", "hits@10", "num_ranked"))
sys.exit(0 if same else f"{sys.argv[2]}: headline metrics differ from {sys.argv[1]}")
PY
  cp "$run/metrics_test.json" "$dest/metrics_test.json"
done
dans-kgc report calibration --runs "$R/runs/umls" "$R/runs/family" --out "$R/calibration"
dans-kgc report calibration_curves --runs "$R/runs/umls" "$R/runs/family" --out "$R/calibration_curves"
dans-kgc report relations --experiment calibration --runs "$R/runs/family" --out "$R/relations"
