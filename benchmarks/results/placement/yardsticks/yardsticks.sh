#!/usr/bin/env bash
# Issue 10, 2026-12-07: the hardness yardsticks (entity quantile of the true answer and of the hardest entity that is
# no known answer) next to the bands, at the end of training and at the warm start. Run from the root of a checkout
# that holds the placement runs (collect.sh's header: preset fidelity + placed.yaml) and the fidelity Family TransE run;
# each `dans-kgc diagnose` writes NAME.{json,md,png} (the PNGs are not committed).
set -eu
OUT=${1:-benchmarks/results/placement/yardsticks}
for r in results/fidelity/umls/main/{dans,dans_placed}@{transe,complex_n3_1n}/seed0 \
         results/fidelity/family/main/{dans,dans_placed}@complex_n3_1n/seed0 results/fidelity/family/main/dans@transe/seed0; do
  n=$(echo "$r" | awk -F/ '{print $(NF-3)"_"$(NF-1)}')
  dans-kgc diagnose --run "$r" --out "$OUT/$n"
done
# warm starts: each fitted on its own backbone's Stage 0 (a mismatched pair is refused)
dans-kgc diagnose --warm-start results/fidelity/umls/diffusion/dans-mu1.0-ccd-dam-f470ae \
  --pretrained results/fidelity/umls/pretrain/transe-d5e18762 --dataset umls --samplers uniform \
  --out "$OUT/ws_umls_transe-d5e18762_dans-mu1.0-ccd-dam-f470ae"
dans-kgc diagnose --warm-start results/fidelity/umls/diffusion/dans-mu1.0-ccd-dam-7500de \
  --pretrained results/fidelity/umls/pretrain/complex-91ecae90 --dataset umls --samplers uniform \
  --out "$OUT/ws_umls_complex-91ecae90_dans-mu1.0-ccd-dam-7500de"
