"""Flat dans-kgc overrides (``{"train.epochs": 2}``): how the planner writes, compares and filters them.

No config of the workflow here, only the package defaults; see ``dans_kgc.planning`` for the planner.
"""

from __future__ import annotations

import copy
import functools
import json
import shlex
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import yaml

from dans_kgc.config import load_defaults, merge

Flat = dict[str, Any]
F = TypeVar("F", bound=Callable[..., Any])


def json_memo(fn: F) -> F:
    """Memoise a pure function of JSON-able arguments (the paper preset asks for the same stage keys tens of
    thousands of times, each a merge of the package defaults). Keyed by the arguments' JSON, so overrides that
    differ only in key order share an entry; each caller gets its own copy of the answer."""
    cache: dict[str, Any] = {}

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        key = json.dumps(args, sort_keys=True, default=str)
        if key not in cache:
            cache[key] = fn(*args)
        return copy.deepcopy(cache[key])

    return wrapper  # type: ignore[return-value]


@json_memo
def fmt(value: Any) -> str:
    """A value as dans-kgc's ``--set`` parses it back (YAML): 'null' stays a string, None is null."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    if text.endswith("..."):
        text = text[:-3].strip()
    return text


def name_part(value: Any) -> str:
    """A grid value as part of a variant or folder name (mu0.5, eta0.3)."""
    text = fmt(value).replace(" ", "").replace("[", "").replace("]", "").replace(",", "-")
    return text.strip("'\"")


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{"train.epochs": 2} -> {"train": {"epochs": 2}} (what dans-kgc's --set parsing builds)."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


@functools.lru_cache(maxsize=1)
def defaults() -> dict[str, Any]:
    """The package defaults (dans_kgc/defaults.yaml); callers must not change the answer."""
    return load_defaults()


def resolved(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The full dans-kgc config a job with these overrides sees."""
    return merge(defaults(), nest(flat), "config")


def value(flat: Mapping[str, Any], key: str) -> Any:
    """The effective value of a dotted dans-kgc key: the override if given, else the package default."""
    if key in flat:
        return flat[key]
    node: Any = defaults()
    for part in key.split("."):
        node = node[part]
    return node


def is_default(key: str, val: Any) -> bool:
    """Whether ``val`` is the package default of ``key`` (a bool never equals a number here)."""
    try:
        default = value({}, key)
    except (
        KeyError,
        TypeError,
    ):  # a key the defaults do not know (a plugin's): keep it
        return False
    return isinstance(val, bool) == isinstance(default, bool) and val == default


def train_filter(flat: Mapping[str, Any], sampler: str) -> Flat:
    """What a training run reads: everything except the settings of samplers it does not use."""
    out = {}
    for key, val in flat.items():
        if key.startswith("tune."):  # the search's budget: read by tune jobs only
            continue
        if key.startswith("samplers.") and not key.startswith(f"samplers.{sampler}."):
            continue
        if sampler not in ("dans", "dhns") and key.startswith(("dam.", "diffusion.", "dtm.", "dans.", "diagnostics.")):
            continue
        if sampler == "dhns" and key.startswith(("dam.", "dtm.")):
            continue
        out[key] = val
    return out


def shell_join(args: list[str]) -> str:
    """Arguments as one shell string (each quoted where needed)."""
    return " ".join(shlex.quote(a) for a in args)
