"""The backbone recipes of config.yaml (``backbones:``) as dans-kgc ``--set`` overrides, for the benchmarks,
read as the DAG reads them (``dans_kgc.config.recipe_overrides``: shared keys, then the dataset's ``per_dataset``)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from dans_kgc.config import recipe_overrides

ROOT = Path(__file__).resolve().parents[1]


def recipe_sets(backbone: str, dataset: str) -> list[str]:
    """``key=value`` overrides of ``backbone``'s recipe on ``dataset``; SystemExit naming the choices if unknown."""
    recipes = yaml.safe_load((ROOT / "config.yaml").read_text())["backbones"]
    if backbone not in recipes:
        raise SystemExit(f"unknown backbone '{backbone}'; config.yaml's backbones: {', '.join(recipes)}")
    return [
        f"{k}={json.dumps(v) if isinstance(v, list) else v}"
        for k, v in recipe_overrides(recipes[backbone], dataset).items()
    ]
