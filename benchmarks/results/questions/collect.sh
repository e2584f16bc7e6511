#!/usr/bin/env bash
# The open-question experiments at full size (preset `questions`, issue 12): copies the small files of each
# finished run (and, for dam_inputs runs, the report of the DAM fit it read) from SRC (default: results/questions)
# to benchmarks/results/questions/runs, then builds the tables and figures there. Run from the repository root:
#   snakemake all --cores 1 --config preset=questions      # (or the per-seed targets, see README "Measured")
#   bash benchmarks/results/questions/collect.sh [SRC]
set -eu
SRC=${1:-results/questions}
OUT=benchmarks/results/questions
for run in "$SRC"/*/{sensitivity,curriculum,dam_inputs}/*/seed*; do
  [ -f "$run/metrics_test.json" ] || continue
  dest="$OUT/runs/${run#$SRC/}"; mkdir -p "$dest"
  cp "$run"/{config.yaml,run.json,trace.csv,metrics_test.json} "$dest"/
  dam=$(python3 -c "import json,sys; print((json.load(open(sys.argv[1])).get('stages') or {}).get('dam') or '')" "$run/run.json")
  # stage folders are recorded relative to the workflow's directory
  for base in "" "$SRC/../../"; do
    if [ -n "$dam" ] && [ -f "$base$dam/dam_report.json" ]; then cp "$base$dam/dam_report.json" "$dest"/; break; fi
  done
done
R="$OUT/runs"
dans-kgc report curriculum --experiment curriculum --runs "$R" --out "$OUT/curriculum"
dans-kgc report dam_inputs --experiment dam_inputs --runs "$R" --out "$OUT/dam_inputs"
dans-kgc report sensitivity --experiment sensitivity --runs "$R" --out "$OUT/sensitivity"
dans-kgc report bands --experiment curriculum --runs "$R" --out "$OUT/curriculum_bands"
dans-kgc report hardness --experiment sensitivity --experiment curriculum --runs "$R" --out "$OUT/hardness"
