#!/usr/bin/env bash
# Warm-start diagnostics of two diffusion readings (issue 10): METHOD.md's (linear schedule, eps
# prediction) and our default (cosine schedule, x0 prediction), each fitted for 50 warm-start epochs
# on the same pretrained backbone and DAM. Stages were built by (per dataset D, backbone B):
#   dans-kgc pretrain --dataset D --source transe|backbone --set <recipe B> --set pretrain.epochs=50 --set train.epochs=50
#   dans-kgc dam fit ...; dans-kgc diffusion fit ... --set diffusion.warmstart_epochs=50
#     [--set diffusion.schedule=linear --set diffusion.prediction=eps]   (lin_eps)
#     [--set diffusion.schedule=cosine --set diffusion.prediction=x0]    (cos_x0)
# (non-TransE backbones with dam.semantic_source=backbone), under W=/tmp/sw/D-B.
set -euo pipefail
for w in /tmp/sw/*-*/; do
  name=$(basename "$w"); ds=${name%%-*}
  for d in "$w"diff-lin_eps-50 "$w"diff-cos_x0-50; do
    reading=$(basename "$d" | sed 's/^diff-//; s/-50$//')
    dans-kgc diagnose --warm-start "$d" --pretrained "$w/pre" --dam "$w/dam" --dataset "$ds" --set threads=1 \
      --set data.root=/tmp/sw/data --out "benchmarks/results/readings/${name}_${reading}" --triples 500 \
      --set diffusion.sampling_steps=10
  done
done
