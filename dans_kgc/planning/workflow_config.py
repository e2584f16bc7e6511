"""The workflow config as Snakemake sees it, without Snakemake: config.yaml, updated by further configs (as
--configfile and --config do), checked against workflow/schemas/config.schema.yaml with its defaults filled in."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from dans_kgc.planning.planner import PlanError

# relative to the folder of config.yaml
SCHEMA = Path("workflow") / "schemas" / "config.schema.yaml"


def update_config(config: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``update`` into ``config`` in place, mappings key by key (Snakemake's --configfile / --config)."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(config.get(key), Mapping):
            update_config(config[key], value)
        elif isinstance(value, Mapping):
            config[key] = update_config({}, value)
        else:
            config[key] = value
    return config


def schema_problem(config: Mapping[str, Any], schema: Mapping[str, Any]) -> str | None:
    """The config's most relevant schema violation as one line naming the key's path, or None."""
    import jsonschema

    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))
    if err is None:
        return None
    where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    return f"invalid config (config.yaml, --configfile or --config) at '{where}': {err.message}"


def _with_defaults(validator_class: Any) -> Any:
    """A validator that fills in each property's `default` before checking it (as Snakemake's validate does)."""
    from jsonschema import validators

    check_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator: Any, properties: Mapping[str, Any], instance: Any, schema: Any) -> Any:
        for name, subschema in properties.items():
            if "default" in subschema and isinstance(instance, dict):
                instance.setdefault(name, subschema["default"])
        yield from check_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


def load_workflow_config(path: str | Path, *updates: Mapping[str, Any], schema: str | Path | None = None) -> dict:
    """config.yaml at ``path``, updated by each of ``updates`` in turn (e.g. {"preset": "quick"}), checked against
    the schema (default: workflow/schemas/config.schema.yaml beside config.yaml) with its defaults filled in: the
    dict the Snakefile plans with. A schema violation raises PlanError naming the key."""
    import jsonschema

    path = Path(path)
    config = yaml.safe_load(path.read_text()) or {}
    for update in updates:
        update_config(config, update)
    schema_doc = yaml.safe_load(Path(schema or path.parent / SCHEMA).read_text())
    problem = schema_problem(config, schema_doc)
    if problem is not None:
        raise PlanError(problem)
    _with_defaults(jsonschema.Draft202012Validator)(schema_doc).validate(config)
    return config
