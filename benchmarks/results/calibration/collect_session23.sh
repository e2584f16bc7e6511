#!/usr/bin/env bash
# Session 23 (2026-12-07): Family seed 2 of RotatE (the recipe with its per_dataset.family lr decay) and of ConvE,
# made from the DAG (run from the repository root of a checkout at this session's commits):
#   snakemake results/calibration/family/calibration/{rotate_nssa,conve_1n}/seed2/metrics_test.json \
#     --cores 1 --config preset=calibration
# copied (small files) into runs/; then the calibration table, its curves and the relations table are rebuilt.
# Then RotatE Family with the recipe's new Family entry (100 epochs, lr x 0.975 per epoch; config.yaml rotate_nssa),
# made as `dans-kgc train --dataset family --config runs/family/calibration/rotate_nssa/seed0/config.yaml --set
# train.epochs=100 --set train.lr_decay=0.975 --set seed=S --set threads=1 --tag experiment=calibration --tag
# variant=rotate_nssa --tag backbone=rotate_nssa --out ROT/family/calibration/rotate_nssa/seedS` (S = 1, 2), then
# `dans-kgc evaluate --run`; seed 0 was made first as a probe with the same config and only `--tag probe=rotate_e100`
# (ROT0; probes/family_rotate/probe.sh), so its calibration tags are added here. They replace the 50-epoch Family
# runs (git history keeps them: 0.904 / 0.896 / 0.901).
# Usage: collect_session23.sh [SRC] [ROT] [ROT0]   (SRC: the calibration results folder, default results/calibration)
set -eu
SRC=${1:-results/calibration}
ROT=${2:-}
ROT0=${3:-}
R=benchmarks/results/calibration
copy() {  # run folder -> its place below runs/ (small files only)
  [ -f "$1/metrics_test.json" ] || { echo "skip $1 (no metrics_test.json)"; return 0; }
  mkdir -p "$R/runs/$2"; cp "$1"/{config.yaml,run.json,trace.csv,metrics_test.json} "$R/runs/$2"/
}
for run in "$SRC"/family/calibration/{rotate_nssa,conve_1n}/seed2; do copy "$run" "${run#$SRC/}"; done
if [ -n "$ROT" ]; then
  for run in "$ROT"/family/calibration/rotate_nssa/seed*; do copy "$run" "${run#$ROT/}"; done
fi
if [ -n "$ROT0" ] && [ -f "$ROT0/metrics_test.json" ]; then
  copy "$ROT0" family/calibration/rotate_nssa/seed0
  python - "$ROT0/run.json" "$R/runs/family/calibration/rotate_nssa/seed0/run.json" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
run["tags"] = {"experiment": "calibration", "variant": "rotate_nssa", "backbone": "rotate_nssa", **run.get("tags", {})}
json.dump(run, open(sys.argv[2], "w"), indent=2)
PY
fi
dans-kgc report calibration --runs "$R/runs/umls" "$R/runs/family" --out "$R/calibration"
dans-kgc report calibration_curves --runs "$R/runs/umls" "$R/runs/family" --out "$R/calibration_curves"
dans-kgc report relations --experiment calibration --runs "$R/runs/family" --out "$R/relations"
