#!/usr/bin/env bash
# issue 9 probe: RotatE on Family, the calibration recipe (config.yaml backbones.rotate_nssa with its
# per_dataset.family lr decay, preset calibration) with 100 epochs instead of 50 and lr x 0.975 per epoch instead of
# x 0.95 (the same final factor, ~0.08); seed 0; selection by validation MRR. Run from the repository root after the
# DAG has fetched Family (data/); OUT defaults to /tmp/probes.
set -eu
OUT=${1:-/tmp/probes}
C=benchmarks/results/calibration/runs/family/calibration/rotate_nssa/seed0/config.yaml
dans-kgc train --dataset family --config $C --set train.epochs=100 --set train.lr_decay=0.975 --set seed=0 \
  --set threads=1 --tag probe=rotate_e100 --out "$OUT/rotate_e100" --quiet
dans-kgc evaluate --run "$OUT/rotate_e100"
