#!/usr/bin/env bash
# Install into .venv (CPU build of PyTorch) and run the main job: the `quick` preset,
# every table and figure. Offline: DANS_KGC_DATA_MIRROR=/path/to/datasets bash quickstart.sh
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[test]" torch==2.13.0
exec snakemake --profile profiles/local --cores 2 all_tables all_figures --config preset=quick "$@"
