"""Plugins: modules or ``.py`` files imported before the registries are used (``--plugin``, repeatable).

A plugin registers what it defines when imported: a sampler (``dans_kgc.sampling.register``), a backbone
(``dans_kgc.models.MODELS``), a report builder (``dans_kgc.reports.register``), a backbone recipe
(``dans_kgc.recipes.register``). A ``.yaml`` file is a file of backbone recipes, laid out like
dans_kgc/recipes.yaml. Kept free of torch, so the CLI can load plugins before any command imports the heavy
modules.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path

from dans_kgc import plugin_record


class PluginError(ValueError):
    """A plugin could not be imported (one line naming it; bad input, not a crash)."""


def load_plugin(plugin: str) -> None:
    """Import ``plugin``: a path to a ``.py`` file, a ``.yaml`` file of recipes, or a dotted module name; once
    per process."""
    if plugin in plugin_record.LOADED:
        return
    if plugin.endswith((".yaml", ".yml")):
        from dans_kgc.recipes import load_recipe_file

        load_recipe_file(plugin)
    elif plugin.endswith(".py") or Path(plugin).is_file():
        path = Path(plugin)
        if not path.is_file():
            raise PluginError(f"plugin {path}: no such file (expected a .py file or an importable module name)")
        spec = importlib.util.spec_from_file_location(f"dans_kgc_plugin_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise PluginError(f"plugin {path}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # noqa: BLE001 - any error inside the user's file is reported as one line
            del sys.modules[spec.name]
            raise PluginError(f"plugin {path}: import failed: {type(err).__name__}: {err}") from None
    else:
        try:
            importlib.import_module(plugin)
        except ImportError as err:
            raise PluginError(
                f"plugin {plugin}: cannot import it ({err}); give a .py file or an installed module"
            ) from None
    plugin_record.LOADED.append(plugin)


def load_plugins(plugins: Iterable[str] = ()) -> None:
    for plugin in plugins:
        load_plugin(plugin)
