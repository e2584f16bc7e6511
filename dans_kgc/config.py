"""Configuration: package defaults, user YAML files and ``--set key=value`` overrides.

The defaults file is also the schema: a key that is not in it, or a value whose type
does not match the default's, is rejected with a message naming the key.
"""

from __future__ import annotations

import copy
import functools
import logging
import sys
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

DEFAULTS_FILE = "defaults.yaml"


class ConfigError(ValueError):
    """A configuration key or value is invalid."""


@functools.lru_cache(maxsize=1)
def _parsed_defaults() -> dict[str, Any]:
    return yaml.safe_load(resources.files("dans_kgc").joinpath(DEFAULTS_FILE).read_text())


def load_defaults() -> dict[str, Any]:
    """A fresh copy of the package defaults (parsed once per process: every config load starts here)."""
    return copy.deepcopy(_parsed_defaults())


def _type_ok(default: Any, value: Any) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, list):
        return isinstance(value, list)
    if isinstance(default, dict):
        return isinstance(value, dict)
    return isinstance(value, type(default))


# Mappings whose keys are the user's names (dataset names), not config keys: merged without the
# unknown-key check; their entries are checked by validate_values.
OPEN_MAPPINGS = ("datasets",)

# Keys an earlier version of the harness had: old dotted key -> (new dotted key, old value -> new value or None
# when the value carries over as it is, how the old setting reads now). A config that still uses an old key (a
# run's recorded config.yaml, an old --config file) is read under the new key, with one warning line per key.
MIGRATIONS: dict[str, tuple[str, dict[Any, Any] | None, str]] = {
    "diffusion.snap": (
        "diffusion.negatives",
        {True: "snapped", False: "continuous"},
        "diffusion.snap_filter now defaults to train, was all",
    ),
    "data.custom": ("datasets", None, "the key the workflow config uses too"),
}


def _pop_path(data: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    """Remove ``dotted`` from the nested mapping ``data`` (in place): (found, value)."""
    *parents, leaf = dotted.split(".")
    node: Any = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict) or leaf not in node:
        return False, None
    return True, node.pop(leaf)


def migrate_keys(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A copy of the nested config ``data`` with every old key of ``MIGRATIONS`` moved to its new key (value
    translated), warning once per moved key with both names; an old key next to its new one is an error."""
    out = copy.deepcopy(dict(data))
    for old, (new, values, note) in MIGRATIONS.items():
        found, value = _pop_path(out, old)
        if not found:
            continue
        if values is not None:
            if value not in values:
                raise ConfigError(
                    f"{source}: config key '{old}' = {value!r} (renamed '{new}'); expected one of "
                    f"{', '.join(map(repr, values))}"
                )
            value = values[value]
        *parents, leaf = new.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        if leaf in node:
            raise ConfigError(
                f"{source}: config keys '{old}' and '{new}' both given; '{old}' is the old name of "
                f"'{new}': keep '{new}' only"
            )
        node[leaf] = value
        log.warning(
            "%s: config key '%s' was renamed '%s'; read as %s: %s (%s)", source, old, new, new, _one_line(value), note
        )
    return out


def _one_line(value: Any) -> str:
    """A value as YAML flow text on one line (``{mykg: {path: x}}``, ``snapped``), for messages."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def merge(base: dict[str, Any], override: Mapping[str, Any], source: str, prefix: str = "") -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base``; unknown keys raise ``ConfigError``. At the top level
    (``prefix`` empty) renamed keys are first moved to their new names (``migrate_keys``)."""
    out = copy.deepcopy(base)
    if not prefix:
        override = migrate_keys(override, source)
    for key, value in override.items():
        path = f"{prefix}{key}"
        if path in OPEN_MAPPINGS and key in out:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: config key '{path}' must be a mapping of names, got {value!r}")
            out[key] = {**out[key], **copy.deepcopy(dict(value))}
            continue
        if key not in out:
            known = ", ".join(sorted(out))
            raise ConfigError(f"{source}: unknown config key '{path}' (known at this level: {known})")
        if isinstance(out[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: config key '{path}' must be a mapping, got {value!r}")
            out[key] = merge(out[key], value, source, prefix=path + ".")
            continue
        if not _type_ok(out[key], value):
            raise ConfigError(
                f"{source}: config key '{path}' expects {type(out[key]).__name__} (default {out[key]!r}), got {value!r}"
            )
        out[key] = value
    return out


# A backbone recipe (the workflow config's `backbones.NAME`, flat dotted overrides) may hold its settings for
# particular datasets (a backbone that publishes one setting per dataset, e.g. RED-GNN) under this key.
PER_DATASET = "per_dataset"


def apply_per_dataset(recipe: Mapping[str, Any], dataset: str | None = None) -> dict[str, Any]:
    """A backbone recipe's flat overrides on ``dataset``: its shared keys, replaced by its ``per_dataset`` entry
    for that dataset (None: the shared keys only). The DAG and the benchmarks read recipes through this."""
    shared = {k: v for k, v in recipe.items() if k != PER_DATASET}
    return {**shared, **((recipe.get(PER_DATASET) or {}).get(dataset) or {})}


def parse_set(assignments: Iterable[str]) -> dict[str, Any]:
    """Turn ``["train.epochs=5", "dtm.enabled=false"]`` into a nested mapping (values parsed as YAML)."""
    nested: dict[str, Any] = {}
    for item in assignments:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got '{item}'")
        key, raw = item.split("=", 1)
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _parse_value(raw)
    return nested


def nest_dotted(data: Mapping[str, Any]) -> dict[str, Any]:
    """A config file may use flat dotted keys (``train.lr: 0.01``, as ``dans-kgc tune`` writes best.yaml),
    nested mappings, or both: ``{"train.lr": 0.01}`` -> ``{"train": {"lr": 0.01}}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        parts = str(key).split(".")
        node = out
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"config key '{key}': '{part}' is given both as a value and as a mapping")
            node = nxt
        if isinstance(value, Mapping) and isinstance(node.get(parts[-1]), dict):
            node[parts[-1]].update(value)
        else:
            node[parts[-1]] = copy.deepcopy(value)
    return out


