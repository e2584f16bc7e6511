"""Backbone recipes: named sets of dans-kgc overrides, each the standard setting of a backbone's paper.

The package's recipes live in ``dans_kgc/recipes.yaml``, with the reasons for each choice. A recipe is a mapping
of flat dotted config keys (``model.dim: 256``) that names its backbone (``model.name``); its ``per_dataset``
entry replaces keys on particular datasets. ``dans-kgc train --dataset D --backbone NAME`` applies
``recipe_overrides(NAME, D)`` over the defaults, before ``--config`` files and ``--set`` overrides.

Your own recipes, as a plugin (``--plugin``, or the workflow's ``plugins:``): a YAML file laid out like
recipes.yaml, or a Python module that calls ``register``::

    from dans_kgc.recipes import register

    register("transe_wide", {"model.name": "transe", "model.dim": 512}, per_dataset={"family": {"train.lr": 0.01}})

No torch import: the workflow plans with this module.
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from dans_kgc.config import PER_DATASET, ConfigError, apply_per_dataset, load_defaults, merge, nest_dotted

PACKAGE_FILE = "recipes.yaml"
PACKAGE_SOURCE = f"package data (dans_kgc/{PACKAGE_FILE})"
# what a backbone *is*: the same on every dataset, so no per_dataset entry may change it
IDENTITY_KEYS = ("model.name", "train.mode", "train.sampler")
# recipe names become run folder names (VARIANT@BACKBONE in the workflow)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class RecipeError(ConfigError):
    """An unknown recipe name or a malformed recipe (one line naming it)."""


@dataclass(frozen=True)
class Recipe:
    name: str
    overrides: dict[str, Any]  # the shared keys, flat and dotted
    per_dataset: dict[str, dict[str, Any]] = field(default_factory=dict)  # dataset -> keys replaced there
    source: str = PACKAGE_SOURCE  # where it was defined: package data, a user's file or plugin module

    def on(self, dataset: str | None = None) -> dict[str, Any]:
        """The flat overrides on ``dataset``: the shared keys, then its ``per_dataset`` entry (None: shared only)."""
        return apply_per_dataset({**self.overrides, PER_DATASET: self.per_dataset}, dataset)

    def entry(self) -> dict[str, Any]:
        """The recipe laid out as its YAML entry: the shared keys, then ``per_dataset`` where it has one (a copy)."""
        own = {PER_DATASET: copy.deepcopy(self.per_dataset)} if self.per_dataset else {}
        return {**copy.deepcopy(self.overrides), **own}


RECIPES: dict[str, Recipe] = {}


def _check_keys(keys: Any, where: str) -> dict[str, Any]:
    """``keys`` as a flat dict of known dans-kgc keys with values of the defaults' types, or a one-line error."""
    if not isinstance(keys, Mapping):
        raise RecipeError(f"{where}: expected a mapping of dotted config keys (model.dim: 256), got {keys!r}")
    nested = [k for k, v in keys.items() if isinstance(v, Mapping)]
    if nested:
        raise RecipeError(
            f"{where}: key '{nested[0]}' holds a mapping; a recipe uses flat dotted keys (model.dim: 256)"
        )
    merge(load_defaults(), nest_dotted(keys), where)  # unknown key or wrong type: ConfigError naming it
    return {str(k): v for k, v in keys.items()}


def make_recipe(name: str, entry: Any, source: str) -> Recipe:
    """A checked recipe from its YAML entry (shared keys plus an optional ``per_dataset`` mapping)."""
    where = f"{source}: recipe '{name}'"
    if not NAME_PATTERN.match(str(name)):
        raise RecipeError(f"{where}: a recipe name is letters, digits, '_' and '-' (it names run folders)")
    if not isinstance(entry, Mapping):
        raise RecipeError(f"{where}: expected a mapping of dotted config keys, got {entry!r}")
    shared = _check_keys({k: v for k, v in entry.items() if k != PER_DATASET}, where)
    if "model.name" not in shared:
        raise RecipeError(f"{where}: no model.name; a recipe names the backbone it sets up")
    per_dataset = entry.get(PER_DATASET) or {}
    if not isinstance(per_dataset, Mapping):
        raise RecipeError(f"{where}: {PER_DATASET} must map dataset names to keys, got {per_dataset!r}")
    own = {}
    for dataset, keys in per_dataset.items():
        here = f"{where}, {PER_DATASET}.{dataset}"
        own[str(dataset)] = _check_keys(keys, here)
        fixed = [k for k in own[str(dataset)] if k in IDENTITY_KEYS]
        if fixed:
            raise RecipeError(
                f"{here}: key '{fixed[0]}' says what the backbone is, the same on every dataset; "
                "set it in the shared keys (or define another recipe)"
            )
    return Recipe(str(name), shared, own, source)


def register(
    name: str,
    overrides: Mapping[str, Any],
    per_dataset: Mapping[str, Any] | None = None,
    source: str | None = None,
) -> Recipe:
    """Add (or replace) recipe ``name``; ``source`` defaults to the calling module's file."""
    entry = {**overrides, **({PER_DATASET: per_dataset} if per_dataset else {})}
    recipe = make_recipe(name, entry, source or sys._getframe(1).f_code.co_filename)
    RECIPES[recipe.name] = recipe
    return recipe


def _read_file(text: str, source: str) -> list[Recipe]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise RecipeError(f"{source}: not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(data, Mapping):
        raise RecipeError(f"{source}: top level must map recipe names to their keys")
    return [make_recipe(str(name), entry, source) for name, entry in data.items()]


def load_recipe_file(path: str | Path) -> list[str]:
    """Register every recipe of a YAML file laid out like dans_kgc/recipes.yaml; returns their names. The file is
    checked whole first: a bad entry registers nothing."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise RecipeError(f"{path}: cannot read recipe file: {err}") from None
    recipes = _read_file(text, str(path))
    RECIPES.update({r.name: r for r in recipes})
    return [r.name for r in recipes]


def recipe_names() -> list[str]:
    return list(RECIPES)


def recipe_entries() -> dict[str, dict[str, Any]]:
    """Every registered recipe (the package's, then the user's), name -> its YAML entry, in registration order."""
    return {name: recipe.entry() for name, recipe in RECIPES.items()}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        from dans_kgc.plugin_record import loaded_note

        raise RecipeError(f"unknown backbone recipe '{name}'; known: {', '.join(RECIPES)}; {loaded_note()}")
    return RECIPES[name]


def recipe_overrides(name: str, dataset: str | None = None) -> dict[str, Any]:
    """Recipe ``name``'s flat overrides on ``dataset`` (its shared keys, replaced by its ``per_dataset`` entry)."""
    return get_recipe(name).on(dataset)


def recipe_record(name: str, dataset: str | None = None) -> dict[str, Any]:
    """What ``load_config(recipe=...)`` applies and records in ``recipe.*``: recipe ``name``'s name, where it was
    defined and its flat overrides on ``dataset``."""
    recipe = get_recipe(name)
    return {"name": recipe.name, "source": recipe.source, "overrides": recipe.on(dataset)}


RECIPES.update(
    {r.name: r for r in _read_file(resources.files("dans_kgc").joinpath(PACKAGE_FILE).read_text(), PACKAGE_SOURCE)}
)
