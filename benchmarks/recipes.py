"""The backbone recipes (dans_kgc/recipes.yaml, read through ``dans_kgc.recipes``) as dans-kgc ``--set``
overrides, for the benchmarks: the recipe's shared keys, then the dataset's ``per_dataset`` entry, as the DAG and
``dans-kgc train --backbone`` apply them."""

from __future__ import annotations

import json

from dans_kgc.recipes import recipe_names, recipe_overrides


def recipe_sets(backbone: str, dataset: str) -> list[str]:
    """``key=value`` overrides of ``backbone``'s recipe on ``dataset``; SystemExit naming the choices if unknown."""
    if backbone not in recipe_names():
        raise SystemExit(f"unknown backbone '{backbone}'; dans_kgc/recipes.yaml has: {', '.join(recipe_names())}")
    return [
        f"{k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in recipe_overrides(backbone, dataset).items()
    ]
