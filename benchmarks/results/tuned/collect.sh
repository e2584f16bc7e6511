#!/usr/bin/env bash
# Equal-budget tuning (issue 12), preset `tuned`: copies each study's study.json + best.yaml and the small files
# of the default (main) and tuned runs from SRC (default: results/tuned) to benchmarks/results/tuned/runs, then
# builds the tables and the figure there. Run from the repository root, after e.g.
#   snakemake all --cores 1 --keep-going --config preset=tuned --configfile benchmarks/results/tuned/part_umls_transe.yaml
#   bash benchmarks/results/tuned/collect.sh [SRC]
set -eu
SRC=${1:-results/tuned}
OUT=benchmarks/results/tuned
for study in "$SRC"/*/tune/*; do
  [ -f "$study/study.json" ] || continue
  dest="$OUT/runs/${study#$SRC/}"; mkdir -p "$dest"; cp "$study"/{study.json,best.yaml} "$dest"/
done
for run in "$SRC"/*/{main,tuned}/*/seed*; do
  [ -f "$run/metrics_test.json" ] || continue
  dest="$OUT/runs/${run#$SRC/}"; mkdir -p "$dest"; cp "$run"/{config.yaml,run.json,trace.csv,metrics_test.json} "$dest"/
done
for diag in "$SRC"/*/diagnostics; do  # the DAG's diagnoses of the default runs and warm starts (json + md)
  [ -d "$diag" ] || continue
  (cd "$diag" && find . -name '*.json' -o -name '*.md') | while read -r f; do
    ds=${diag#$SRC/}; dest="$OUT/diagnostics/${ds%/diagnostics}/$f"; mkdir -p "$(dirname "$dest")"; cp "$diag/$f" "$dest"
  done
done
R="$OUT/runs"
dans-kgc report tuning --experiment main --experiment tuned --runs "$R"/*/main "$R"/*/tuned "$R"/*/tune/* --out "$OUT/tuning"
dans-kgc report tuning_history --experiment tuned --runs "$R"/*/tune/* --out "$OUT/tuning_history"
dans-kgc report main --experiment main --runs "$R"/*/main --out "$OUT/main_default"
dans-kgc report main --experiment tuned --runs "$R"/*/tuned --out "$OUT/main_tuned"
dans-kgc report efficiency --experiment tuned --runs "$R"/*/tuned --out "$OUT/efficiency_tuned"
dans-kgc report curves --experiment tuned --runs "$R"/*/tuned --out "$OUT/curves_tuned"
[ -d "$OUT/diagnostics" ] && dans-kgc report diagnostics --runs "$OUT/diagnostics" --out "$OUT/diagnostics_table"