def _parse_value(raw: str) -> Any:
    """YAML scalar, except that ``1e-3`` is a float (YAML 1.1 would keep it a string)."""
    if raw == "":
        return None
    value = yaml.safe_load(raw)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def load_config(
    files: Iterable[str | Path] = (),
    overrides: Iterable[str] = (),
    base: Mapping[str, Any] | None = None,
    dataset: str | None = None,
    recipe: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Defaults (or ``base``, a full config such as a run's recorded one), then a backbone recipe's overrides on
    ``dataset`` (``recipe``: its name, source and flat overrides there, as ``dans_kgc.recipes.recipe_record`` gives
    them), then each YAML file in order, then ``--set`` overrides. A file may name its ``dataset`` (a run's recorded
    config.yaml does, so a run can be re-made from it): it must then be the command's ``dataset``. The recipe's
    name, source and keys land in ``recipe.*``, with the keys a file or ``--set`` replaced."""
    cfg = load_defaults() if base is None else dict(base)
    if recipe is not None:
        cfg = merge(cfg, nest_dotted(recipe["overrides"]), f"{recipe['source']}: recipe '{recipe['name']}'")
    for f in files:
        path = Path(f)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
        except OSError as err:
            raise ConfigError(f"{path}: cannot read config file: {err}") from err
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: top level must be a mapping of config keys")
        if "dataset" in data and dataset is not None:
            if str(data["dataset"]) != dataset:
                raise ConfigError(f"{path}: dataset '{data['dataset']}' is not this command's --dataset '{dataset}'")
            data = {k: v for k, v in data.items() if k != "dataset"}
        cfg = merge(cfg, nest_dotted(data), str(path))
    cfg = merge(cfg, parse_set(overrides), "--set")
    if recipe is not None:  # after the files: a replayed run config's own record does not hide this command's recipe
        applied = dict(recipe["overrides"])
        cfg["recipe"] = {
            "name": recipe["name"],
            "source": recipe["source"],
            "overrides": applied,
            "replaced": sorted(k for k, v in applied.items() if dotted_value(cfg, k) != v),
        }
    validate_values(cfg)
    return cfg


def dotted_value(cfg: Mapping[str, Any], key: str) -> Any:
    """``cfg``'s value at the dotted ``key`` (``model.dim``)."""
    node: Any = cfg
    for part in key.split("."):
        node = node[part]
    return node


_CHOICES: dict[tuple[str, ...], set[Any]] = {
    ("device",): {"auto", "cpu", "cuda"},
    ("protocol",): {None, "redgnn", "kge"},
    ("data", "unseen_policy"): {"keep", "drop"},
    # the registered backbones (dans_kgc.models.MODELS; kept here so the DAG validates without importing
    # torch; tests/test_config.py checks the two agree)
    ("model", "name"): {"transe", "rotate", "distmult", "complex", "quate", "conve", "redgnn"},
    ("model", "activation"): {"relu", "tanh", "identity"},
    ("model", "gnn_gate"): {"gru", "none"},
    ("train", "loss_reduction"): {"mean", "sum"},
    ("model", "regularizer"): {"none", "n3", "l2"},
    ("train", "mode"): {"negative_sampling", "one_to_n"},
    ("dam", "semantic_source"): {"transe", "backbone", "transe_short", "random"},
    ("dam", "target_source"): {"semantic", "transe", "backbone"},
    ("model", "init"): {"xavier_uniform", "xavier_normal", "normal", "uniform"},
    ("train", "loss"): {"margin", "softplus", "nssa"},
    ("diffusion", "band_placement"): {"fixed", "measured"},
    ("diffusion", "condition"): {"ccd", "null", None},  # YAML null = the learned null condition
    ("dans", "base_sampler"): {"uniform", "self_adversarial"},
    ("dam", "target_scale"): {"quantile", "raw"},
    ("diffusion", "schedule"): {"linear", "cosine"},
    ("diffusion", "prediction"): {"eps", "x0"},
    ("diffusion", "reverse"): {"ddpm", "ddim"},
    ("diffusion", "chain_start"): {"noise", "forward"},
    ("diffusion", "negatives"): {"continuous", "snapped", "mixed"},
    ("diffusion", "snap_filter"): {"train", "all"},
    # the built-in trackers (dans_kgc.trackers.TRACKERS; tests/test_trackers.py checks the two agree)
    ("tracker", "name"): {"none", "tensorboard", "mlflow"},
}


def _registered(path: tuple[str, ...]) -> set[Any]:
    """Names plugins added to a registry this process has imported (a plugin imports it to register;
    without plugins the registry need not be imported, so the DAG validates without torch)."""
    registries: dict[tuple[str, ...], tuple[str, str]] = {
        ("model", "name"): ("dans_kgc.models", "MODELS"),
        ("tracker", "name"): ("dans_kgc.trackers", "TRACKERS"),
    }
    registry = registries.get(path)
    module = sys.modules.get(registry[0]) if registry else None
    if registry is None or module is None:
        return set()
    return set(getattr(module, registry[1], {}))


def validate_values(cfg: Mapping[str, Any]) -> None:
    for path, allowed in _CHOICES.items():
        node: Any = cfg
        for p in path:
            node = node[p]
        if node not in allowed and node not in _registered(path):
            from dans_kgc.plugin_record import loaded_note

            extra = f"; {loaded_note()}" if path in (("model", "name"), ("tracker", "name")) else ""
            raise ConfigError(
                f"config key '{'.'.join(path)}' = {node!r}; expected one of "
                f"{sorted(map(str, allowed | _registered(path)))}{extra}"
            )
    if cfg["train"]["epochs"] < 0 or cfg["train"]["batch_size"] <= 0:
        raise ConfigError("config keys 'train.epochs' must be >= 0 and 'train.batch_size' > 0")
    model, train = cfg["model"], cfg["train"]
    if model["gnn_layers"] < 1 or model["attn_dim"] < 1 or not 0.0 <= model["gnn_dropout"] < 1.0:
        raise ConfigError(
            f"config keys 'model.gnn_layers' = {model['gnn_layers']} and 'model.attn_dim' = "
            f"{model['attn_dim']} must be >= 1 and 'model.gnn_dropout' = {model['gnn_dropout']} in [0, 1)"
        )
    if train["weight_decay"] < 0 or not 0.0 < train["lr_decay"] <= 1.0:
        raise ConfigError(
            f"config keys 'train.weight_decay' = {train['weight_decay']} must be >= 0 and "
            f"'train.lr_decay' = {train['lr_decay']} in (0, 1]"
        )
    if not 0.0 <= train["fact_ratio"] < 1.0:
        raise ConfigError(
            f"config key 'train.fact_ratio' = {train['fact_ratio']}; expected a share in [0, 1) (0 = no re-split)"
        )
    if not isinstance(cfg["dam"]["short_epochs"], int) or cfg["dam"]["short_epochs"] < 1:
        raise ConfigError(
            f"config key 'dam.short_epochs' = {cfg['dam']['short_epochs']!r}; expected an integer >= 1 "
            "(epochs of the transe_short semantic source; the untrained TransE is dam.semantic_source: random)"
        )
    be = cfg["pretrain"].get("backbone_epochs")
    if be is not None and (not isinstance(be, int) or isinstance(be, bool) or be < 0):
        raise ConfigError(
            f"config key 'pretrain.backbone_epochs' = {be!r}; expected null (= pretrain.epochs) or an integer >= 0"
        )
    if cfg["diagnostics"]["triples"] < 0:
        raise ConfigError(
            f"config key 'diagnostics.triples' = {cfg['diagnostics']['triples']}; expected >= 0 (0 = off)"
        )
    for name, entry in (cfg.get("datasets") or {}).items():
        from dans_kgc.datasets.custom import check_entry  # no torch: datasets/__init__ imports numpy only

        try:
            check_entry(str(name), entry, f"datasets.{name}")
        except ValueError as err:
            raise ConfigError(f"config key {err}") from None
    if len(cfg["dtm"]["margin_scales"]) != len(cfg["diffusion"]["band_steps"]):
        raise ConfigError("config keys 'dtm.margin_scales' and 'diffusion.band_steps' must have the same length")
    if cfg["diffusion"]["band_placement"] == "measured" and len(cfg["diffusion"]["band_quantiles"]) != len(
        cfg["diffusion"]["band_steps"]
    ):
        raise ConfigError(
            "config keys 'diffusion.band_quantiles' and 'diffusion.band_steps' must have the same "
            "length with diffusion.band_placement = measured (one target quantile per band)"
        )
