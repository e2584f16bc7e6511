#!/usr/bin/env bash
# Session 22 (2026-12-07), run from the repository root:
# 1. ConvE (`conve_1n`) Family calibration seeds 1-2, made in SRC (default results/calibration) with
#      snakemake results/calibration/family/calibration/conve_1n/seed{1,2}/metrics_test.json --cores 1 --config preset=calibration
#    (a checkout at 2eaae91: its evaluation predates the per-relation anchor diagnostic, so step 2 re-evaluates them).
# 2. The per-relation anchor diagnostic (metrics_test.json anchor_diagnostic.by_relation) for every Family calibration
#    run whose model is on disk: `dans-kgc evaluate --run` on a copy of each run folder (REEVAL, default
#    results/reeval; same headline metrics, checked below), whose metrics_test.json replaces the committed one.
# Then the calibration table, its curves and the relations table are rebuilt.
# Usage: collect_session22.sh [SRC] [REEVAL] [ROT] [ROT0]
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
# 3. RotatE Family with the recipe's per_dataset.family lr decay (train.lr_decay 0.95; config.yaml rotate_nssa), made
#    as `dans-kgc train --dataset family --config runs/family/calibration/rotate_nssa/seed0/config.yaml --set
#    train.lr_decay=0.95 --set seed=S --set threads=1 --tag experiment=calibration --tag variant=rotate_nssa --tag
#    backbone=rotate_nssa --out ROT/family/calibration/rotate_nssa/seedS`, then `dans-kgc evaluate --run`; seed 0 was
#    made first as a probe with the same config and only `--tag probe=lrdecay` (ROT0), so its calibration tags are
#    added here. They replace the constant-lr Family run (git history keeps it: test 0.853).
ROT=${3:-}
ROT0=${4:-}
if [ -n "$ROT0" ] && [ -f "$ROT0/metrics_test.json" ]; then
  dest="$R/runs/family/calibration/rotate_nssa/seed0"; mkdir -p "$dest"
  cp "$ROT0"/{config.yaml,trace.csv,metrics_test.json} "$dest"/
  python - "$ROT0/run.json" "$dest/run.json" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
run["tags"] = {"experiment": "calibration", "variant": "rotate_nssa", "backbone": "rotate_nssa", **run.get("tags", {})}
json.dump(run, open(sys.argv[2], "w"), indent=2)
PY
fi
if [ -n "$ROT" ]; then
  for run in "$ROT"/family/calibration/rotate_nssa/seed*; do
    [ -f "$run/metrics_test.json" ] || { echo "skip $run (no metrics_test.json)"; continue; }
    dest="$R/runs/${run#$ROT/}"; mkdir -p "$dest"; cp "$run"/{config.yaml,run.json,trace.csv,metrics_test.json} "$dest"/
  done
fi
dans-kgc report calibration --runs "$R/runs/umls" "$R/runs/family" --out "$R/calibration"
dans-kgc report calibration_curves --runs "$R/runs/umls" "$R/runs/family" --out "$R/calibration_curves"
dans-kgc report relations --experiment calibration --runs "$R/runs/family" --out "$R/relations"
