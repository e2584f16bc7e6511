#!/usr/bin/env bash
# Measured band placement vs METHOD.md's fixed bands (issue 10), fidelity settings. Runs, from a checkout's root:
#   snakemake results/fidelity/umls/main/{dans,dans_placed}@transe/seed{0,1,2}/metrics_test.json \
#     results/fidelity/umls/main/{uniform,dans,dans_placed}@complex_n3_1n/seed{0,1,2}/metrics_test.json \
#     results/fidelity/family/main/{dans,dans_placed}@complex_n3_1n/seed0/metrics_test.json \
#     --cores 1 --keep-going --config preset=fidelity --configfile benchmarks/results/placement/placed.yaml
# Warm-start diagnoses (fixed and measured placement on the same warm start; TransE from that fidelity tree,
# RED-GNN from the gnn preset's UMLS tree):
#   dans-kgc diagnose --warm-start results/fidelity/umls/diffusion/dans-mu1.0-ccd-dam-f470ae \
#     --pretrained results/fidelity/umls/pretrain/transe-d5e18762 --dam results/fidelity/umls/dam/transe-d5e18762 \
#     --dataset umls --triples 500 --set diffusion.sampling_steps=10 --set diffusion.band_placement={fixed,measured} \
#     --out benchmarks/results/placement/warm_start_umls_transe_{fixed,measured}
#   dans-kgc diagnose --warm-start results/gnn/umls/diffusion/dans-mu1.0-ccd-dam-d5c332 \
#     --pretrained results/gnn/umls/pretrain/redgnn-0be83414 --dam results/gnn/umls/dam/transe-5bc13864 \
#     --dataset umls --triples 500 --set diffusion.sampling_steps=10 --set diffusion.band_placement=measured \
#     --out benchmarks/results/placement/warm_start_umls_redgnn_measured
#   (its fixed counterpart: benchmarks/results/gnn/diagnostics/warm_start_umls_dans.*)
#   dans-kgc diagnose --warm-start results/fidelity/family/diffusion/dans-mu1.0-ccd-dam-7500de \
#     --pretrained results/fidelity/family/pretrain/complex-91ecae90 --dam results/fidelity/family/dam/transe-d5e18762 \
#     --dataset family --triples 500 --set diffusion.sampling_steps=10 --set diffusion.band_placement={fixed,measured} \
#     --out benchmarks/results/placement/warm_start_family_complex_{fixed,measured}
# Then: bash benchmarks/results/placement/collect.sh [SRC=results/fidelity]
set -eu
SRC=${1:-results/fidelity}
OUT=benchmarks/results/placement
for run in "$SRC"/*/main/*@*/seed*; do
  [ -f "$run/metrics_test.json" ] || continue
  dest="$OUT/runs/${run#$SRC/}"; mkdir -p "$dest"
  cp "$run"/{config.yaml,run.json,trace.csv,metrics_test.json} "$dest"/
done
R="$OUT/runs"
dans-kgc report main --experiment main --runs "$R"/*/main --out "$OUT/main"
dans-kgc report hardness --experiment main --runs "$R"/*/main --out "$OUT/hardness"
dans-kgc report curves --experiment main --runs "$R"/*/main --out "$OUT/curves"
