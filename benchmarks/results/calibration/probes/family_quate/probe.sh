#!/usr/bin/env bash
# issue 9 probe: QuatE on Family with the calibration recipe (config.yaml backbones.quate_n3_1n, preset calibration,
# seed 0), dimension 256 / N3 weight 1e-3; selection by validation MRR.
cd /work/main && source .venv/bin/activate && export DANS_KGC_DATA_MIRROR=/work/shared/datasets OMP_NUM_THREADS=1
RECIPE="model.name=quate model.dim=128 model.init=xavier_normal model.regularizer=n3 model.reg_weight=0.005 train.mode=one_to_n train.lr=0.01 train.batch_size=256 train.sampler=uniform train.init_from_pretrained=false train.epochs=50 train.eval_every=5 train.checkpoint_every=5 threads=1 seed=0"
OUT=/work/probes21
mkdir -p $OUT
for probe in "dim256:model.dim=256" "n3_1e-3:model.reg_weight=0.001"; do
  name=${probe%%:*}; set=${probe#*:}
  args=(); for kv in $RECIPE $set; do args+=(--set "$kv"); done
  dans-kgc train --dataset family --out $OUT/quate_$name --quiet "${args[@]}" --tag probe=$name > $OUT/quate_$name.log 2>&1
  dans-kgc evaluate --run $OUT/quate_$name --quiet >> $OUT/quate_$name.log 2>&1
done
