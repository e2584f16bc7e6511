#!/usr/bin/env bash
# Gathers the re-run diffusion rows (results/fidelity, after run.sh) and the unchanged non-diffusion rows of
# the earlier fidelity measurement (benchmarks/results/fidelity/runs) into benchmarks/results/fidelity_graded/runs
# (small files only), then builds the tables there. Run from the repository root.
set -eu
OLD=benchmarks/results/fidelity/runs
NEW=benchmarks/results/fidelity_graded
mkdir -p "$NEW/runs"
for ds in umls family; do
  # unchanged rows: samplers that never use the DANS-KGC diffusion
  for run in "$OLD"/$ds/main/{uniform,bernoulli,self_adversarial,nscaching,dhns}@*/seed*; do
    [ -d "$run" ] || continue
    dest="$NEW/runs/${run#$OLD/}"; mkdir -p "$dest"; cp "$run"/{config.yaml,run.json,trace.csv,metrics_test.json} "$dest"/ 2>/dev/null || true
  done
  # re-run rows with the graded reading
  for run in results/fidelity/$ds/{main,ablation}/*/seed*; do
    [ -f "$run/metrics_test.json" ] || continue
    dest="$NEW/runs/${run#results/fidelity/}"; mkdir -p "$dest"; cp "$run"/{config.yaml,run.json,trace.csv,metrics_test.json} "$dest"/
  done
  for kind in diagnostics; do
    [ -d results/fidelity/$ds/diagnostics ] || continue
    mkdir -p "$NEW/runs/$ds/diagnostics"; cp -r results/fidelity/$ds/diagnostics/. "$NEW/runs/$ds/diagnostics/"
  done
done
for kind in main ablation efficiency paper curves hardness; do
  dans-kgc report $kind --runs "$NEW/runs/umls" "$NEW/runs/family" --out "$NEW/$kind"
done
