#!/usr/bin/env bash
# DANS-KGC on RED-GNN (issue 11), preset `gnn`: copies the small files of each finished run (and of the RED-GNN
# Stage 0 it started from) from SRC (default: results/gnn) to benchmarks/results/gnn/runs, then builds the tables
# there. Run from the repository root, e.g. for UMLS seed 0 (a config file narrows the preset):
#   printf 'presets:\n  gnn:\n    datasets: [umls]\n    seeds: [0]\n' > gnn_umls0.yaml
#   snakemake all_tables --cores 1 --keep-going --config preset=gnn --configfile gnn_umls0.yaml
#   bash benchmarks/results/gnn/collect.sh [SRC]
set -eu
SRC=${1:-results/gnn}
OUT=benchmarks/results/gnn
for run in "$SRC"/*/{main,ablation}/*/seed* "$SRC"/*/pretrain/redgnn-*; do
  [ -f "$run/run.json" ] || continue
  dest="$OUT/runs/${run#$SRC/}"; mkdir -p "$dest"
  for f in config.yaml run.json trace.csv metrics_test.json; do [ -f "$run/$f" ] && cp "$run/$f" "$dest"/; done
done
R="$OUT/runs"
dans-kgc report main --experiment main --runs "$R"/*/main --out "$OUT/main"
dans-kgc report efficiency --experiment main --runs "$R"/*/main --out "$OUT/efficiency"
if ls -d "$R"/*/ablation >/dev/null 2>&1; then
  dans-kgc report ablation --experiment ablation --runs "$R"/*/ablation "$R"/*/main --out "$OUT/ablation"
fi
dans-kgc report paper --experiment main --experiment ablation --runs "$R"/*/main $(ls -d "$R"/*/ablation 2>/dev/null) --out "$OUT/paper"
dans-kgc report hardness --experiment main --experiment ablation --runs "$R"/*/main $(ls -d "$R"/*/ablation 2>/dev/null) --out "$OUT/hardness"
dans-kgc report curves --experiment main --runs "$R"/*/main --out "$OUT/curves"
